/**
 * Is a failure of K2's own database (or document store) worth retrying? True for trouble that
 * passes by itself: SQLite busy or locked, PostgreSQL's connection and availability classes, a
 * full connection pool, network errors, the file system out of handles. Everything else — a
 * constraint violation, a syntax error, a missing table, a full disk — is permanent: retrying
 * the same statement gives the same answer, so an operator must look.
 */

/** PostgreSQL SQLSTATE classes that are about availability, not about the statement. */
const PG_TRANSIENT_CLASSES = [
  '08', // connection exception
  '53', // insufficient resources (too many connections, out of memory), except 53100 below
];
/** PostgreSQL SQLSTATEs outside those classes that pass by themselves. */
const PG_TRANSIENT_CODES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);
/** 53100 disk_full does not pass by itself. */
const PG_PERMANENT_IN_TRANSIENT_CLASS = new Set(['53100']);

/** Node's network errors, and the file system running out of handles (the document store). */
const NODE_TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EBUSY',
]);

const SQLITE_TRANSIENT_CODES = /^SQLITE_(BUSY|LOCKED)(_|$)/;
const SQLITE_TRANSIENT_MESSAGES = /database is locked|database table is locked|SQLITE_BUSY|SQLITE_LOCKED/i;
/** pg reports a dropped connection without a code. */
const PG_CONNECTION_MESSAGES = /Connection terminated unexpectedly|Connection terminated due to connection timeout|connection ended unexpectedly/i;

function isPgSqlState(code: string): boolean {
  return /^[0-9A-Z]{5}$/.test(code);
}

function isTransientPgCode(code: string): boolean {
  if (PG_PERMANENT_IN_TRANSIENT_CLASS.has(code)) return false;
  return PG_TRANSIENT_CODES.has(code) || PG_TRANSIENT_CLASSES.includes(code.slice(0, 2));
}

function isTransientCode(code: string): boolean {
  if (SQLITE_TRANSIENT_CODES.test(code)) return true;
  if (NODE_TRANSIENT_CODES.has(code)) return true;
  return isPgSqlState(code) && isTransientPgCode(code);
}

function isTransientOne(err: object): boolean {
  const { name, code, message } = err as { name?: unknown; code?: unknown; message?: unknown };
  if (name === 'KnexTimeoutError') return true;
  if (typeof code === 'string' && isTransientCode(code)) return true;
  if (typeof message === 'string' && (SQLITE_TRANSIENT_MESSAGES.test(message) || PG_CONNECTION_MESSAGES.test(message))) return true;
  return false;
}

/** Looks at the error, its `cause` chain and an AggregateError's parts (Node's connect to several addresses). */
export function isTransientDbError(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  while (pending.length > 0) {
    const e = pending.pop();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    if (isTransientOne(e)) return true;
    const { cause, errors } = e as { cause?: unknown; errors?: unknown };
    pending.push(cause);
    if (Array.isArray(errors)) pending.push(...errors);
  }
  return false;
}

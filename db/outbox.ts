/**
 * The loan outbox: the API writes every accepted item here in one transaction before it answers
 * error_code 0; the dispatcher hands rows to Temporal and marks them. A crash between the two
 * only delays an item, never loses it, and re-sending is harmless because the case applies an
 * update idempotently.
 *
 * On SQLite (the default), the writes bypass knex's query builder: the API process holds the one
 * better-sqlite3 connection of knex's pool and runs prepared statements inside one synchronous
 * transaction (knex's per-statement compile and batchInsert cost most of a single-item request).
 * Small requests arriving close together share one transaction (group commit), so 50 concurrent
 * clients pay one fsync (synchronous=FULL) per group instead of one each; every request still gets
 * its answer only after the commit that holds its rows, and a failed group commit fails all of its
 * requests (none of their rows is committed). PostgreSQL keeps the knex path.
 */
import crypto from 'node:crypto';
import { isSqlite, type Db } from './index';
import type { Loan } from '../domain/loan';

export interface OutboxRow {
  id: number;
  contract_number: string;
  loan: Loan;
  attempts: number;
}

export function loanDigest(loan: Loan): string {
  return crypto.createHash('sha256').update(JSON.stringify(loan)).digest('hex');
}

interface InsertRow {
  contract_number: string;
  payload: string;
  payload_sha256: string;
  request_id: string;
  received_at: string;
}

function toRows(loans: Loan[], requestId: string, receivedAt: string): InsertRow[] {
  return loans.map((loan) => {
    const payload = JSON.stringify(loan);
    return {
      contract_number: loan.contract_number,
      payload,
      // = loanDigest(loan), without serializing the loan twice
      payload_sha256: crypto.createHash('sha256').update(payload).digest('hex'),
      request_id: requestId,
      received_at: receivedAt,
    };
  });
}

// --- SQLite: the raw better-sqlite3 connection ------------------------------------------------------

interface SqliteStatement {
  run(...params: unknown[]): unknown;
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F;
}

interface Prepared {
  insert: SqliteStatement;
  insertMany: (rows: InsertRow[]) => void;
  markMany: (ids: number[], at: string) => void;
}
const preparedByConnection = new WeakMap<object, Prepared>();

function prepared(conn: SqliteConnection): Prepared {
  let p = preparedByConnection.get(conn);
  if (!p) {
    const insert = conn.prepare(
      'insert into loan_outbox (contract_number, payload, payload_sha256, request_id, received_at) values (@contract_number, @payload, @payload_sha256, @request_id, @received_at)',
    );
    const mark = conn.prepare('update loan_outbox set dispatched_at = ? where id = ?');
    p = {
      insert,
      // better-sqlite3's transaction(): BEGIN … COMMIT, ROLLBACK (and rethrow) when fn throws.
      insertMany: conn.transaction((rows: InsertRow[]) => {
        for (const row of rows) insert.run(row);
      }),
      markMany: conn.transaction((ids: number[], at: string) => {
        for (const id of ids) mark.run(at, id);
      }),
    };
    preparedByConnection.set(conn, p);
  }
  return p;
}

/** Runs fn with knex's (only) SQLite connection held, so no knex query or transaction interleaves. */
async function withConnection<T>(db: Db, fn: (conn: SqliteConnection) => T): Promise<T> {
  const conn = (await db.client.acquireConnection()) as SqliteConnection;
  try {
    return fn(conn);
  } catch (err) {
    // better-sqlite3's SqliteError is not a native Error object (Object.prototype.toString gives
    // [object Object]), which some callers' checks (e.g. across vm realms) do not take for an error.
    const e = err as { message?: string; code?: string };
    if (Object.prototype.toString.call(err) === '[object Error]') throw err;
    throw Object.assign(new Error(String(e?.message ?? err), { cause: err }), { code: e?.code });
  } finally {
    await db.client.releaseConnection(conn);
  }
}

// --- group commit (SQLite) ---------------------------------------------------------------------

/** Requests of at most this many items are grouped; larger ones commit on their own, at once. */
export const GROUP_MAX_ITEMS_PER_REQUEST = 100;
/** A group waits at most this long for company after its first request (and commits earlier when full). */
export const GROUP_WINDOW_MS = 2;
const GROUP_MAX_ITEMS = 2000;

interface Waiter {
  rows: InsertRow[];
  resolve: () => void;
  reject: (err: unknown) => void;
}
interface GroupState {
  waiting: Waiter[];
  items: number;
  timer?: NodeJS.Timeout;
}
const groups = new WeakMap<Db, GroupState>();

function flushGroup(db: Db, state: GroupState): void {
  if (state.timer) clearTimeout(state.timer);
  state.timer = undefined;
  const group = state.waiting;
  state.waiting = [];
  state.items = 0;
  if (!group.length) return;
  withConnection(db, (conn) => {
    const rows = group.length === 1 ? group[0].rows : group.flatMap((w) => w.rows);
    prepared(conn).insertMany(rows);
  }).then(
    () => {
      for (const w of group) w.resolve();
    },
    (err) => {
      for (const w of group) w.reject(err);
    },
  );
}

function enqueueGrouped(db: Db, rows: InsertRow[]): Promise<void> {
  let state = groups.get(db);
  if (!state) groups.set(db, (state = { waiting: [], items: 0 }));
  const s = state;
  return new Promise<void>((resolve, reject) => {
    s.waiting.push({ rows, resolve, reject });
    s.items += rows.length;
    if (s.items >= GROUP_MAX_ITEMS) flushGroup(db, s);
    else if (!s.timer) s.timer = setTimeout(() => flushGroup(db, s), GROUP_WINDOW_MS);
  });
}

/**
 * Inserts all loans of one request atomically: resolves only once they are committed (durably, with
 * synchronous=FULL), rejects with nothing of them committed.
 */
export async function enqueueLoans(db: Db, loans: Loan[], requestId: string, now = new Date()): Promise<void> {
  const rows = toRows(loans, requestId, now.toISOString());
  if (isSqlite(db)) {
    if (rows.length <= GROUP_MAX_ITEMS_PER_REQUEST) return enqueueGrouped(db, rows);
    return withConnection(db, (conn) => prepared(conn).insertMany(rows));
  }
  // PostgreSQL: knex; chunked inserts (parameter limits) inside one transaction.
  await db.transaction(async (trx) => {
    await trx.batchInsert('loan_outbox', rows, 500);
  });
}

/** The oldest undispatched rows whose retry time has come; with afterId, only rows after it. */
export async function pendingLoans(db: Db, limit: number, afterId = 0): Promise<OutboxRow[]> {
  let q = db('loan_outbox').whereNull('dispatched_at');
  if (afterId > 0) q = q.andWhere('id', '>', afterId);
  const rows = await q.orderBy('id').limit(limit).select('id', 'contract_number', 'payload', 'attempts');
  return rows.map((r) => ({ id: Number(r.id), contract_number: r.contract_number, loan: JSON.parse(r.payload), attempts: r.attempts }));
}

/** Marks rows as handed to Temporal, all in one transaction. */
export async function markDispatched(db: Db, ids: number[], now = new Date()): Promise<void> {
  if (!ids.length) return;
  const at = now.toISOString();
  if (isSqlite(db)) return withConnection(db, (conn) => prepared(conn).markMany(ids, at));
  await db.transaction(async (trx) => {
    for (let i = 0; i < ids.length; i += 500) {
      await trx('loan_outbox').whereIn('id', ids.slice(i, i + 500)).update({ dispatched_at: at });
    }
  });
}

export async function markDispatchFailed(db: Db, id: number, error: string): Promise<void> {
  await db('loan_outbox').where({ id }).update({ attempts: db.raw('attempts + 1'), last_error: error.slice(0, 1000) });
}

/** Whether at least `atLeast` rows wait for the dispatcher (reads at most that many index entries). */
export async function hasPendingBacklog(db: Db, atLeast: number): Promise<boolean> {
  const rows = await db('loan_outbox').whereNull('dispatched_at').orderBy('id').offset(atLeast - 1).limit(1).select('id');
  return rows.length > 0;
}

export async function countPending(db: Db): Promise<number> {
  const [{ n }] = await db('loan_outbox').whereNull('dispatched_at').count({ n: '*' });
  return Number(n);
}

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
 *
 * A row is live while neither dispatched nor dead. A row Temporal refused waits until its
 * next_attempt_at; after K2_OUTBOX_MAX_ATTEMPTS refusals it is a dead letter (dead_at) until an
 * operator requeues it (scripts/outbox.ts). A row its closed case already had is marked done with
 * a stale_reason instead of being sent (api/dispatcher.ts, case_episodes).
 */
import crypto from 'node:crypto';
import { isSqlite, type Db } from './index';
import type { Loan } from '../domain/loan';

export interface OutboxRow {
  id: number;
  contract_number: string;
  loan: Loan;
  payload_sha256: string;
  attempts: number;
  /** Epoch ms before which this row (and so its contract) waits: Temporal refused it last time. */
  nextAttemptAt?: number;
  /** The contract's last closed case (case_episodes), read with the row. */
  episode?: ClosedEpisode;
}

/** What the dispatcher needs of a contract's last closed case to recognise an item it already had. */
export interface ClosedEpisode {
  /** The newest outbox id the closed case applied (absent for cases that predate it). */
  closedSeq?: number;
  /** The payload digest of the last overdue item the closed case applied. */
  lastOverdueSha256?: string;
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

const epochMs = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : new Date(v as string | Date).getTime());

/**
 * The oldest live rows (not dispatched, not dead), with afterId only rows after it, each with its
 * contract's last closed episode (one join: no query per row on the intake path). Rows that wait
 * for their next attempt are included (nextAttemptAt): they hold back their contract's later rows.
 */
export async function pendingLoans(db: Db, limit: number, afterId = 0): Promise<OutboxRow[]> {
  let q = db('loan_outbox as o').leftJoin('case_episodes as e', 'e.contract_number', 'o.contract_number').whereNull('o.dispatched_at').whereNull('o.dead_at');
  if (afterId > 0) q = q.andWhere('o.id', '>', afterId);
  const rows = await q
    .orderBy('o.id')
    .limit(limit)
    .select('o.id', 'o.contract_number', 'o.payload', 'o.payload_sha256', 'o.attempts', 'o.next_attempt_at', 'e.contract_number as episode_of', 'e.closed_seq', 'e.last_overdue_sha256');
  return rows.map((r) => ({
    id: Number(r.id),
    contract_number: r.contract_number,
    loan: JSON.parse(r.payload),
    payload_sha256: r.payload_sha256,
    attempts: r.attempts,
    nextAttemptAt: epochMs(r.next_attempt_at),
    episode: r.episode_of ? { closedSeq: r.closed_seq === null ? undefined : Number(r.closed_seq), lastOverdueSha256: r.last_overdue_sha256 ?? undefined } : undefined,
  }));
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

/**
 * Counts a failed attempt and keeps the last error (no personal data: the caller passes a gRPC
 * status and a short message). With `retryAt` the row waits until then; with `dead` it moves to
 * the dead letters.
 */
export async function markDispatchFailed(db: Db, id: number, error: string, opts: { retryAt?: Date; dead?: boolean; now?: Date } = {}): Promise<void> {
  const update: Record<string, unknown> = { attempts: db.raw('attempts + 1'), last_error: error.slice(0, 1000) };
  if (opts.retryAt) update.next_attempt_at = opts.retryAt.toISOString();
  if (opts.dead) update.dead_at = (opts.now ?? new Date()).toISOString();
  await db('loan_outbox').where({ id }).update(update);
}

/** Why a row was done without being handed to Temporal: its contract's closed case already had it. */
export type StaleReason = 'applied-before-close' | 'resent-after-close';

/** Marks a row done as stale: it leaves the pending list like a dispatched one, with its reason. */
export async function markStale(db: Db, id: number, reason: StaleReason, now = new Date()): Promise<void> {
  await db('loan_outbox').where({ id }).whereNull('dispatched_at').update({ dispatched_at: now.toISOString(), stale_reason: reason });
}

/** A dead letter as operators see it: references and counts only, never the loan's personal data. */
export interface DeadLetter {
  id: number;
  contractNumber: string;
  attempts: number;
  lastError: string | null;
  acceptedAt: string;
  deadAt: string;
}

const iso = (v: unknown): string => new Date(v as string | Date).toISOString();

/** The dead letters, oldest first. */
export async function deadLetters(db: Db, limit = 1000): Promise<DeadLetter[]> {
  const rows = await db('loan_outbox').whereNull('dispatched_at').whereNotNull('dead_at').orderBy('id').limit(limit).select('id', 'contract_number', 'attempts', 'last_error', 'received_at', 'dead_at');
  return rows.map((r) => ({ id: Number(r.id), contractNumber: r.contract_number, attempts: r.attempts, lastError: r.last_error, acceptedAt: iso(r.received_at), deadAt: iso(r.dead_at) }));
}

/** How many dead letters there are, and when the oldest of them was accepted. */
export async function deadLetterStats(db: Db): Promise<{ count: number; oldestAcceptedAt?: Date }> {
  const rows: Array<{ n?: unknown; oldest?: string | Date | null }> = await db('loan_outbox').whereNull('dispatched_at').whereNotNull('dead_at').select(db.raw('count(*) as n'), db.raw('min(received_at) as oldest'));
  const count = Number(rows[0]?.n ?? 0);
  const oldest = rows[0]?.oldest;
  return { count, oldestAcceptedAt: count > 0 && oldest ? new Date(oldest) : undefined };
}

/** Puts a dead letter back into the flow with a fresh attempt count; false when no dead letter has this id. */
export async function requeueDeadLetter(db: Db, id: number): Promise<boolean> {
  const n = await db('loan_outbox').where({ id }).whereNull('dispatched_at').whereNotNull('dead_at').update({ dead_at: null, attempts: 0, next_attempt_at: null });
  return Number(n) > 0;
}

/** Whether at least `atLeast` rows wait for the dispatcher (reads at most that many index entries). */
export async function hasPendingBacklog(db: Db, atLeast: number): Promise<boolean> {
  const rows = await db('loan_outbox').whereNull('dispatched_at').whereNull('dead_at').orderBy('id').offset(atLeast - 1).limit(1).select('id');
  return rows.length > 0;
}

/** Rows waiting for the dispatcher (dead letters not counted). */
export async function countPending(db: Db): Promise<number> {
  const [{ n }] = await db('loan_outbox').whereNull('dispatched_at').whereNull('dead_at').count({ n: '*' });
  return Number(n);
}

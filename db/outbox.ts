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
 *
 * Several API replicas may dispatch one outbox: a dispatcher claims a batch of rows (claimed_by,
 * lease_until; claimLoans), renews the claims while it holds them and clears them as it marks the
 * rows. A crashed replica's rows are claimed by another once their lease has passed.
 */
import crypto from 'node:crypto';
import { isSqlite, type Db } from './index';
import type { Loan } from '../domain/loan';
import { IN_CLEAR_COLUMNS, SealedValueError, type ColumnSealer } from './sealed';

export type OutboxRow = OutboxRowFields & ({ loan: Loan; unreadable?: undefined } | { loan?: undefined; unreadable: string });

interface OutboxRowFields {
  id: number;
  contract_number: string;
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

function toRows(loans: Loan[], requestId: string, receivedAt: string, columns: ColumnSealer): InsertRow[] {
  return loans.map((loan) => {
    const payload = JSON.stringify(loan);
    return {
      contract_number: loan.contract_number,
      payload: columns.seal('loan_outbox.payload', payload),
      // = loanDigest(loan), without serializing the loan twice
      payload_sha256: crypto.createHash('sha256').update(payload).digest('hex'),
      request_id: requestId,
      received_at: receivedAt,
    };
  });
}

// --- SQLite: the raw better-sqlite3 connection ------------------------------------------------------

interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  all(...params: unknown[]): Array<Record<string, unknown>>;
}
/** better-sqlite3's transaction function: called plainly it runs in BEGIN (DEFERRED); `.immediate` in BEGIN IMMEDIATE. */
type SqliteTransactionFn<F> = F & { immediate: F };
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  transaction<F extends (...args: never[]) => unknown>(fn: F): SqliteTransactionFn<F>;
}

interface Prepared {
  insert: SqliteStatement;
  insertMany: (rows: InsertRow[]) => void;
  markMany: (ids: number[], at: string) => void;
  claim: SqliteTransactionFn<(p: ClaimParams) => RawClaim>;
  renew: SqliteTransactionFn<(ids: number[], owner: string, until: string) => number>;
  release: SqliteTransactionFn<(ids: number[], owner: string) => void>;
}
const preparedByConnection = new WeakMap<object, Prepared>();

function prepared(conn: SqliteConnection): Prepared {
  let p = preparedByConnection.get(conn);
  if (!p) {
    const insert = conn.prepare(
      'insert into loan_outbox (contract_number, payload, payload_sha256, request_id, received_at) values (@contract_number, @payload, @payload_sha256, @request_id, @received_at)',
    );
    const mark = conn.prepare('update loan_outbox set dispatched_at = ?, claimed_by = null, lease_until = null where id = ?');
    const window = conn.prepare(sqliteClaimWindowSql);
    const take = conn.prepare('update loan_outbox set claimed_by = @owner, lease_until = @until where id in (select value from json_each(@ids))');
    const renewOne = conn.prepare('update loan_outbox set lease_until = ? where id = ? and claimed_by = ? and dispatched_at is null');
    const releaseOne = conn.prepare('update loan_outbox set claimed_by = null, lease_until = null where id = ? and claimed_by = ?');
    p = {
      insert,
      // better-sqlite3's transaction(): BEGIN … COMMIT, ROLLBACK (and rethrow) when fn throws.
      insertMany: conn.transaction((rows: InsertRow[]) => {
        for (const row of rows) insert.run(row);
      }),
      markMany: conn.transaction((ids: number[], at: string) => {
        for (const id of ids) mark.run(at, id);
      }),
      // In BEGIN IMMEDIATE (claim.immediate): the write lock is held from the window's read to the claim, so no other process claims in between.
      claim: conn.transaction((params: ClaimParams): RawClaim => {
        const rows = window.all({ after: params.afterId, now: params.now, owner: params.owner, limit: params.limit });
        const taken = rows.filter((r) => !r.blocked);
        if (taken.length) take.run({ owner: params.owner, until: params.until, ids: JSON.stringify(taken.map((r) => Number(r.id))) });
        return { rows: taken, windowSize: rows.length, windowLastId: rows.length ? Number(rows[rows.length - 1].id) : params.afterId };
      }),
      renew: conn.transaction((ids: number[], owner: string, until: string) => {
        let n = 0;
        for (const id of ids) n += renewOne.run(until, id, owner).changes;
        return n;
      }),
      release: conn.transaction((ids: number[], owner: string) => {
        for (const id of ids) releaseOne.run(id, owner);
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
export async function enqueueLoans(db: Db, loans: Loan[], requestId: string, now = new Date(), columns: ColumnSealer = IN_CLEAR_COLUMNS): Promise<void> {
  const rows = toRows(loans, requestId, now.toISOString(), columns);
  if (isSqlite(db)) {
    if (rows.length <= GROUP_MAX_ITEMS_PER_REQUEST) return enqueueGrouped(db, rows);
    return withConnection(db, (conn) => prepared(conn).insertMany(rows));
  }
  // PostgreSQL: knex; chunked inserts (parameter limits) inside one transaction.
  await db.transaction(async (trx) => {
    await trx.batchInsert('loan_outbox', rows, 500);
  });
}

function epochMs(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : new Date(v as string | Date).getTime();
}

/**
 * The oldest live rows (not dispatched, not dead), with afterId only rows after it, each with its
 * contract's last closed episode (one join: no query per row on the intake path). Rows that wait
 * for their next attempt are included (nextAttemptAt): they hold back their contract's later rows.
 */
export async function pendingLoans(db: Db, limit: number, afterId = 0, columns: ColumnSealer = IN_CLEAR_COLUMNS): Promise<OutboxRow[]> {
  let q = db('loan_outbox as o').leftJoin('case_episodes as e', 'e.contract_number', 'o.contract_number').whereNull('o.dispatched_at').whereNull('o.dead_at');
  if (afterId > 0) q = q.andWhere('o.id', '>', afterId);
  const rows = await q
    .orderBy('o.id')
    .limit(limit)
    .select(
      'o.id',
      'o.contract_number',
      'o.payload',
      'o.payload_sha256',
      'o.attempts',
      'o.next_attempt_at',
      'e.contract_number as episode_of',
      'e.closed_seq',
      'e.last_overdue_sha256',
    );
  return rows.map((r) => toOutboxRow(r, columns));
}

/**
 * A row as read with its contract's closed episode (pendingLoans, claimLoans). A sealed payload that
 * does not open (damaged, or under a key this process lacks) makes the row `unreadable`: the
 * dispatcher counts it as a refused attempt, so one row never stalls the others.
 */
function toOutboxRow(r: Record<string, unknown>, columns: ColumnSealer): OutboxRow {
  let opened: { loan: Loan } | { unreadable: string };
  try {
    opened = { loan: JSON.parse(columns.open('loan_outbox.payload', r.payload as string)) };
  } catch (err) {
    if (!(err instanceof SealedValueError)) throw err;
    opened = { unreadable: `${err.name}: ${err.message}` };
  }
  return {
    id: Number(r.id),
    contract_number: r.contract_number as string,
    ...opened,
    payload_sha256: r.payload_sha256 as string,
    attempts: Number(r.attempts),
    nextAttemptAt: epochMs(r.next_attempt_at),
    episode: r.episode_of
      ? { closedSeq: r.closed_seq === null ? undefined : Number(r.closed_seq), lastOverdueSha256: (r.last_overdue_sha256 as string | null) ?? undefined }
      : undefined,
  };
}

// --- claims: several dispatchers on one outbox -------------------------------------------------------

/** What one claim took: its rows (oldest first), and the window of rows it looked at (a cursor moves past it). */
export interface ClaimResult {
  rows: OutboxRow[];
  /** How many claimable rows the claim looked at (taken or not): fewer than the limit means none lie after them. */
  windowSize: number;
  /** The highest id in that window (afterId when it was empty): the next claim of this pass reads after it. */
  windowLastId: number;
}

/** A claim as the database answered it: its rows not yet opened (toOutboxRow). */
type RawClaim = Omit<ClaimResult, 'rows'> & { rows: Array<Record<string, unknown>> };

interface ClaimParams {
  owner: string;
  afterId: number;
  limit: number;
  now: string;
  until: string;
}

/**
 * The claim's rules, one SQL text for both databases (p names a parameter, leaseNow is the clock leases are read by).
 * A row is claimable when it is live, not waiting for its next attempt, and unclaimed, its lease passed, or already ours.
 */
function claimableSql(p: (name: string) => string, leaseNow: string): string {
  return `o.dispatched_at IS NULL AND o.dead_at IS NULL AND o.id > ${p('after')}
    AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ${p('now')})
    AND (o.claimed_by IS NULL OR o.lease_until IS NULL OR o.lease_until <= ${leaseNow} OR o.claimed_by = ${p('owner')})`;
}

/**
 * Whether window row w must wait (per-contract order): its contract has an earlier live row outside the window that is not
 * ours under a valid lease, i.e. claimed by another dispatcher, waiting for its next attempt, or not yet taken by anyone.
 */
function blockedSql(p: (name: string) => string, leaseNow: string): string {
  return `EXISTS (SELECT 1 FROM loan_outbox e WHERE e.contract_number = w.contract_number AND e.id < w.id
    AND e.dispatched_at IS NULL AND e.dead_at IS NULL AND e.id NOT IN (SELECT id FROM win)
    AND (e.claimed_by IS NULL OR e.claimed_by <> ${p('owner')} OR e.lease_until IS NULL OR e.lease_until <= ${leaseNow}
      OR (e.next_attempt_at IS NOT NULL AND e.next_attempt_at > ${p('now')})))`;
}

const sqliteParam = (name: string) => `@${name}`;
const sqliteClaimWindowSql = `WITH win AS (SELECT o.id, o.contract_number FROM loan_outbox o WHERE ${claimableSql(sqliteParam, '@now')} ORDER BY o.id LIMIT @limit)
  SELECT o.id, o.contract_number, o.payload, o.payload_sha256, o.attempts, o.next_attempt_at,
    ep.contract_number AS episode_of, ep.closed_seq, ep.last_overdue_sha256, ${blockedSql(sqliteParam, '@now')} AS blocked
  FROM win w JOIN loan_outbox o ON o.id = w.id LEFT JOIN case_episodes ep ON ep.contract_number = o.contract_number ORDER BY o.id`;

/**
 * PostgreSQL: one statement per batch. The window is locked FOR UPDATE SKIP LOCKED, so two dispatchers claiming at once
 * never take the same row (and never wait for each other); rows a concurrent claim holds are skipped, and a later row of
 * their contract is then blocked by them (blockedSql). Leases are read and written by the database's clock, the one
 * clock all replicas share.
 */
const pgParam = (name: string) => `:${name}`;
const pgLeaseUntil = "now() + CAST(:leaseMs AS integer) * interval '1 millisecond'";
const pgClaimSql = `WITH win AS (
    SELECT o.id, o.contract_number FROM loan_outbox o WHERE ${claimableSql(pgParam, 'now()')} ORDER BY o.id LIMIT :limit FOR UPDATE SKIP LOCKED
  ), taken AS (
    UPDATE loan_outbox c SET claimed_by = :owner, lease_until = ${pgLeaseUntil}
    FROM win w WHERE c.id = w.id AND NOT ${blockedSql(pgParam, 'now()')}
    RETURNING c.id, c.contract_number, c.payload, c.payload_sha256, c.attempts, c.next_attempt_at
  ), summary AS (SELECT count(*) AS window_size, max(id) AS window_last_id FROM win)
  SELECT s.window_size, s.window_last_id, t.*, ep.contract_number AS episode_of, ep.closed_seq, ep.last_overdue_sha256
  FROM summary s LEFT JOIN taken t ON true LEFT JOIN case_episodes ep ON ep.contract_number = t.contract_number ORDER BY t.id`;

/**
 * Claims for `owner` up to `limit` of the oldest claimable rows after afterId, for leaseMs, each with its contract's last
 * closed episode. Per-contract order holds across dispatchers: a row is taken only when every earlier live row of its
 * contract is in the same claim or already ours. Rows we hold stay claimable by us (a pass from the start takes them again).
 */
export async function claimLoans(
  db: Db,
  owner: string,
  opts: { limit: number; leaseMs: number; afterId?: number; now?: Date },
  columns: ColumnSealer = IN_CLEAR_COLUMNS,
): Promise<ClaimResult> {
  const now = opts.now ?? new Date();
  const afterId = opts.afterId ?? 0;
  if (isSqlite(db)) {
    const params: ClaimParams = { owner, afterId, limit: opts.limit, now: now.toISOString(), until: new Date(now.getTime() + opts.leaseMs).toISOString() };
    // Opened after the transaction: the write lock is not held while the payloads are decrypted.
    const raw = await withConnection(db, (conn) => prepared(conn).claim.immediate(params));
    return { ...raw, rows: raw.rows.map((r) => toOutboxRow(r, columns)) };
  }
  const result = await db.raw(pgClaimSql, { owner, after: afterId, limit: opts.limit, now: now.toISOString(), leaseMs: Math.round(opts.leaseMs) });
  const rows: Array<Record<string, unknown>> = result.rows;
  const summary = rows[0] ?? {};
  return {
    rows: rows.filter((r) => r.id !== null && r.id !== undefined).map((r) => toOutboxRow(r, columns)),
    windowSize: Number(summary.window_size ?? 0),
    windowLastId: summary.window_last_id === null || summary.window_last_id === undefined ? afterId : Number(summary.window_last_id),
  };
}

/** Extends owner's claims on these rows by leaseMs from now; returns how many were still ours (a lost one was taken after its lease). */
export async function renewClaims(db: Db, owner: string, ids: number[], leaseMs: number, now = new Date()): Promise<number> {
  if (!ids.length) return 0;
  if (isSqlite(db)) return withConnection(db, (conn) => prepared(conn).renew.immediate(ids, owner, new Date(now.getTime() + leaseMs).toISOString()));
  let renewed = 0;
  await db.transaction(async (trx) => {
    for (let i = 0; i < ids.length; i += 500) {
      const n = await trx('loan_outbox')
        .whereIn('id', ids.slice(i, i + 500))
        .andWhere('claimed_by', owner)
        .whereNull('dispatched_at')
        .update({ lease_until: trx.raw("now() + CAST(? AS integer) * interval '1 millisecond'", [Math.round(leaseMs)]) });
      renewed += Number(n);
    }
  });
  return renewed;
}

/** Gives up owner's claims on these rows (not handed over): any dispatcher may take them at once. */
export async function releaseClaims(db: Db, owner: string, ids: number[]): Promise<void> {
  if (!ids.length) return;
  if (isSqlite(db)) return withConnection(db, (conn) => prepared(conn).release.immediate(ids, owner));
  await db.transaction(async (trx) => {
    for (let i = 0; i < ids.length; i += 500) {
      await trx('loan_outbox')
        .whereIn('id', ids.slice(i, i + 500))
        .andWhere('claimed_by', owner)
        .update({ claimed_by: null, lease_until: null });
    }
  });
}

/** Marks rows as handed to Temporal (and clears their claims), all in one transaction. */
export async function markDispatched(db: Db, ids: number[], now = new Date()): Promise<void> {
  if (!ids.length) return;
  const at = now.toISOString();
  if (isSqlite(db)) return withConnection(db, (conn) => prepared(conn).markMany(ids, at));
  await db.transaction(async (trx) => {
    for (let i = 0; i < ids.length; i += 500) {
      await trx('loan_outbox')
        .whereIn('id', ids.slice(i, i + 500))
        .update({ dispatched_at: at, claimed_by: null, lease_until: null });
    }
  });
}

/**
 * Counts a failed attempt and keeps the last error (no personal data: the caller passes a gRPC
 * status and a short message). With `retryAt` the row waits until then; with `dead` it moves to
 * the dead letters.
 */
export async function markDispatchFailed(db: Db, id: number, error: string, opts: { retryAt?: Date; dead?: boolean; now?: Date } = {}): Promise<void> {
  // The claim ends with the attempt: a row that waits is taken again by whichever dispatcher comes first after its wait.
  const update: Record<string, unknown> = { attempts: db.raw('attempts + 1'), last_error: error.slice(0, 1000), claimed_by: null, lease_until: null };
  if (opts.retryAt) update.next_attempt_at = opts.retryAt.toISOString();
  if (opts.dead) update.dead_at = (opts.now ?? new Date()).toISOString();
  await db('loan_outbox').where({ id }).update(update);
}

/** Why a row was done without being handed to Temporal: its contract's closed case already had it. */
export type StaleReason = 'applied-before-close' | 'resent-after-close';

/** Marks a row done as stale: it leaves the pending list like a dispatched one, with its reason. */
export async function markStale(db: Db, id: number, reason: StaleReason, now = new Date()): Promise<void> {
  await db('loan_outbox')
    .where({ id })
    .whereNull('dispatched_at')
    .update({ dispatched_at: now.toISOString(), stale_reason: reason, claimed_by: null, lease_until: null });
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
  const rows = await db('loan_outbox')
    .whereNull('dispatched_at')
    .whereNotNull('dead_at')
    .orderBy('id')
    .limit(limit)
    .select('id', 'contract_number', 'attempts', 'last_error', 'received_at', 'dead_at');
  return rows.map((r) => ({
    id: Number(r.id),
    contractNumber: r.contract_number,
    attempts: r.attempts,
    lastError: r.last_error,
    acceptedAt: iso(r.received_at),
    deadAt: iso(r.dead_at),
  }));
}

/** How many dead letters there are, and when the oldest of them was accepted. */
export async function deadLetterStats(db: Db): Promise<{ count: number; oldestAcceptedAt?: Date }> {
  const rows: Array<{ n?: unknown; oldest?: string | Date | null }> = await db('loan_outbox')
    .whereNull('dispatched_at')
    .whereNotNull('dead_at')
    .select(db.raw('count(*) as n'), db.raw('min(received_at) as oldest'));
  const count = Number(rows[0]?.n ?? 0);
  const oldest = rows[0]?.oldest;
  return { count, oldestAcceptedAt: count > 0 && oldest ? new Date(oldest) : undefined };
}

/** Puts a dead letter back into the flow with a fresh attempt count; false when no dead letter has this id. */
export async function requeueDeadLetter(db: Db, id: number): Promise<boolean> {
  const n = await db('loan_outbox')
    .where({ id })
    .whereNull('dispatched_at')
    .whereNotNull('dead_at')
    .update({ dead_at: null, attempts: 0, next_attempt_at: null });
  return Number(n) > 0;
}

/** Whether at least `atLeast` rows wait for the dispatcher (reads at most that many index entries). */
export async function hasPendingBacklog(db: Db, atLeast: number): Promise<boolean> {
  const rows = await db('loan_outbox')
    .whereNull('dispatched_at')
    .whereNull('dead_at')
    .orderBy('id')
    .offset(atLeast - 1)
    .limit(1)
    .select('id');
  return rows.length > 0;
}

/** Rows waiting for the dispatcher (dead letters not counted). */
export async function countPending(db: Db): Promise<number> {
  const [{ n }] = await db('loan_outbox').whereNull('dispatched_at').whereNull('dead_at').count({ n: '*' });
  return Number(n);
}

/** The outbox as an operator watches it (`k2 outbox status`): what waits, what dispatchers hold, what is dead. Counts and times only. */
export interface OutboxStatus {
  /** Live rows: neither handed to Temporal nor dead. */
  pending: number;
  /** When the oldest live row was accepted. */
  oldestPendingAcceptedAt?: Date;
  /** Live rows waiting for their next attempt (Temporal refused them last time). */
  waitingRetry: number;
  /** Live rows a dispatcher holds under a lease that has not passed (in flight to Temporal). */
  claimed: number;
  /** How many dispatchers (API replicas) hold those claims. */
  claimers: number;
  dead: number;
  oldestDeadAcceptedAt?: Date;
}

/**
 * One pass over the live rows (the live index) and the dead letters' count. Leases are read by the clock that wrote
 * them (the database's on PostgreSQL, the process's on SQLite: claimLoans); next attempts by the process's.
 */
export async function outboxStatus(db: Db, now = new Date()): Promise<OutboxStatus> {
  const at = now.toISOString();
  // SQLite: the lease is compared with this process's clock (a parameter); PostgreSQL: with the database's.
  const held = isSqlite(db)
    ? { sql: 'o.claimed_by IS NOT NULL AND o.lease_until > ?', bindings: [at] }
    : { sql: 'o.claimed_by IS NOT NULL AND o.lease_until > now()', bindings: [] };
  const rows: Array<Record<string, unknown>> = await db('loan_outbox as o')
    .whereNull('o.dispatched_at')
    .whereNull('o.dead_at')
    .select(
      db.raw('count(*) as n'),
      db.raw('min(o.received_at) as oldest'),
      db.raw('sum(CASE WHEN o.next_attempt_at > ? THEN 1 ELSE 0 END) as waiting', [at]),
      db.raw(`sum(CASE WHEN ${held.sql} THEN 1 ELSE 0 END) as claimed`, held.bindings),
      db.raw(`count(DISTINCT CASE WHEN ${held.sql} THEN o.claimed_by END) as claimers`, held.bindings),
    );
  const live = rows[0] ?? {};
  const pending = Number(live.n ?? 0);
  const dead = await deadLetterStats(db);
  return {
    pending,
    ...(pending > 0 && live.oldest ? { oldestPendingAcceptedAt: new Date(live.oldest as string | Date) } : {}),
    waitingRetry: Number(live.waiting ?? 0),
    claimed: Number(live.claimed ?? 0),
    claimers: Number(live.claimers ?? 0),
    dead: dead.count,
    ...(dead.oldestAcceptedAt ? { oldestDeadAcceptedAt: dead.oldestAcceptedAt } : {}),
  };
}

/** Puts every dead letter back into the flow with a fresh attempt count; returns how many. */
export async function requeueAllDeadLetters(db: Db): Promise<number> {
  const n = await db('loan_outbox').whereNull('dispatched_at').whereNotNull('dead_at').update({ dead_at: null, attempts: 0, next_attempt_at: null });
  return Number(n);
}

/** When the oldest row still waiting for the dispatcher (dead letters not counted) was accepted; undefined when none waits. Ids follow acceptance: one index entry is read. */
export async function oldestPendingAcceptedAt(db: Db): Promise<Date | undefined> {
  const row: { received_at?: string | Date } | undefined = await db('loan_outbox')
    .whereNull('dispatched_at')
    .whereNull('dead_at')
    .orderBy('id')
    .first('received_at');
  return row?.received_at ? new Date(row.received_at) : undefined;
}

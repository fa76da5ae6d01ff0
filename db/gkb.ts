/**
 * The GKB record queue and batch bookkeeping (the database side of DOMAIN.md §2 stage 6).
 * Cases enqueue; a batch claims, files, uploads and records results; results are then delivered.
 * Every step is idempotent so that the batch workflow's activities can be retried safely.
 */
import type { Knex } from 'knex';
import { isSqlite, type Db } from './index';
import type { ContractRecord } from '../domain/gkb/contract-record';
import { IN_CLEAR_COLUMNS, type ColumnSealer } from './sealed';

export type GkbRecordState = 'queued' | 'claimed' | 'accepted' | 'rejected';

export interface QueuedReport {
  reportKey: string;
  caseId: string;
  workflowId: string;
  record: ContractRecord;
}

export interface GkbResultRow {
  id: number;
  workflow_id: string;
  contract_code: string;
  state: 'accepted' | 'rejected';
  result_text: string;
  new_contract: boolean;
  skipped: boolean;
}

const now = () => new Date().toISOString();

/**
 * Queues a report once per report key; returns the record id (the same one when called again).
 * One statement when the key is new (its own transaction, one round trip); a key already queued,
 * by an earlier attempt or one racing beside it, inserts nothing and reads the existing id.
 */
export async function enqueueReport(db: Db, report: QueuedReport, columns: ColumnSealer = IN_CLEAR_COLUMNS): Promise<number> {
  const at = now();
  const inserted: Array<{ id: number | string }> = await db('gkb_records')
    .insert({
      report_key: report.reportKey,
      case_id: report.caseId,
      workflow_id: report.workflowId,
      contract_code: report.record.general.contractCode,
      operation: report.record.operation,
      record: columns.seal('gkb_records.record', JSON.stringify(report.record)),
      state: 'queued',
      enqueued_at: at,
      updated_at: at,
    })
    .onConflict('report_key')
    .ignore()
    .returning('id');
  if (inserted.length > 0) return Number(inserted[0].id);
  const existing = await db('gkb_records').where({ report_key: report.reportKey }).first('id');
  if (!existing) throw new Error(`GKB record ${report.reportKey}: queued by another attempt, yet not found`);
  return Number(existing.id);
}

export async function countQueued(db: Db): Promise<number> {
  const [{ n }] = await db('gkb_records').where({ state: 'queued' }).count({ n: '*' });
  return Number(n);
}

/** Queued records of contracts that have no record in flight (claimed by an unfinished batch): what the next claim may take. */
function claimable(db: Db | Knex.Transaction) {
  return db('gkb_records as r')
    .where('r.state', 'queued')
    .whereNotExists(function inFlight() {
      this.select(db.raw('1')).from('gkb_records as f').whereRaw('f.contract_code = r.contract_code').andWhere('f.state', 'claimed');
    });
}

/** Contracts a claim would take now (one record each): whether a full package waits for an early batch. */
export async function countClaimable(db: Db): Promise<number> {
  const [{ n }] = await claimable(db).countDistinct({ n: 'r.contract_code' });
  return Number(n);
}

/** Any constant: the transaction-scoped PostgreSQL advisory lock that makes claimers take turns. */
const CLAIM_LOCK_KEY = 4_201_712;
const CLAIM_PAGE = 1000;

/**
 * Claims up to `limit` queued records for a batch, oldest first, one per contract code, and none of
 * a contract that is in flight: a contract with a record claimed by an unfinished batch waits in the
 * queue until that package is final, so GKB never gets two of its reports at once and cannot apply
 * them out of order (integrations/gkb/README.md). One per batch also because GKB's results are
 * matched back by contract code within a file. Claiming again returns the same set's size.
 *
 * Claimers take turns: on PostgreSQL behind a transaction-scoped advisory lock (row locks, even
 * FOR UPDATE SKIP LOCKED, would let two claimers take two different records of the same contract,
 * neither seeing the other's uncommitted claim); on SQLite BEGIN IMMEDIATE already serialises
 * writers. The count is what the updates really changed.
 */
export async function claimRecords(db: Db, batchId: string, limit: number): Promise<number> {
  return db.transaction(async (trx) => {
    if (!isSqlite(db)) await trx.raw('SELECT pg_advisory_xact_lock(?)', [CLAIM_LOCK_KEY]);
    const already = await trx('gkb_records').where({ batch_id: batchId }).count({ n: '*' });
    if (Number(already[0].n) > 0) return Number(already[0].n);
    const seen = new Set<string>();
    const ids: number[] = [];
    for (let after = 0; ids.length < limit;) {
      const page = await claimable(trx).andWhere('r.id', '>', after).orderBy('r.id').limit(CLAIM_PAGE).select('r.id', 'r.contract_code');
      if (page.length === 0) break;
      for (const c of page) {
        if (seen.has(c.contract_code) || ids.length >= limit) continue;
        seen.add(c.contract_code);
        ids.push(Number(c.id));
      }
      after = Number(page[page.length - 1].id);
    }
    let claimed = 0;
    for (let i = 0; i < ids.length; i += 500) {
      claimed += await trx('gkb_records')
        .whereIn('id', ids.slice(i, i + 500))
        .where({ state: 'queued' })
        .update({ state: 'claimed', batch_id: batchId, updated_at: now() });
    }
    await trx('gkb_batches')
      .insert({ batch_id: batchId, state: claimed ? 'claimed' : 'empty', files: '[]', created_at: now(), updated_at: now() })
      .onConflict('batch_id')
      .ignore();
    return claimed;
  });
}

/** Batch states after which a batch holds nothing: done, found nothing to claim, or abandoned and its results delivered. */
const SETTLED_BATCH_STATES = ['done', 'empty', 'abandoned', 'abandoned-delivered'];

/** Batches other than `except` not settled: each is still working, or was abandoned (terminated, failed) unnoticed so far. */
export async function unsettledBatches(db: Db, except: string): Promise<string[]> {
  const rows = await db('gkb_batches').whereNotIn('state', SETTLED_BATCH_STATES).whereNot({ batch_id: except }).select('batch_id');
  return rows.map((r) => String(r.batch_id));
}

/**
 * Returns the claimed records of an abandoned batch to the queue (their ids, hence their place in
 * it, unchanged: they go before any later report of the same contract) and marks the batch abandoned.
 */
export async function releaseBatch(db: Db, batchId: string, reason: string): Promise<number> {
  return db.transaction(async (trx) => {
    const released = await trx('gkb_records')
      .where({ batch_id: batchId, state: 'claimed' })
      .update({ state: 'queued', batch_id: null, file_name: null, updated_at: now() });
    await trx('gkb_batches').where({ batch_id: batchId }).update({ state: 'abandoned', error: reason, updated_at: now() });
    return released;
  });
}

/** The batch's records in a stable order, read in pages so memory does not grow with the batch. */
export async function* claimedRecords(
  db: Db,
  batchId: string,
  pageSize = 1000,
  columns: ColumnSealer = IN_CLEAR_COLUMNS,
): AsyncGenerator<{ id: number; record: ContractRecord }> {
  let after = 0;
  for (;;) {
    const rows = await db('gkb_records').where({ batch_id: batchId }).andWhere('id', '>', after).orderBy('id').limit(pageSize).select('id', 'record');
    if (rows.length === 0) return;
    for (const r of rows) yield { id: Number(r.id), record: JSON.parse(columns.open('gkb_records.record', r.record)) };
    after = Number(rows[rows.length - 1].id);
  }
}

export async function assignFile(db: Db, batchId: string, fileName: string, contractCodes: string[]): Promise<void> {
  for (let i = 0; i < contractCodes.length; i += 500) {
    await db('gkb_records')
      .where({ batch_id: batchId })
      .whereIn('contract_code', contractCodes.slice(i, i + 500))
      .update({ file_name: fileName, updated_at: now() });
  }
}

export async function saveBatch(db: Db, batchId: string, state: string, files: unknown, error?: string): Promise<void> {
  await db('gkb_batches')
    .insert({ batch_id: batchId, state, files: JSON.stringify(files), error: error ?? null, created_at: now(), updated_at: now() })
    .onConflict('batch_id')
    .merge({ state, files: JSON.stringify(files), error: error ?? null, updated_at: now() });
}

export async function saveBatchState(db: Db, batchId: string, state: string): Promise<void> {
  await db('gkb_batches').where({ batch_id: batchId }).update({ state, updated_at: now() });
}

/** GKB's answer for one contract of a file. */
export interface RecordResult {
  accepted: boolean;
  text: string;
  /** GKB said it created the contract («Создан новый контракт.»). */
  created?: boolean;
}

/**
 * Writes GKB's result for the records of one file, matched by contract code; untouched rows are
 * returned. "Created" is news only for an update (operation 2): GKB did not know the contract, so it
 * made an incomplete one (DOMAIN.md G6); for an insert it is what was asked.
 */
export async function recordResults(
  db: Db,
  batchId: string,
  fileName: string,
  results: Map<string, RecordResult>,
): Promise<{ accepted: number; rejected: number; unmatched: string[] }> {
  const rows = await db('gkb_records').where({ batch_id: batchId, file_name: fileName }).select('id', 'contract_code', 'operation', 'state');
  let accepted = 0;
  let rejected = 0;
  const unmatched: string[] = [];
  await db.transaction(async (trx) => {
    for (const row of rows) {
      const result = results.get(row.contract_code);
      if (!result) {
        if (row.state === 'claimed') unmatched.push(row.contract_code);
        continue;
      }
      result.accepted ? accepted++ : rejected++;
      const newContract = result.accepted && result.created === true && Number(row.operation) === 2;
      await trx('gkb_records')
        .where({ id: row.id })
        .update({ state: result.accepted ? 'accepted' : 'rejected', result_text: result.text, new_contract: newContract, updated_at: now() });
    }
  });
  return { accepted, rejected, unmatched };
}

/** Rejects every still-open record of a file (or of the whole batch when fileName is undefined). */
export async function rejectOpenRecords(db: Db, batchId: string, fileName: string | undefined, text: string): Promise<number> {
  const q = db('gkb_records').where({ batch_id: batchId, state: 'claimed' });
  if (fileName) q.andWhere({ file_name: fileName });
  return q.update({ state: 'rejected', result_text: text, updated_at: now() });
}

/** Accepts every still-open record of a file as skipped: GKB already had the state they report. */
export async function acceptOpenRecordsAsSkipped(db: Db, batchId: string, fileName: string, text: string): Promise<number> {
  return db('gkb_records')
    .where({ batch_id: batchId, file_name: fileName, state: 'claimed' })
    .update({ state: 'accepted', skipped: true, result_text: text, updated_at: now() });
}

/** Abandoned batches whose collected results are not all delivered yet. */
export async function abandonedBatches(db: Db): Promise<string[]> {
  const rows = await db('gkb_batches').where({ state: 'abandoned' }).select('batch_id');
  return rows.map((r) => String(r.batch_id));
}

export async function undeliveredResults(db: Db, batchId: string, limit: number): Promise<GkbResultRow[]> {
  const rows = await db('gkb_records')
    .where({ batch_id: batchId })
    .whereIn('state', ['accepted', 'rejected'])
    .whereNull('delivered_at')
    .orderBy('id')
    .limit(limit)
    .select('id', 'workflow_id', 'contract_code', 'state', 'result_text', 'new_contract', 'skipped');
  // SQLite gives booleans back as 0/1.
  return rows.map((r) => ({ ...r, id: Number(r.id), new_contract: Boolean(r.new_contract), skipped: Boolean(r.skipped) }));
}

export async function markDelivered(db: Db, ids: number[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    await db('gkb_records')
      .whereIn('id', ids.slice(i, i + 500))
      .update({ delivered_at: now() });
  }
}

/** How a file's records stand now (what a repeated collect reports, whatever it wrote the first time). */
export async function fileOutcome(db: Db, batchId: string, fileName: string): Promise<{ accepted: number; rejected: number }> {
  const rows = await db('gkb_records')
    .where({ batch_id: batchId, file_name: fileName })
    .whereIn('state', ['accepted', 'rejected'])
    .groupBy('state')
    .select('state')
    .count({ n: '*' });
  const n = (state: string) => Number((rows as Array<{ state: string; n: number | string }>).find((r) => r.state === state)?.n ?? 0);
  return { accepted: n('accepted'), rejected: n('rejected') };
}

// --- operators' reads (`k2 gkb ...`): references, states, counts and GKB's texts, never a record's content -------

/** A file of a batch as the batch saved it (activities/gkb.ts GkbFileProgress): one file is one GKB package. */
export interface StoredBatchFile {
  fileName: string;
  records: number;
  packageId?: string;
  statusText?: string;
  final?: boolean;
  failure?: string;
  skippedContracts?: number;
}

/** How a batch's records (or one file's) stand: claimed (no result yet), accepted, rejected, and results not yet delivered to their cases. */
export interface RecordCounts {
  claimed: number;
  accepted: number;
  rejected: number;
  undelivered: number;
}

export interface BatchOverview {
  batchId: string;
  state: string;
  error?: string;
  createdAt: string;
  updatedAt: string;
  files: StoredBatchFile[];
  records: RecordCounts;
  /** The same counts per file name. */
  byFile: Record<string, RecordCounts>;
}

const noCounts = (): RecordCounts => ({ claimed: 0, accepted: 0, rejected: 0, undelivered: 0 });
const isoOf = (v: unknown): string => new Date(v as string | Date).toISOString();

function parseFiles(json: unknown): StoredBatchFile[] {
  try {
    const files = JSON.parse(String(json ?? '[]'));
    return Array.isArray(files) ? files : [];
  } catch {
    return [];
  }
}

/** The package id GKB gave a file of a batch (undefined: not uploaded, or refused). */
export function packageOf(files: readonly StoredBatchFile[], fileName: string | null | undefined): string | undefined {
  return fileName ? files.find((f) => f.fileName === fileName)?.packageId : undefined;
}

/** The newest batches (by creation), with their files and record counts; batches that found nothing to claim only when asked. */
export async function recentBatches(db: Db, opts: { limit: number; includeEmpty?: boolean; batchId?: string }): Promise<BatchOverview[]> {
  let q = db('gkb_batches')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'batch_id', order: 'desc' },
    ])
    .limit(opts.limit);
  if (opts.batchId) q = q.where({ batch_id: opts.batchId });
  else if (!opts.includeEmpty) q = q.whereNot({ state: 'empty' });
  const rows = await q.select('batch_id', 'state', 'files', 'error', 'created_at', 'updated_at');
  const ids = rows.map((r) => String(r.batch_id));
  const counts: Array<{ batch_id: string; file_name: string | null; state: string; n: unknown; undelivered: unknown }> = [];
  for (let i = 0; i < ids.length; i += 500) {
    counts.push(
      ...(await db('gkb_records')
        .whereIn('batch_id', ids.slice(i, i + 500))
        .groupBy('batch_id', 'file_name', 'state')
        .select('batch_id', 'file_name', 'state', db.raw('count(*) as n'), db.raw('sum(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END) as undelivered'))),
    );
  }
  return rows.map((r) => {
    const batchId = String(r.batch_id);
    const records = noCounts();
    const byFile: Record<string, RecordCounts> = {};
    for (const c of counts.filter((c) => c.batch_id === batchId)) {
      const file = (byFile[c.file_name ?? '(none)'] ??= noCounts());
      for (const into of [records, file]) addCount(into, c.state, Number(c.n), Number(c.undelivered));
    }
    return {
      batchId,
      state: String(r.state),
      ...(r.error ? { error: String(r.error) } : {}),
      createdAt: isoOf(r.created_at),
      updatedAt: isoOf(r.updated_at),
      files: parseFiles(r.files),
      records,
      byFile,
    };
  });
}

function addCount(into: RecordCounts, state: string, n: number, undelivered: number): void {
  if (state === 'claimed') into.claimed += n;
  if (state === 'accepted') into.accepted += n;
  if (state === 'rejected') into.rejected += n;
  if (state === 'accepted' || state === 'rejected') into.undelivered += undelivered;
}

/** One GKB record of a contract as an operator sees it (no record content: it holds the client's data). */
export interface ContractRecordRow {
  id: number;
  reportKey: string;
  workflowId: string;
  operation: number;
  state: GkbRecordState;
  batchId?: string;
  fileName?: string;
  packageId?: string;
  resultText?: string;
  newContract: boolean;
  skipped: boolean;
  enqueuedAt: string;
  updatedAt: string;
  deliveredAt?: string;
}

/** Every GKB record of a contract, oldest first, each with the package its file went in. */
export async function contractRecords(db: Db, contractCode: string): Promise<ContractRecordRow[]> {
  const rows = await db('gkb_records')
    .where({ contract_code: contractCode })
    .orderBy('id')
    .select(
      'id',
      'report_key',
      'workflow_id',
      'operation',
      'state',
      'batch_id',
      'file_name',
      'result_text',
      'new_contract',
      'skipped',
      'enqueued_at',
      'updated_at',
      'delivered_at',
    );
  const batchIds = [...new Set(rows.map((r) => r.batch_id).filter((b): b is string => Boolean(b)))];
  const files = new Map<string, StoredBatchFile[]>();
  if (batchIds.length)
    for (const b of await db('gkb_batches').whereIn('batch_id', batchIds).select('batch_id', 'files')) files.set(String(b.batch_id), parseFiles(b.files));
  return rows.map((r) => {
    const packageId = r.batch_id ? packageOf(files.get(String(r.batch_id)) ?? [], r.file_name) : undefined;
    return {
      id: Number(r.id),
      reportKey: String(r.report_key),
      workflowId: String(r.workflow_id),
      operation: Number(r.operation),
      state: r.state,
      ...(r.batch_id ? { batchId: String(r.batch_id) } : {}),
      ...(r.file_name ? { fileName: String(r.file_name) } : {}),
      ...(packageId ? { packageId } : {}),
      ...(r.result_text !== null && r.result_text !== undefined ? { resultText: String(r.result_text) } : {}),
      newContract: Boolean(r.new_contract),
      skipped: Boolean(r.skipped),
      enqueuedAt: isoOf(r.enqueued_at),
      updatedAt: isoOf(r.updated_at),
      ...(r.delivered_at ? { deliveredAt: isoOf(r.delivered_at) } : {}),
    };
  });
}

/** The batch files GKB knows under this package id (one, unless a package id was somehow given twice). */
export async function filesOfPackage(db: Db, packageId: string): Promise<Array<{ batchId: string; file: StoredBatchFile }>> {
  // The files are JSON text (saveBatch): a LIKE finds the candidates, the parsed JSON decides.
  const needle = JSON.stringify({ packageId })
    .slice(1, -1)
    .replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await db('gkb_batches')
    .whereRaw("files LIKE ? ESCAPE '\\'", [`%${needle}%`])
    .orderBy('created_at')
    .select('batch_id', 'files');
  return rows.flatMap((r) =>
    parseFiles(r.files)
      .filter((f) => f.packageId === packageId)
      .map((file) => ({ batchId: String(r.batch_id), file })),
  );
}

/** The results written for a file of a batch (delivered or not), and how many of its records have none yet. */
export async function fileResults(db: Db, batchId: string, fileName: string): Promise<{ results: GkbResultRow[]; open: number }> {
  const rows = await db('gkb_records')
    .where({ batch_id: batchId, file_name: fileName })
    .orderBy('id')
    .select('id', 'workflow_id', 'contract_code', 'state', 'result_text', 'new_contract', 'skipped');
  const results = rows
    .filter((r) => r.state === 'accepted' || r.state === 'rejected')
    .map((r) => ({ ...r, id: Number(r.id), result_text: r.result_text ?? '', new_contract: Boolean(r.new_contract), skipped: Boolean(r.skipped) }));
  return { results, open: rows.length - results.length };
}

/** What GKB holds of K2's for the metrics: packages (a batch's file; its records `claimed`) not final yet, and the records still queued. */
export interface GkbInFlight {
  /** Packages in flight: distinct (batch, file) with records claimed (a file not yet built counts as one). */
  packages: number;
  records: number;
  queued: number;
  /** When the batch of the oldest package in flight claimed its records. */
  oldestSince?: Date;
}

export async function gkbInFlight(db: Db): Promise<GkbInFlight> {
  const rows: Array<{ n: number | string; since: string | Date | null }> = await db('gkb_records as r')
    .join('gkb_batches as b', 'b.batch_id', 'r.batch_id')
    .where('r.state', 'claimed')
    .groupBy('r.batch_id', 'r.file_name')
    .select(db.raw('count(*) as n'), db.raw('min(b.created_at) as since'));
  const times = rows.map((r) => (r.since ? new Date(r.since).getTime() : NaN)).filter((t) => !Number.isNaN(t));
  return {
    packages: rows.length,
    records: rows.reduce((sum, r) => sum + Number(r.n), 0),
    queued: await countQueued(db),
    oldestSince: times.length ? new Date(Math.min(...times)) : undefined,
  };
}

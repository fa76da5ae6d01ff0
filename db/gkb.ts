/**
 * The GKB record queue and batch bookkeeping (the database side of DOMAIN.md §2 stage 6).
 * Cases enqueue; a batch claims, files, uploads and records results; results are then delivered.
 * Every step is idempotent so that the batch workflow's activities can be retried safely.
 */
import type { Db } from './index';
import type { ContractRecord } from '../domain/gkb/contract-record';

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
}

const now = () => new Date().toISOString();

/** Queues a report once per report key; returns the record id (the same one when called again). */
export async function enqueueReport(db: Db, report: QueuedReport): Promise<number> {
  return db.transaction(async (trx) => {
    const existing = await trx('gkb_records').where({ report_key: report.reportKey }).first('id');
    if (existing) return Number(existing.id);
    const at = now();
    const [row] = await trx('gkb_records')
      .insert({
        report_key: report.reportKey,
        case_id: report.caseId,
        workflow_id: report.workflowId,
        contract_code: report.record.general.contractCode,
        operation: report.record.operation,
        record: JSON.stringify(report.record),
        state: 'queued',
        enqueued_at: at,
        updated_at: at,
      })
      .returning('id');
    return Number(typeof row === 'object' ? row.id : row);
  });
}

export async function countQueued(db: Db): Promise<number> {
  const [{ n }] = await db('gkb_records').where({ state: 'queued' }).count({ n: '*' });
  return Number(n);
}

/**
 * Claims up to `limit` queued records for a batch, oldest first, at most one per contract code
 * (GKB results are matched back by contract code within a file, so a code appears once per batch;
 * a later report of the same contract waits for the next batch). Claiming again returns the same set.
 */
export async function claimRecords(db: Db, batchId: string, limit: number): Promise<number> {
  return db.transaction(async (trx) => {
    const already = await trx('gkb_records').where({ batch_id: batchId }).count({ n: '*' });
    if (Number(already[0].n) > 0) return Number(already[0].n);
    const candidates = await trx('gkb_records').where({ state: 'queued' }).orderBy('id').limit(limit * 2).select('id', 'contract_code');
    const seen = new Set<string>();
    const ids: number[] = [];
    for (const c of candidates) {
      if (seen.has(c.contract_code) || ids.length >= limit) continue;
      seen.add(c.contract_code);
      ids.push(Number(c.id));
    }
    for (let i = 0; i < ids.length; i += 500) {
      await trx('gkb_records').whereIn('id', ids.slice(i, i + 500)).where({ state: 'queued' }).update({ state: 'claimed', batch_id: batchId, updated_at: now() });
    }
    await trx('gkb_batches')
      .insert({ batch_id: batchId, state: ids.length ? 'claimed' : 'empty', files: '[]', created_at: now(), updated_at: now() })
      .onConflict('batch_id')
      .ignore();
    return ids.length;
  });
}

/** The batch's records in a stable order, read in pages so memory does not grow with the batch. */
export async function* claimedRecords(db: Db, batchId: string, pageSize = 1000): AsyncGenerator<{ id: number; record: ContractRecord }> {
  let after = 0;
  for (;;) {
    const rows = await db('gkb_records').where({ batch_id: batchId }).andWhere('id', '>', after).orderBy('id').limit(pageSize).select('id', 'record');
    if (rows.length === 0) return;
    for (const r of rows) yield { id: Number(r.id), record: JSON.parse(r.record) };
    after = Number(rows[rows.length - 1].id);
  }
}

export async function assignFile(db: Db, batchId: string, fileName: string, contractCodes: string[]): Promise<void> {
  for (let i = 0; i < contractCodes.length; i += 500) {
    await db('gkb_records').where({ batch_id: batchId }).whereIn('contract_code', contractCodes.slice(i, i + 500)).update({ file_name: fileName, updated_at: now() });
  }
}

export async function saveBatch(db: Db, batchId: string, state: string, files: unknown, error?: string): Promise<void> {
  await db('gkb_batches')
    .insert({ batch_id: batchId, state, files: JSON.stringify(files), error: error ?? null, created_at: now(), updated_at: now() })
    .onConflict('batch_id')
    .merge({ state, files: JSON.stringify(files), error: error ?? null, updated_at: now() });
}

/** Writes GKB's result for the records of one file, matched by contract code; untouched rows are returned. */
export async function recordResults(db: Db, batchId: string, fileName: string, results: Map<string, { accepted: boolean; text: string }>): Promise<{ accepted: number; rejected: number; unmatched: string[] }> {
  const rows = await db('gkb_records').where({ batch_id: batchId, file_name: fileName }).select('id', 'contract_code', 'state');
  let accepted = 0;
  let rejected = 0;
  const unmatched: string[] = [];
  await db.transaction(async (trx) => {
    for (const row of rows) {
      const result = results.get(row.contract_code);
      if (!result) {
        unmatched.push(row.contract_code);
        continue;
      }
      result.accepted ? accepted++ : rejected++;
      await trx('gkb_records').where({ id: row.id }).update({ state: result.accepted ? 'accepted' : 'rejected', result_text: result.text, updated_at: now() });
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

export async function undeliveredResults(db: Db, batchId: string, limit: number): Promise<GkbResultRow[]> {
  const rows = await db('gkb_records').where({ batch_id: batchId }).whereIn('state', ['accepted', 'rejected']).whereNull('delivered_at').orderBy('id').limit(limit).select('id', 'workflow_id', 'contract_code', 'state', 'result_text');
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export async function markDelivered(db: Db, ids: number[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    await db('gkb_records').whereIn('id', ids.slice(i, i + 500)).update({ delivered_at: now() });
  }
}

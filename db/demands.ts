/** Payment demands (stage 5): the reference sequence and the status trail, shared by the worker and the API. */
import type { Knex } from 'knex';
import { isSqlite, type Db } from './index';
import { formatDemandReference, nextDemandNumber } from '../domain/demand-status';
import type { DemandStatusCode, DocumentRef } from '../domain/case';

export interface NewDemand {
  caseId: string;
  workflowId: string;
  contractNumber: string;
  amount: string;
  currency: string;
  iban: string;
  iinbin: string;
  evidence: DocumentRef[];
}

export interface DemandRow {
  reference: string;
  case_id: string;
  workflow_id: string;
  contract_number: string;
  amount: string;
  currency: string;
  iban: string;
  iinbin: string;
  evidence: DocumentRef[];
  status: string;
  created_at: string;
  sent_at: string | null;
}

const COUNTER = 'demand_reference_counter';

/**
 * Issues the case's demand once: a second call for the same case returns the same reference,
 * so the activity can be retried after a crash. The reference's number is max(last + 1, the demand
 * clock at `now`) (README "Demand references"): unique while the database lives, and not handed out
 * again after the database is restored from a backup, as long as the clock is not set back.
 */
export async function issueDemand(db: Db, demand: NewDemand, now = new Date()): Promise<string> {
  return db.transaction(async (trx) => {
    // The counter row first: on PostgreSQL FOR UPDATE makes every issuer wait for the one before
    // it to commit (SQLite: BEGIN IMMEDIATE, db/index.ts, already lets one writer in at a time), so
    // the insert below meets a demand a racing attempt of the same case has just issued.
    const counter = await trx(COUNTER)
      .where({ id: 1 })
      .modify((q) => (isSqlite(db) ? q : q.forUpdate()))
      .first('last');
    if (counter === undefined) throw new Error('payment demand: the reference counter is missing (migration 005_demand_reference)');
    const number = nextDemandNumber(Number(counter.last), now);
    const reference = formatDemandReference(number);
    // Inserted first, so a new demand costs no lookup; a case that has its demand (a retry, or a
    // racing attempt that committed first) inserts nothing and leaves the counter where it was.
    const inserted = await trx('payment_demands')
      .insert({
        reference,
        case_id: demand.caseId,
        workflow_id: demand.workflowId,
        contract_number: demand.contractNumber,
        amount: demand.amount,
        currency: demand.currency,
        iban: demand.iban,
        iinbin: demand.iinbin,
        evidence: JSON.stringify(demand.evidence),
        status: 'issued',
        created_at: now.toISOString(),
      })
      .onConflict('case_id')
      .ignore()
      .returning('reference');
    if (inserted.length > 0) {
      await trx(COUNTER).where({ id: 1 }).update({ last: number });
      return reference;
    }
    const existing = await trx('payment_demands').where({ case_id: demand.caseId }).first('reference');
    if (!existing?.reference) throw new Error(`payment demand of case ${demand.caseId}: it has a demand, yet none was found`);
    return existing.reference as string;
  });
}

export async function findDemand(db: Db, reference: string): Promise<DemandRow | undefined> {
  const row = await db('payment_demands').where({ reference }).first();
  return row ? { ...row, evidence: JSON.parse(row.evidence) } : undefined;
}

/** Also a withdrawn demand: EKO has it after all (an attempt that outlived its case's closure). */
export async function markDemandSent(db: Db, reference: string, now = new Date()): Promise<void> {
  await db('payment_demands').where({ reference }).whereIn('status', ['issued', 'withdrawn']).update({ status: 'sent', sent_at: now.toISOString() });
}

/**
 * The case closed before its demand was handed to EKO (repaid between issuing and sending, or
 * closed by an operator): its issued demands are withdrawn, so none stays `issued` for ever.
 * A later send or status still moves it on (markDemandSent, recordDemandStatus).
 */
export async function withdrawUnsentDemands(db: Db | Knex.Transaction, workflowId: string, now = new Date()): Promise<number> {
  return db('payment_demands').where({ workflow_id: workflowId, status: 'issued' }).update({ status: 'withdrawn', status_at: now.toISOString() });
}

const STATUS_RANK: Record<string, number> = { issued: 0, withdrawn: 0, sent: 1, PC1: 2, PC3: 3 };

/** Records a status from EKO; a status never moves back (PC1 after PC3 keeps PC3). */
export async function recordDemandStatus(db: Db, reference: string, status: DemandStatusCode, now = new Date()): Promise<void> {
  const row = await db('payment_demands').where({ reference }).first('status');
  if (!row || STATUS_RANK[row.status] >= STATUS_RANK[status]) return;
  await db('payment_demands').where({ reference }).update({ status, status_at: now.toISOString() });
}

/** Demands by their status (issued, withdrawn, sent, PC1, PC3), for the metrics. */
export async function countDemandsByStatus(db: Db): Promise<Record<string, number>> {
  const rows: Array<{ status: string; n: number | string }> = await db('payment_demands').groupBy('status').select('status').count({ n: '*' });
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

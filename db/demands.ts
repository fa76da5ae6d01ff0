/** Payment demands (stage 5): the reference sequence and the status trail, shared by the worker and the API. */
import type { Db } from './index';
import { formatDemandReference } from '../domain/demand-status';
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

/**
 * Issues the case's demand once: a second call for the same case returns the same reference,
 * so the activity can be retried after a crash. The reference comes from the row id, which the
 * database makes unique across restarts and workers.
 */
export async function issueDemand(db: Db, demand: NewDemand, now = new Date()): Promise<string> {
  return db.transaction(async (trx) => {
    const existing = await trx('payment_demands').where({ case_id: demand.caseId }).first('reference');
    if (existing?.reference) return existing.reference as string;
    // Two attempts of the same case may race (a retried activity whose first attempt is still
    // running): on PostgreSQL both see no row above, and a plain insert would fail the second with
    // a unique violation on case_id. ON CONFLICT DO NOTHING makes the second wait for the first to
    // commit and insert nothing; it then reads the reference the first one issued.
    const [row] = await trx('payment_demands')
      .insert({
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
      .returning('id');
    if (row === undefined) {
      const winner = await trx('payment_demands').where({ case_id: demand.caseId }).first('reference');
      if (!winner?.reference) throw new Error(`payment demand of case ${demand.caseId}: a concurrent issue left no reference`);
      return winner.reference as string;
    }
    const id = Number(typeof row === 'object' ? row.id : row);
    const reference = formatDemandReference(id);
    await trx('payment_demands').where({ id }).update({ reference });
    return reference;
  });
}

export async function findDemand(db: Db, reference: string): Promise<DemandRow | undefined> {
  const row = await db('payment_demands').where({ reference }).first();
  return row ? { ...row, evidence: JSON.parse(row.evidence) } : undefined;
}

export async function markDemandSent(db: Db, reference: string, now = new Date()): Promise<void> {
  await db('payment_demands').where({ reference, status: 'issued' }).update({ status: 'sent', sent_at: now.toISOString() });
}

const STATUS_RANK: Record<string, number> = { issued: 0, sent: 1, PC1: 2, PC3: 3 };

/** Records a status from EKO; a status never moves back (PC1 after PC3 keeps PC3). */
export async function recordDemandStatus(db: Db, reference: string, status: DemandStatusCode, now = new Date()): Promise<void> {
  const row = await db('payment_demands').where({ reference }).first('status');
  if (!row || STATUS_RANK[row.status] >= STATUS_RANK[status]) return;
  await db('payment_demands').where({ reference }).update({ status, status_at: now.toISOString() });
}

/**
 * The loan outbox: the API writes every accepted item here in one transaction before it answers
 * error_code 0; the dispatcher hands rows to Temporal and marks them. A crash between the two
 * only delays an item, never loses it, and re-sending is harmless because the case applies an
 * update idempotently.
 */
import crypto from 'node:crypto';
import type { Db } from './index';
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

/** Inserts all loans of one request atomically; SQLite's variable limit is respected by chunking inside the transaction. */
export async function enqueueLoans(db: Db, loans: Loan[], requestId: string, now = new Date()): Promise<void> {
  const receivedAt = now.toISOString();
  const rows = loans.map((loan) => ({
    contract_number: loan.contract_number,
    payload: JSON.stringify(loan),
    payload_sha256: loanDigest(loan),
    request_id: requestId,
    received_at: receivedAt,
  }));
  await db.transaction(async (trx) => {
    await trx.batchInsert('loan_outbox', rows, 500);
  });
}

/** The oldest undispatched rows whose retry time has come. */
export async function pendingLoans(db: Db, limit: number): Promise<OutboxRow[]> {
  const rows = await db('loan_outbox').whereNull('dispatched_at').orderBy('id').limit(limit).select('id', 'contract_number', 'payload', 'attempts');
  return rows.map((r) => ({ id: Number(r.id), contract_number: r.contract_number, loan: JSON.parse(r.payload), attempts: r.attempts }));
}

export async function markDispatched(db: Db, ids: number[], now = new Date()): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) {
    await db('loan_outbox').whereIn('id', ids.slice(i, i + 500)).update({ dispatched_at: now.toISOString() });
  }
}

export async function markDispatchFailed(db: Db, id: number, error: string): Promise<void> {
  await db('loan_outbox').where({ id }).update({ attempts: db.raw('attempts + 1'), last_error: error.slice(0, 1000) });
}

export async function countPending(db: Db): Promise<number> {
  const [{ n }] = await db('loan_outbox').whereNull('dispatched_at').count({ n: '*' });
  return Number(n);
}

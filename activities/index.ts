/**
 * Activities of the case workflow, built by a factory that receives their dependencies
 * (as in Temporal's samples), so tests can hand in simulators or fakes.
 *
 * Error policy, in one place: a business answer from ABS or EKO is returned as data (the workflow
 * decides what it means); transient trouble is thrown as-is and retried by Temporal; anything
 * permanent (a malformed answer, a rejection) becomes a non-retryable ApplicationFailure whose
 * message names the call, so the operator sees it in the Web UI.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Db } from '../db';
import { findDemand, issueDemand, markDemandSent, NewDemand } from '../db/demands';
import type { AbsClient } from '../integrations/abs';
import { isTransientAbsError } from '../integrations/abs';
import type { EkoClient } from '../integrations/eko';
import { isTransientEkoError } from '../integrations/eko';
import type { DocumentStore } from '../documents/store';
import type { ClientInfo, DisbursementLine, DocumentRef } from '../domain/case';

export interface ActivityDeps {
  db: Db;
  abs: AbsClient;
  eko: EkoClient;
  documents: DocumentStore;
}

/** A business answer of ABS (error_code ≠ 0 in a 200 answer): data for the workflow, never retried. */
export type AbsBusiness<T> = { ok: true; value: T } | { ok: false; errorCode: number; errorText: string };

async function permanentUnlessTransient<T>(call: string, isTransient: (e: unknown) => boolean, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isTransient(err)) throw err;
    const e = err as Error;
    throw ApplicationFailure.nonRetryable(`${call}: ${e.message}`, e.name || 'PermanentError');
  }
}

export function createActivities({ db, abs, eko, documents }: ActivityDeps) {
  const viaAbs = <T>(call: string, fn: () => Promise<T>) => permanentUnlessTransient(call, isTransientAbsError, fn);

  return {
    async checkClient(iinbin: string): Promise<AbsBusiness<ClientInfo>> {
      return viaAbs('ABS client info', async () => {
        const answer = await abs.getClient(iinbin);
        if (!answer.ok) return answer;
        const { fullname, sectecon, residfl } = answer.value;
        return { ok: true, value: { fullname, sectecon, residfl } };
      });
    },

    async listAccounts(iinbin: string): Promise<AbsBusiness<Array<{ iban: string; cur: string }>>> {
      return viaAbs('ABS accounts', async () => {
        const answer = await abs.getAccounts(iinbin);
        if (!answer.ok) return answer;
        // Only what the account check needs goes into history.
        return { ok: true, value: answer.value.ibans.map((a) => ({ iban: a.iban, cur: a.cur })) };
      });
    },

    async fetchStatement(iban: string, date: string): Promise<AbsBusiness<DisbursementLine[]>> {
      return viaAbs('ABS statement', async () => {
        const answer = await abs.getStatement(iban, date);
        if (!answer.ok) return answer;
        return { ok: true, value: answer.value.stmt };
      });
    },

    /** Streams the scan into the document store; only its reference comes back into history. */
    async fetchScan(input: { caseId: string; dbzNum: string; dbzDate: string; iinbin: string }): Promise<{ found: true; ref: DocumentRef } | { found: false }> {
      return viaAbs('ABS loan-agreement scan', async () => {
        const scan = await abs.getScan({ dbzNum: input.dbzNum, dbzDate: input.dbzDate, iinbin: input.iinbin });
        if (!scan.found) return { found: false as const };
        // Tells Temporal the download is alive before the store's write; a local attempt has no heartbeat (short timeout instead).
        if (!Context.current().info.isLocal) Context.current().heartbeat();
        const ref = await documents.put(scan.body, { caseId: input.caseId, kind: 'dbz-scan', mediaType: scan.mediaType, fileName: scan.fileName });
        return { found: true as const, ref };
      });
    },

    async issueDemand(demand: NewDemand): Promise<string> {
      return issueDemand(db, demand);
    },

    /** Hands the demand to EKO (gap G2); idempotent by reference on both sides. */
    async sendDemand(reference: string): Promise<void> {
      const demand = await findDemand(db, reference);
      if (!demand) throw ApplicationFailure.nonRetryable(`payment demand ${reference} is not in the database`, 'DemandMissing');
      await permanentUnlessTransient('EKO payment demand', isTransientEkoError, () =>
        eko.sendDemand({
          reference,
          contract_number: demand.contract_number,
          iban: demand.iban,
          amount: demand.amount,
          currency: demand.currency,
          iinbin: demand.iinbin,
          evidence: demand.evidence.map((d) => ({ kind: 'dbz-scan', ...d })),
          issued_at: new Date(demand.created_at).toISOString(),
        }),
      );
      await markDemandSent(db, reference);
    },
  };
}

export type CaseActivities = ReturnType<typeof createActivities>;

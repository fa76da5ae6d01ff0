/**
 * Activities of the case workflow, built by a factory that receives their dependencies
 * (as in Temporal's samples), so tests can hand in simulators or fakes.
 *
 * Error policy, in one place: a business answer from ABS or EKO is returned as data (the workflow
 * decides what it means); every failure is thrown as an ApplicationFailure whose `type` names the
 * integration and says whether it is transient (domain/failures.ts FAILURE_TYPES): retryable for
 * AbsUnavailable, EkoUnavailable, K2DatabaseUnavailable; non-retryable for AbsProtocolError,
 * EkoRejected, K2DatabaseError. Messages name the call and never carry personal data (they reach
 * history, logs and the Web UI).
 *
 * Every HTTP call gets the activity's cancellationSignal: a local attempt that times out, or a
 * cancelled activity, aborts its HTTP call instead of leaving it running beside the next attempt.
 * A cancelled call throws the cancellation itself (so Temporal records the attempt as cancelled).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Db } from '../db';
import { isTransientDbError } from '../db/errors';
import { findDemand, issueDemand, markDemandSent, NewDemand } from '../db/demands';
import { AbsProtocolError, AbsTransientError, type AbsClient } from '../integrations/abs';
import { EkoTransientError, type EkoClient } from '../integrations/eko';
import { DocumentRejectedError, type DocumentStore } from '../documents/store';
import { findDisbursementLine, type ClientInfo, type DisbursementLine, type DocumentRef } from '../domain/case';
import { FAILURE_TYPES, type FailureType } from '../domain/failures';
import { maskPersonalText } from '../observability/logger';

export interface ActivityDeps {
  db: Db;
  abs: AbsClient;
  eko: EkoClient;
  documents: DocumentStore;
}

/** A business answer of ABS (error_code ≠ 0 in a 200 answer): data for the workflow, never retried. */
export type AbsBusiness<T> = { ok: true; value: T } | { ok: false; errorCode: number; errorText: string };

// ---------------------------------------------------------------------------------------------
// Failures: one ApplicationFailure per integration and kind.
// ---------------------------------------------------------------------------------------------

/**
 * Masks personal data that may hide in a quoted answer: IINs/BINs (12 digits), Kazakhstan IBANs,
 * and the text snippet V8's JSON.parse quotes from a malformed body ("Иванов И"... is not valid JSON).
 */
export function redactPersonalData(text: string): string {
  return maskPersonalText(text.replace(/"(?:[^"\\]|\\.)*"(?:\.\.\.)? is not valid JSON/g, '(answer text omitted) is not valid JSON'));
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function failure(type: FailureType, retryable: boolean, call: string, detail: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    nonRetryable: !retryable,
    message: `${call}: ${redactPersonalData(detail)}`,
    details: details === undefined ? undefined : [details],
  });
}

/** A cancelled activity throws its cancellation as it is; the call's own error would hide it. */
function throwIfCancelled(err: unknown): void {
  const signal = Context.current().cancellationSignal;
  if (signal.aborted) throw signal.reason ?? err;
}

/** ABS trouble: away (network, timeout, 5xx, 408, 429) or a protocol fault; anything else is K2's own bug in the call, not retried either. */
export function absFailure(call: string, err: unknown): ApplicationFailure {
  if (err instanceof AbsTransientError) return failure(FAILURE_TYPES.absUnavailable, true, call, err.message, { httpStatus: err.httpStatus ?? null });
  if (err instanceof AbsProtocolError) return failure(FAILURE_TYPES.absProtocol, false, call, err.message, { httpStatus: err.httpStatus ?? null });
  if (err instanceof DocumentRejectedError) return failure(FAILURE_TYPES.absProtocol, false, call, `the scan ABS sent cannot be stored (${err.message})`);
  return failure(FAILURE_TYPES.absProtocol, false, call, `${(err as Error)?.name ?? 'Error'}: ${messageOf(err)}`);
}

/** EKO away (network, timeout, 5xx, 429) or anything else: a refusal, or a demand K2 would not send. */
export function ekoFailure(call: string, err: unknown): ApplicationFailure {
  if (err instanceof EkoTransientError) return failure(FAILURE_TYPES.ekoUnavailable, true, call, err.message, { httpStatus: err.httpStatus ?? null });
  const { code, httpStatus } = err as { code?: unknown; httpStatus?: unknown };
  return failure(FAILURE_TYPES.ekoRejected, false, call, messageOf(err), {
    code: typeof code === 'number' ? code : null,
    httpStatus: typeof httpStatus === 'number' ? httpStatus : null,
  });
}

/** K2's own database or document store: busy or away (retryable), or refusing the statement (not). */
export function k2DatabaseFailure(call: string, err: unknown): ApplicationFailure {
  const transient = isTransientDbError(err);
  return failure(transient ? FAILURE_TYPES.k2DatabaseUnavailable : FAILURE_TYPES.k2DatabaseError, transient, call, messageOf(err));
}

/** ABS's business answer as data; its text is shown to operators like an error text, so it is masked the same way. */
function businessAnswer(answer: { ok: false; errorCode: number; errorText: string }): { ok: false; errorCode: number; errorText: string } {
  return { ok: false, errorCode: answer.errorCode, errorText: redactPersonalData(answer.errorText) };
}

/** Runs one call; a failure becomes the integration's ApplicationFailure unless the activity was cancelled. */
async function mapped<T>(toFailure: (err: unknown) => ApplicationFailure, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throwIfCancelled(err);
    throw toFailure(err);
  }
}

/** Beats for every chunk, so a long download of a regular activity stays visibly alive and learns of its cancellation (the SDK throttles the beats). */
async function* heartbeating(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const context = Context.current();
  for await (const chunk of body) {
    context.heartbeat();
    yield chunk;
  }
}

// ---------------------------------------------------------------------------------------------
// The activities.
// ---------------------------------------------------------------------------------------------

export function createActivities({ db, abs, eko, documents }: ActivityDeps) {
  const viaAbs = <T>(call: string, fn: (signal: AbortSignal) => Promise<T>) =>
    mapped(
      (err) => absFailure(call, err),
      () => fn(Context.current().cancellationSignal),
    );
  const viaEko = <T>(call: string, fn: (signal: AbortSignal) => Promise<T>) =>
    mapped(
      (err) => ekoFailure(call, err),
      () => fn(Context.current().cancellationSignal),
    );
  const viaDb = <T>(call: string, fn: () => Promise<T>) => mapped((err) => k2DatabaseFailure(call, err), fn);

  return {
    async checkClient(iinbin: string): Promise<AbsBusiness<ClientInfo>> {
      return viaAbs('ABS client info', async (signal) => {
        const answer = await abs.getClient(iinbin, { signal });
        if (!answer.ok) return businessAnswer(answer);
        const { fullname, sectecon, residfl } = answer.value;
        return { ok: true, value: { fullname, sectecon, residfl } };
      });
    },

    async listAccounts(iinbin: string): Promise<AbsBusiness<Array<{ iban: string; cur: string }>>> {
      return viaAbs('ABS accounts', async (signal) => {
        const answer = await abs.getAccounts(iinbin, { signal });
        if (!answer.ok) return businessAnswer(answer);
        // Only what the account check needs goes into history.
        return { ok: true, value: answer.value.ibans.map((a) => ({ iban: a.iban, cur: a.cur })) };
      });
    },

    /** The whole statement; kept for histories recorded before fetchDisbursementLine (and cases running on them). */
    async fetchStatement(iban: string, date: string): Promise<AbsBusiness<DisbursementLine[]>> {
      return viaAbs('ABS statement', async (signal) => {
        const answer = await abs.getStatement(iban, date, { signal });
        if (!answer.ok) return businessAnswer(answer);
        return { ok: true, value: answer.value.stmt };
      });
    },

    /** Only the statement line proving the disbursement (null when there is none): the statement itself never enters history. */
    async fetchDisbursementLine(iban: string, date: string, currency: string): Promise<AbsBusiness<DisbursementLine | null>> {
      return viaAbs('ABS statement', async (signal) => {
        const answer = await abs.getStatement(iban, date, { signal });
        if (!answer.ok) return businessAnswer(answer);
        const line = findDisbursementLine(answer.value.stmt, currency);
        if (!line) return { ok: true, value: null };
        const { purpose, amount, cur, DC, out_bal } = line;
        return { ok: true, value: { purpose, amount, cur, DC, out_bal } };
      });
    },

    /**
     * Streams the scan into the document store; only its reference comes back into history. A body
     * that breaks off (ABS gone, the attempt cancelled) fails the store's put, which keeps nothing of it.
     */
    async fetchScan(input: { caseId: string; dbzNum: string; dbzDate: string; iinbin: string }): Promise<{ found: true; ref: DocumentRef } | { found: false }> {
      const call = 'ABS loan-agreement scan';
      const scan = await viaAbs(call, (signal) => abs.getScan({ dbzNum: input.dbzNum, dbzDate: input.dbzDate, iinbin: input.iinbin }, { signal }));
      if (!scan.found) return { found: false };
      const isLocal = Context.current().info.isLocal;
      // Tells Temporal the download is alive; a local attempt has no heartbeat (its short timeout instead).
      if (!isLocal) Context.current().heartbeat();
      const meta = { caseId: input.caseId, kind: 'dbz-scan', mediaType: scan.mediaType, fileName: scan.fileName };
      try {
        const ref = await documents.put(isLocal ? scan.body : heartbeating(scan.body), meta);
        return { found: true, ref };
      } catch (err) {
        throwIfCancelled(err);
        // The body's own errors are ABS's; everything else is K2's document store.
        if (err instanceof AbsTransientError || err instanceof AbsProtocolError || err instanceof DocumentRejectedError) throw absFailure(call, err);
        throw k2DatabaseFailure('K2 document store: store the loan-agreement scan', err);
      } finally {
        // Releases the connection when the store gave up before reading the body to its end.
        scan.body.destroy();
      }
    },

    async issueDemand(demand: NewDemand): Promise<string> {
      return viaDb('K2 database: issue payment demand', () => issueDemand(db, demand));
    },

    /** Hands the demand to EKO (gap G2); idempotent by reference on both sides (EKO's Idempotency-Key). */
    async sendDemand(reference: string): Promise<void> {
      const demand = await viaDb('K2 database: find payment demand', () => findDemand(db, reference));
      if (!demand)
        throw failure(FAILURE_TYPES.k2DatabaseError, false, 'K2 database: find payment demand', `payment demand ${reference} is not in the database`);
      await viaEko('EKO payment demand', (signal) =>
        eko.sendDemand(
          {
            reference,
            contract_number: demand.contract_number,
            iban: demand.iban,
            amount: demand.amount,
            currency: demand.currency,
            iinbin: demand.iinbin,
            evidence: demand.evidence.map((d) => ({ kind: 'dbz-scan', ...d })),
            issued_at: new Date(demand.created_at).toISOString(),
          },
          { signal },
        ),
      );
      await viaDb('K2 database: mark payment demand sent', () => markDemandSent(db, reference));
    },
  };
}

export type CaseActivities = ReturnType<typeof createActivities>;

/** In-test fakes of the case's ABS and EKO activities, shared by the workflow tests. */
import { ApplicationFailure } from '@temporalio/common';
import type { CaseActivities } from '../../activities';
import type { EnqueueOutcome, GkbActivities } from '../../activities/gkb';
import type { CloseEpisodeInput } from '../../activities/episodes';
import type { Loan } from '../../domain/loan';
import type { CaseStatus } from '../../domain/case';
import { caseStatusQuery } from '../../workflows/definitions';

export const DAY = 24 * 3600 * 1000;

export const loan: Loan = {
  iban: 'KZ86125KZT5004100100',
  cur: 'KZT',
  debt: '2000000.00',
  fullname: 'Тестов Тест Тестович',
  contract_number: 'KD0000000001',
  dbz_contract_number: 'DBZ-0001',
  iinbin: '890101402471',
  overdue_days: 90,
  system: 'way4',
  dbz_date: '2020-01-01',
};

export const settings = { absHorizonMs: 6 * 3600 * 1000, scanRecheckMs: DAY, maxHistoryEvents: 2000 };

/** Fake ABS/EKO behaviour the tests steer; GKB enqueueing is faked too unless the test brings its own. */
export function fakeCaseActivities(
  opts: {
    scanAvailableAfter?: () => boolean;
    accountsCur?: string;
    protocolError?: boolean;
    clientTransientFailures?: number;
    gkb?: 'queue' | 'not-applicable';
    /** Called after each queued GKB record (e.g. to deliver its result like a batch would). */
    onQueued?: (input: { workflowId: string; recordId: string; overdueDays: number }) => void;
    /** Makes a call fail: the error is thrown by the named fake on every attempt. */
    failing?: { call: string; error: () => Error };
  } = {},
) {
  const calls: string[] = [];
  const closedEpisodes: CloseEpisodeInput[] = [];
  const failIf = (call: string) => {
    if (opts.failing?.call === call) throw opts.failing.error();
  };
  let clientFailuresLeft = opts.clientTransientFailures ?? 0;
  let demandSeq = 0;
  let gkbSeq = 0;
  const recordByReportKey = new Map<string, string>();
  const acts: CaseActivities & Pick<GkbActivities, 'enqueueGkbReport'> & { closeEpisode(input: CloseEpisodeInput): Promise<void> } = {
    async checkClient() {
      calls.push('checkClient');
      if (opts.protocolError) throw ApplicationFailure.nonRetryable('ABS client info: fullname missing', 'AbsProtocolError');
      if (clientFailuresLeft > 0) {
        clientFailuresLeft -= 1;
        throw new Error('ABS answered HTTP 503'); // transient: retried
      }
      return { ok: true, value: { fullname: 'Тестов Тест Тестович', sectecon: 9, residfl: 1 } };
    },
    async listAccounts() {
      calls.push('listAccounts');
      return { ok: true, value: [{ iban: loan.iban, cur: opts.accountsCur ?? 'KZT' }] };
    },
    async fetchDisbursementLine() {
      calls.push('fetchDisbursementLine');
      failIf('fetchDisbursementLine');
      return { ok: true, value: { purpose: 'Предоставление кредита по договору', amount: '900000.00', cur: 'KZT', DC: 'D', out_bal: '900000.00' } };
    },
    async fetchStatement() {
      calls.push('fetchStatement');
      return { ok: true, value: [{ purpose: 'Предоставление кредита по договору', amount: '900000.00', cur: 'KZT', DC: 'D', out_bal: '900000.00' }] };
    },
    async fetchScan() {
      calls.push('fetchScan');
      if (opts.scanAvailableAfter && !opts.scanAvailableAfter()) return { found: false };
      return { found: true, ref: { sha256: 'a'.repeat(64), size: 1234, mediaType: 'application/pdf', fileName: 'Имяфайла.pdf' } };
    },
    async issueDemand() {
      calls.push('issueDemand');
      failIf('issueDemand');
      demandSeq += 1;
      return `PTP${String(demandSeq).padStart(11, '0')}`;
    },
    async sendDemand() {
      calls.push('sendDemand');
      failIf('sendDemand');
    },
    async enqueueGkbReport(input): Promise<EnqueueOutcome> {
      calls.push(`enqueueGkbReport:${input.dossier.overdueDays}`);
      failIf('enqueueGkbReport');
      if (opts.gkb !== 'queue') return { state: 'not-applicable', reason: 'legal entity: the pawnshop GKB format covers individuals only (G3)' };
      // One record per report key, as K2's queue (db/gkb.ts): a local activity re-run after a workflow
      // task that a signal met (UNHANDLED_COMMAND, retried with the signal) must not make a second record.
      const known = recordByReportKey.get(input.reportKey);
      if (known) return { state: 'queued', recordId: known };
      const recordId = String(++gkbSeq);
      recordByReportKey.set(input.reportKey, recordId);
      opts.onQueued?.({ workflowId: input.workflowId, recordId, overdueDays: input.dossier.overdueDays });
      return { state: 'queued', recordId };
    },
    async closeEpisode(input: CloseEpisodeInput) {
      calls.push('closeEpisode');
      closedEpisodes.push(input);
    },
  };
  return { acts, calls, closedEpisodes };
}

/** Polls the case's status until it satisfies `pred` (time-skipping tests: the case moves between queries). */
export async function waitForCaseStatus(
  handle: { query: (q: typeof caseStatusQuery) => Promise<CaseStatus> },
  pred: (s: CaseStatus) => boolean,
  tries = 400,
): Promise<CaseStatus> {
  let last: CaseStatus | undefined;
  for (let i = 0; i < tries; i++) {
    try {
      last = await handle.query(caseStatusQuery);
      if (pred(last)) return last;
    } catch {
      // between two runs of a continue-as-new the query may find no worker-held run for a moment
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(last));
}

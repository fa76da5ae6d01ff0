/** cli/case-view.ts: what `case show` makes of a case's facts (history, status, description). */
import type { CaseFact } from '../../cli/case-facts';
import { demandStatusesOf, failuresOf, latestLoanOf, retryingOf, showLines, stageSinceOf, stageSteps, stagesBetween, type CaseView } from '../../cli/case-view';
import type { CaseStatus } from '../../domain/case';
import { loan } from '../helpers/case-fakes';

const run = 'run-1';
const facts: CaseFact[] = [
  {
    type: 'started',
    at: '2026-12-01T10:00:00.000Z',
    runId: run,
    eventId: 1,
    visible: { stage: 'received', stageSince: '2026-12-01T10:00:00.000Z' },
    input: { loan },
    continued: false,
  },
  {
    type: 'local-call-failed',
    at: '2026-12-01T10:00:05.000Z',
    runId: run,
    eventId: 7,
    activity: 'fetchScan',
    attempt: 3,
    error: 'AbsUnavailable: ABS scan: HTTP 503',
  },
  {
    type: 'visible',
    at: '2026-12-01T10:00:06.000Z',
    runId: run,
    eventId: 9,
    visible: { stage: 'account-checked', attention: 'scan-missing', stageSince: '2026-12-01T10:00:04.000Z', absSystem: 'way4' },
  },
  {
    type: 'visible',
    at: '2026-12-01T11:00:00.000Z',
    runId: run,
    eventId: 20,
    visible: { stage: 'account-checked', attention: null, stageSince: '2026-12-01T10:00:04.000Z' },
  },
  {
    type: 'visible',
    at: '2026-12-01T11:00:01.000Z',
    runId: run,
    eventId: 25,
    visible: { stage: 'demand-issued', attention: null, stageSince: '2026-12-01T11:00:01.000Z' },
  },
  { type: 'signal', at: '2026-12-01T11:05:00.000Z', runId: run, eventId: 30, name: 'demandStatus', args: [{ reference: 'PTP00000000001', status: 'PC1' }] },
  { type: 'signal', at: '2026-12-01T12:00:00.000Z', runId: run, eventId: 31, name: 'loanUpdated', args: [{ ...loan, overdue_days: 95 }, { acceptedSeq: 2 }] },
  { type: 'signal', at: '2026-12-01T12:10:00.000Z', runId: run, eventId: 32, name: 'demandStatus', args: [{ reference: 'PTP00000000001', status: 'PC3' }] },
];

test('the stage history: each change of stage or attention, the stages one workflow task passed listed as via', () => {
  expect(stageSteps(facts)).toEqual([
    { at: '2026-12-01T10:00:00.000Z', stage: 'received' },
    { at: '2026-12-01T10:00:06.000Z', stage: 'account-checked', attention: 'scan-missing', via: ['client-checked'] },
    { at: '2026-12-01T11:00:00.000Z', stage: 'account-checked' },
    { at: '2026-12-01T11:00:01.000Z', stage: 'demand-issued', via: ['evidence-collected'] },
  ]);
  expect(stagesBetween('received', 'client-checked')).toEqual([]);
  expect(stagesBetween('demand-issued', 'received')).toEqual([]);
});

test('since when the case is in its stage: K2StageSince when published, else the history step that entered the stage', () => {
  expect(stageSinceOf(facts, stageSteps(facts))).toEqual({ at: '2026-12-01T11:00:01.000Z', source: 'K2StageSince' });
  const old: CaseFact[] = facts.map((f) => (f.type === 'started' || f.type === 'visible' ? { ...f, visible: { ...f.visible, stageSince: undefined } } : f));
  const parkedOld = old.slice(0, 4);
  expect(stageSinceOf(parkedOld, stageSteps(parkedOld))).toEqual({ at: '2026-12-01T10:00:06.000Z', source: 'history' });
});

test("the demand's statuses from EKO, the loan as last sent, the failures of local calls", () => {
  expect(demandStatusesOf(facts)).toEqual([
    { at: '2026-12-01T11:05:00.000Z', reference: 'PTP00000000001', status: 'PC1' },
    { at: '2026-12-01T12:10:00.000Z', reference: 'PTP00000000001', status: 'PC3' },
  ]);
  expect(latestLoanOf(facts)).toEqual({ receivedAt: '2026-12-01T12:00:00.000Z', value: { ...loan, overdue_days: 95 } });
  expect(latestLoanOf(facts.slice(0, 1))).toEqual({ receivedAt: '2026-12-01T10:00:00.000Z', value: loan });
  expect(failuresOf(facts).localCallFailures).toEqual([
    { at: '2026-12-01T10:00:05.000Z', activity: 'fetchScan', attempts: 3, error: 'AbsUnavailable: ABS scan: HTTP 503' },
  ]);
});

test('retrying: an activity on its second attempt or later (the most tried first), else a workflow task that keeps failing', () => {
  expect(retryingOf([{ activity: 'sendDemand', state: 'scheduled', attempt: 1 }], undefined)).toBeUndefined();
  expect(
    retryingOf(
      [
        { activity: 'a', state: 'scheduled', attempt: 2 },
        { activity: 'checkClient', state: 'scheduled', attempt: 7, lastError: 'AbsUnavailable: HTTP 503' },
      ],
      undefined,
    ),
  ).toEqual({ activity: 'checkClient', attempt: 7, lastError: 'AbsUnavailable: HTTP 503' });
  expect(retryingOf([], { attempt: 4, state: 'scheduled' })).toEqual({ activity: 'workflow task', attempt: 4 });
  expect(retryingOf([], { attempt: 1, state: 'started' })).toBeUndefined();
});

test('`case show` for people: stage and since, attention, history, demand and statuses, GKB reports with their package, pending activities, the loan', () => {
  const status: CaseStatus = {
    contractNumber: loan.contract_number,
    stage: 'demand-issued',
    attention: { code: 'gkb-waiting', reason: 'GKB has not answered record 7', stage: 'demand-issued', since: '2026-12-04T11:00:00.000Z' },
    debt: loan.debt,
    currency: 'KZT',
    overdueDays: 95,
    dbzDate: '2020-01-01',
    demand: { reference: 'PTP00000000001', status: 'PC3', acceptedByBank: true, inCardIndex: true },
    scan: { sha256: 'a'.repeat(64), size: 1234, mediaType: 'application/pdf', fileName: 'x.pdf' },
    gkb: { state: 'queued', recordId: '7' },
    updates: 1,
    notices: [{ code: 'gkb-waiting', reason: 'GKB has not answered record 7', stage: 'demand-issued', since: '2026-12-04T11:00:00.000Z' }],
  };
  const steps = stageSteps(facts);
  const view: CaseView = {
    contract: loan.contract_number,
    workflowId: `case-${loan.contract_number}`,
    runId: run,
    execution: 'running',
    runsRead: 1,
    olderRunsLeftOut: false,
    status,
    stageSince: stageSinceOf(facts, steps),
    stages: steps,
    demandStatuses: demandStatusesOf(facts),
    gkbReports: [
      {
        recordId: '7',
        kind: 'overdue',
        operation: 2,
        state: 'claimed',
        batchId: 'gkb-batch-1',
        package: 'K2_20261201_1.zip',
        packageId: '555',
        newContract: false,
        skipped: false,
        enqueuedAt: '2026-12-01T11:00:01.000Z',
        updatedAt: '2026-12-01T11:10:00.000Z',
      },
    ],
    pendingActivities: [
      { activity: 'sendDemand', state: 'scheduled', attempt: 3, lastError: 'EkoUnavailable: HTTP 503', nextAttemptAt: '2026-12-05T00:00:10.000Z' },
    ],
    ...failuresOf(facts),
    loan: latestLoanOf(facts),
  };
  const text = showLines(view, new Date('2026-12-05T00:00:00.000Z')).join('\n');
  expect(text).toContain('stage      demand-issued   since 2026-12-01T11:00:01.000Z (3d 12h ago)');
  expect(text).toContain('attention  gkb-waiting at demand-issued, since 2026-12-04T11:00:00.000Z (13h 00m ago): GKB has not answered record 7');
  expect(text).toContain('2026-12-01T10:00:06.000Z  account-checked (via client-checked)  needs attention: scan-missing');
  expect(text).toContain('PTP00000000001  PC3  accepted by the bank: yes  in the card index: yes');
  expect(text).toContain('2026-12-01T12:10:00.000Z  PC3  (PTP00000000001)');
  expect(text).toContain('record 7  overdue  op 2  claimed  package K2_20261201_1.zip (GKB 555)  batch gkb-batch-1');
  expect(text).toContain(`scan: sha256 ${'a'.repeat(64)}, 1234 bytes, application/pdf`);
  expect(text).toContain('sendDemand  scheduled  attempt 3  next 2026-12-05T00:00:10.000Z\n    last error: EkoUnavailable: HTTP 503');
  expect(text).toContain('fetchScan  after 3 attempt(s): AbsUnavailable: ABS scan: HTTP 503');
  expect(text).toMatch(/overdue_days +95/);
  // The notice shown as the attention is not repeated.
  expect(text).not.toContain('notice     gkb-waiting');
});

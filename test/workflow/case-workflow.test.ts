/**
 * The case workflow on the time-skipping test server: days of timers pass in seconds.
 * Activities are in-test fakes here (this is the workflow's unit test); the same workflow runs
 * against the real simulators in the end-to-end test.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseInput, CaseStatus } from '../../domain/case';
import { BASELINE_PATCH, caseStatusQuery, caseWorkflow, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal } from '../../workflows';
import { workflowsPath } from '../../worker';
import { timeSkippingEnv } from '../helpers/temporal';
import { patchesRecorded, recordHistory } from '../helpers/histories';
import { DAY, fakeCaseActivities as fakeActivities, loan, settings } from '../helpers/case-fakes';

const EventType = temporal.api.enums.v1.EventType;

let env: TestWorkflowEnvironment;
let taskQueue = 'test-cases';
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(acts: object, fn: () => Promise<T>): Promise<T> {
  taskQueue = `test-cases-${++queues}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: workflowsPath(),
    activities: acts,
  });
  return worker.runUntil(fn);
}

async function waitForStatus(handle: { query: (q: typeof caseStatusQuery) => Promise<CaseStatus> }, pred: (s: CaseStatus) => boolean): Promise<CaseStatus> {
  for (let i = 0; i < 200; i++) {
    const s = await handle.query(caseStatusQuery);
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(await handle.query(caseStatusQuery)));
}

/** The K2Stage values the case upserted, in order. */
function upsertedStages(events: temporal.api.history.v1.IHistoryEvent[]): string[] {
  return events
    .map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.K2Stage)
    .filter((p) => p?.data)
    .map((p) => JSON.parse(Buffer.from(p!.data!).toString('utf8')));
}

function start(id: string, input: Partial<CaseInput> = {}) {
  return env.client.workflow.start(caseWorkflow, {
    workflowId: caseWorkflowId(id),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: id }, settings, ...input }],
  });
}

test('a case runs to its demand and GKB report, follows PC3-before-PC1, and reports the closure to GKB', async () => {
  const { acts, calls } = fakeActivities({ gkb: 'queue' });
  await withWorker(acts, async () => {
    const handle = await start('KD-HAPPY');
    const issued = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    expect(issued).toMatchObject({ stage: 'demand-issued', gkb: { state: 'queued', recordId: '1' }, demand: { status: 'sent' } });
    expect(issued.scan?.sha256).toBe('a'.repeat(64));
    expect(calls).toEqual(['checkClient', 'listAccounts', 'fetchDisbursementLine', 'fetchScan', 'issueDemand', 'sendDemand', 'enqueueGkbReport:90']);

    await handle.signal(gkbResultSignal, { recordId: '99', outcome: 'rejected', text: 'someone else' });
    await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Создан новый контракт.' });
    const reported = await waitForStatus(handle, (s) => s.stage === 'reported-to-gkb');
    expect(reported.gkb).toEqual({ state: 'accepted', recordId: '1', result: 'Создан новый контракт.' });

    await handle.signal(demandStatusSignal, { reference: issued.demand!.reference, status: 'PC3' });
    const pc3 = await waitForStatus(handle, (s) => s.demand?.inCardIndex === true);
    expect(pc3.demand).toMatchObject({ status: 'PC3', acceptedByBank: true });
    await handle.signal(demandStatusSignal, { reference: issued.demand!.reference, status: 'PC1' });
    await handle.signal(demandStatusSignal, { reference: 'PTP99999999999', status: 'PC1' });

    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: 'KD-HAPPY', debt: '0.00' });
    // Closing reports the contract as no longer overdue, and the case waits for GKB's answer.
    await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued' && (s.gkb as { recordId: string }).recordId === '2');
    expect(calls[calls.length - 1]).toBe('enqueueGkbReport:0');
    await handle.signal(gkbResultSignal, { recordId: '2', outcome: 'accepted', text: 'Контракт обновлен.' });
    const result = await handle.result();
    expect(result).toMatchObject({
      stage: 'closed',
      closedReason: 'repaid',
      debt: '0.00',
      demand: { status: 'PC3' },
      gkb: { state: 'accepted', recordId: '2' },
    });
    // A new run records the baseline's one marker, not one per older patch.
    expect(patchesRecorded(await handle.fetchHistory())).toEqual({ markers: [BASELINE_PATCH], changeVersionUpserts: 1 });
    await recordHistory(handle, 'case-happy-path');
  });
});

test('a case calls ABS, EKO and its queues as local activities: no activity task, one search-attribute update per wait', async () => {
  const { acts } = fakeActivities({ gkb: 'queue' });
  await withWorker(acts, async () => {
    const handle = await start('KD-LOCAL');
    await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Создан новый контракт.' });
    await waitForStatus(handle, (s) => s.stage === 'reported-to-gkb');
    await handle.signal(operatorActionSignal, { action: 'close' });
    await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued');
    const { events } = await handle.fetchHistory();
    const types = events!.map((e) => e.eventType);
    expect(types).not.toContain(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
    const isLocalCall = (e: temporal.api.history.v1.IHistoryEvent) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity';
    expect(events!.filter(isLocalCall)).toHaveLength(8); // checkClient … enqueueGkbReport, and the closure's enqueueGkbReport
    // Stages passed without waiting share one update: the first is made when the GKB report waits.
    expect(upsertedStages(events!)).toEqual(['demand-issued', 'reported-to-gkb', 'closed']);
    await handle.terminate('test done');
  });
});

test('a call whose quick local attempts fail transiently goes on as a regular activity, visible with its attempts', async () => {
  const { acts, calls } = fakeActivities({ clientTransientFailures: 4 });
  await withWorker(acts, async () => {
    const handle = await start('KD-FALLBACK');
    const done = await waitForStatus(handle, (s) => s.demand?.status === 'sent');
    expect(done.attention).toBeUndefined();
    // Three local attempts, then the regular activity: its first attempt fails, its second succeeds.
    expect(calls.filter((c) => c === 'checkClient')).toHaveLength(5);
    const { events } = await handle.fetchHistory();
    const scheduled = events!.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType?.name);
    expect(scheduled).toEqual(['checkClient']);
    const started = events!.find((e) => e.activityTaskStartedEventAttributes)!.activityTaskStartedEventAttributes!;
    expect(started.attempt).toBe(2);
    await handle.terminate('test done');
    await recordHistory(handle, 'case-abs-transient-regular-fallback');
  });
});

test('EKO re-sending the loan with a new overdue state reports it to GKB again, once the previous report is accepted', async () => {
  const { acts, calls } = fakeActivities({ gkb: 'queue' });
  await withWorker(acts, async () => {
    const handle = await start('KD-REPORT');
    await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    // Updated while the first report waits at GKB: nothing new is queued yet.
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: 'KD-REPORT', overdue_days: 95 });
    await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
    const second = await waitForStatus(handle, (s) => s.gkb.state === 'queued' && (s.gkb as { recordId: string }).recordId === '2');
    expect(second).toMatchObject({ stage: 'reported-to-gkb', overdueDays: 95 });
    expect(calls.filter((c) => c.startsWith('enqueueGkbReport'))).toEqual(['enqueueGkbReport:90', 'enqueueGkbReport:95']);

    await handle.signal(gkbResultSignal, { recordId: '2', outcome: 'accepted', text: 'Контракт обновлен.' });
    await waitForStatus(handle, (s) => s.gkb.state === 'accepted' && (s.gkb as { recordId: string }).recordId === '2');
    // The same state again (an identical re-send) reports nothing new.
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: 'KD-REPORT', overdue_days: 95 });
    await handle.signal(demandStatusSignal, { reference: second.demand!.reference, status: 'PC1' });
    await waitForStatus(handle, (s) => s.demand?.status === 'PC1');
    expect(calls.filter((c) => c.startsWith('enqueueGkbReport'))).toHaveLength(2);
    // The re-report is the baseline's: no marker of 'gkb-report-on-update' of its own.
    expect(patchesRecorded(await handle.fetchHistory())).toEqual({ markers: [BASELINE_PATCH], changeVersionUpserts: 1 });
    await handle.terminate('test done');
    await recordHistory(handle, 'case-gkb-report-on-update');
  });
});

test('a missing scan waits in Needs attention and is picked up by the daily re-check two days later', async () => {
  let scanRequests = 0;
  // ABS has the scan from the third request on: after two daily re-checks.
  const { acts } = fakeActivities({ scanAvailableAfter: () => ++scanRequests >= 3 });
  await withWorker(acts, async () => {
    const handle = await start('KD-SCAN');
    const parked = await waitForStatus(handle, (s) => s.attention?.code === 'scan-missing');
    expect(parked.stage).toBe('account-checked');
    expect(parked.attention?.reason).toMatch(/no scan of agreement DBZ-0001/);
    const parkedAt = await env.currentTimeMs();

    await env.sleep(DAY + 60_000); // time-skipping: a day passes in a moment
    expect((await handle.query(caseStatusQuery)).attention?.code).toBe('scan-missing');
    await env.sleep(DAY);
    const done = await waitForStatus(handle, (s) => s.demand?.status === 'sent');
    expect(done.attention).toBeUndefined();
    expect(scanRequests).toBe(3);
    expect((await env.currentTimeMs()) - parkedAt).toBeGreaterThanOrEqual(2 * DAY);
    await handle.signal(operatorActionSignal, { action: 'close' });
    expect(await handle.result()).toMatchObject({ closedReason: 'operator' });
    await recordHistory(handle, 'case-scan-missing-recheck');
  });
});

test('a currency mismatch parks the case with its reason until an operator retries', async () => {
  const behaviour = { accountsCur: 'USD' };
  const { acts } = fakeActivities(behaviour);
  const wrapped = { ...acts, listAccounts: async (_iin: string) => ({ ok: true, value: [{ iban: loan.iban, cur: behaviour.accountsCur }] }) };
  await withWorker(wrapped, async () => {
    const handle = await start('KD-CUR');
    const parked = await waitForStatus(handle, (s) => s.attention !== undefined);
    expect(parked.attention).toMatchObject({ code: 'currency-mismatch', stage: 'client-checked' });
    expect(parked.attention?.reason).toBe('the loan is in KZT but its account in ABS is in USD');

    behaviour.accountsCur = 'KZT'; // ABS corrected by the bank
    await handle.signal(operatorActionSignal, { action: 'retry', note: 'account currency fixed in ABS' });
    await waitForStatus(handle, (s) => s.demand?.status === 'sent' && s.attention === undefined);
    await handle.terminate('test done');
    await recordHistory(handle, 'case-currency-mismatch-retry');
  });
});

test('a loan without agreement date waits until EKO re-sends it with one (gap G1)', async () => {
  const { acts, calls } = fakeActivities();
  await withWorker(acts, async () => {
    const { dbz_date: _omit, ...undated } = loan;
    const handle = await start('KD-G1', { loan: { ...undated, contract_number: 'KD-G1' } });
    const parked = await waitForStatus(handle, (s) => s.attention?.code === 'agreement-date-missing');
    expect(calls).not.toContain('fetchDisbursementLine');
    expect(parked.stage).toBe('account-checked');
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: 'KD-G1', dbz_date: '2020-02-03', overdue_days: 95 });
    const done = await waitForStatus(handle, (s) => s.demand?.status === 'sent');
    expect(done).toMatchObject({ dbzDate: '2020-02-03', overdueDays: 95, updates: 1 });
    await handle.terminate('test done');
    await recordHistory(handle, 'case-agreement-date-missing');
  });
});

test('a malformed ABS answer is not retried: the case shows the call and the field', async () => {
  const { acts, calls } = fakeActivities({ protocolError: true });
  await withWorker(acts, async () => {
    const handle = await start('KD-PROTO');
    const parked = await waitForStatus(handle, (s) => s.attention !== undefined);
    expect(parked.attention).toMatchObject({ code: 'abs-protocol', reason: 'ABS client info: fullname missing' });
    expect(calls.filter((c) => c === 'checkClient')).toHaveLength(1);
    await handle.terminate('test done');
  });
});

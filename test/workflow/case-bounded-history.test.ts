/**
 * Bounded history, true details (issue 12): every wait of the case checks continue-as-new, and
 * nothing is lost across it. Time-skipping server, fakes (test/helpers/case-fakes.ts).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseInput, CaseStatus } from '../../domain/case';
import { caseWorkflow, demandStatusSignal, gkbResultSignal, loanUpdatedSignal } from '../../workflows';
import { workflowsPath } from '../../worker';
import { timeSkippingEnv } from '../helpers/temporal';
import { recordHistory } from '../helpers/histories';
import { DAY, fakeCaseActivities, loan, settings, waitForCaseStatus as waitFor } from '../helpers/case-fakes';

let env: TestWorkflowEnvironment;
let taskQueue = 'test-bounded';
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(acts: object, fn: () => Promise<T>, options: { maxCachedWorkflows?: number } = {}): Promise<T> {
  taskQueue = `test-bounded-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts, ...options });
  return worker.runUntil(fn);
}

function start(id: string, input: Partial<CaseInput> = {}) {
  return env.client.workflow.start(caseWorkflow, {
    workflowId: caseWorkflowId(id),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: id }, settings, ...input }],
    staticSummary: `Overdue loan ${id} (way4)`,
  });
}

/** Every run of the case's chain, first to last, with its history length. */
async function runsOf(workflowId: string, firstRunId: string): Promise<Array<{ runId: string; events: number; continued: boolean }>> {
  const runs = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const { events } = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const next: string | undefined = events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    runs.push({ runId, events: events!.length, continued: next !== undefined });
    runId = next;
  }
  return runs;
}

const recordOf = (s: CaseStatus) => (s.gkb as { recordId?: string }).recordId;

const DAYS = 365;
test('a year of daily re-sends, each accepted by GKB: every run stays under the bound and the last still has the demand, its status, the GKB record and result, the updates', async () => {
  const bound = 60;
  // Each queued record, as the GKB queue sees it; the test answers for GKB.
  const queuedRecords: string[] = [];
  let onQueue: (() => void) | undefined;
  const { acts } = fakeCaseActivities({ gkb: 'queue', onQueued: ({ recordId }) => (queuedRecords.push(recordId), onQueue?.()) });
  const nextQueued = (count: number) =>
    new Promise<void>((resolve) => {
      onQueue = () => queuedRecords.length >= count && resolve();
      onQueue();
    });
  await withWorker(acts, async () => {
    const id = 'KD-YEAR';
    const handle = await start(id, { settings: { ...settings, maxHistoryEvents: bound }, meta: { acceptedSeq: 1 } });
    const latest = env.client.workflow.getHandle(caseWorkflowId(id));
    const queued = await waitFor(latest, (s) => s.gkb.state === 'queued');
    await latest.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC1' });
    await latest.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });

    for (let day = 1; day <= DAYS; day++) {
      await env.sleep(DAY);
      await latest.signal(loanUpdatedSignal, { ...loan, contract_number: id, overdue_days: 90 + day }, { acceptedSeq: 1 + day });
      // EKO's pace: the next re-send comes after the case took this one in (queued its record); a
      // status query per day instead made the year take over 4 minutes on the time-skipping server.
      // GKB accepts each record at once, often while the task that queued it is still open
      // (delivered to whichever run waits for it, as a batch does).
      await nextQueued(day + 1);
      await latest.signal(gkbResultSignal, { recordId: String(day + 1), outcome: 'accepted', text: 'Контракт обновлен.' });
    }
    const last = await waitFor(latest, (s) => s.overdueDays === 90 + DAYS && s.gkb.state === 'accepted');
    expect(last).toMatchObject({
      stage: 'reported-to-gkb',
      demand: { reference: queued.demand!.reference, status: 'PC1', acceptedByBank: true },
      gkb: { state: 'accepted', recordId: String(DAYS + 1), result: 'Контракт обновлен.' },
      updates: DAYS,
    });
    expect(last.attention).toBeUndefined();
    expect(queuedRecords).toHaveLength(DAYS + 1);

    const runs = await runsOf(caseWorkflowId(id), handle.firstExecutionRunId);
    expect(runs.length).toBeGreaterThan(50);
    for (const run of runs) expect(run.events).toBeLessThan(bound);
    await latest.terminate('test done');
  });
}, 300_000);

test('a continue-as-new while a GKB record waits carries the record and its result: the next run waits for it instead of queueing again', async () => {
  const { acts, calls } = fakeCaseActivities({ gkb: 'queue' });
  await withWorker(acts, async () => {
    const id = 'KD-PENDING';
    // The bound is reached however the signals below are batched into workflow tasks: the first task
    // leaves about 15 events, and the 17 signals add at least 17 more and one task (the bound less its margin of 20 is 30).
    const handle = await start(id, { settings: { ...settings, maxHistoryEvents: 50 } });
    const latest = env.client.workflow.getHandle(caseWorkflowId(id));
    const queued = await waitFor(latest, (s) => s.gkb.state === 'queued');
    // Statuses and identical re-sends grow the history while the record waits at GKB.
    for (let i = 0; i < 16; i++) await latest.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC1' });
    await latest.signal(loanUpdatedSignal, { ...loan, contract_number: id, overdue_days: 95 });
    // The run that sees the update may answer before it continues as new: wait for the continued run.
    let runs = await runsOf(caseWorkflowId(id), handle.firstExecutionRunId);
    for (let i = 0; i < 200 && runs.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await runsOf(caseWorkflowId(id), handle.firstExecutionRunId);
    }
    expect(runs.length).toBeGreaterThan(1);
    const carried = await waitFor(latest, (s) => s.overdueDays === 95);
    expect(carried).toMatchObject({ stage: 'demand-issued', gkb: { state: 'queued', recordId: '1' }, demand: { status: 'PC1' }, updates: 1 });

    await latest.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
    // Accepted, then the update (95 days) is reported as the next record.
    await waitFor(latest, (s) => s.stage === 'reported-to-gkb' && recordOf(s) === '2');
    expect(calls.filter((c) => c.startsWith('enqueueGkbReport'))).toEqual(['enqueueGkbReport:90', 'enqueueGkbReport:95']);
    await latest.terminate('test done');
    // The second run: it starts waiting for a record the first one queued.
    await recordHistory(env.client.workflow.getHandle(caseWorkflowId(id), runs[1].runId), 'case-continued-run-pending-gkb');
  });
}, 300_000);

test('a scan missing for months keeps the moment it first went missing, across continue-as-new; the details keep the summary', async () => {
  const { acts } = fakeCaseActivities({ scanAvailableAfter: () => false });
  await withWorker(acts, async () => {
    const id = 'KD-SINCE';
    const handle = await start(id, { settings: { ...settings, maxHistoryEvents: 40 } });
    const latest = env.client.workflow.getHandle(caseWorkflowId(id));
    const parked = await waitFor(latest, (s) => s.attention?.code === 'scan-missing');
    for (let i = 0; i < 20; i++) await env.sleep(DAY);
    const runs = await runsOf(caseWorkflowId(id), handle.firstExecutionRunId);
    expect(runs.length).toBeGreaterThan(1);
    const later = await waitFor(latest, (s) => s.attention?.code === 'scan-missing');
    expect(later.attention!.since).toBe(parked.attention!.since);

    // The start's static summary is not carried by continue-as-new (SDK option missing): the current details repeat it.
    const metadata = (await latest.query<{ currentDetails?: string }>('__temporal_workflow_metadata')) ?? {};
    expect(metadata.currentDetails).toMatch(/^\*\*Overdue loan\*\* KD-SINCE \(way4\)/);
    expect(metadata.currentDetails).toContain(`since ${parked.attention!.since}`);
    await latest.terminate('test done');
    await recordHistory(env.client.workflow.getHandle(caseWorkflowId(id), runs[0].runId), 'case-scan-missing-since');
  });
}, 300_000);

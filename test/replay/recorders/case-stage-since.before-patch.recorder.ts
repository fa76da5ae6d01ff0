// Compiled against the tree of the commit it is recorded at, not the current one (tsconfig.json excludes recorders).
/**
 * Histories of the case code before the patch 'case-stage-since' (issue 16: K2StageSince and
 * K2AbsSystem published with the stage), so the patched code is proven to keep such running cases
 * replaying. Recorded with
 * `bash scripts/record-history-at.sh 30cb08b test/replay/recorders/case-stage-since.before-patch.recorder.ts`
 * (time-skipping server, the in-test fakes of that tree). Both start as the dispatcher starts a case
 * (K2Stage 'received' among the start's search attributes), and both pass every place the patch
 * touches: the first publication, stage moves, parking and its release, the closing stage; the
 * second is the run after a continue-as-new (it starts with the attributes its predecessor had).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseInput, CaseStatus } from '../../../domain/case';
import { caseStatusQuery, caseWorkflow, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorUpdate, SEARCH_ATTRIBUTES } from '../../../workflows';
import { workflowsPath } from '../../../worker';
import { timeSkippingEnv } from '../../helpers/temporal';
import { DAY, fakeCaseActivities, loan, settings } from '../../helpers/case-fakes';
import { writeHistory } from './write-history';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(acts: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `record-stage-since-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  return worker.runUntil(fn(taskQueue));
}

/** As api/dispatcher.ts starts a case at that commit. */
function start(taskQueue: string, contract: string, input: Partial<CaseInput> = {}) {
  return env.client.workflow.start(caseWorkflow, {
    workflowId: caseWorkflowId(contract),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: contract }, settings, meta: { acceptedSeq: 1 }, ...input }],
    staticSummary: `Overdue loan ${contract} (way4)`,
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    ],
  });
}

async function waitForStatus(handle: { query: (q: typeof caseStatusQuery) => Promise<CaseStatus> }, pred: (s: CaseStatus) => boolean): Promise<CaseStatus> {
  let last: CaseStatus | undefined;
  for (let i = 0; i < 600; i++) {
    try {
      last = await handle.query(caseStatusQuery);
      if (pred(last)) return last;
    } catch {
      // between two runs of a continue-as-new
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(last));
}

test('case-stage-since.before-patch: parked (scan missing), retried, demand, GKB accepted, statuses, repaid, closure accepted', async () => {
  let scanThere = false;
  const { acts } = fakeCaseActivities({ gkb: 'queue', scanAvailableAfter: () => scanThere });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-STAGE-SINCE';
    const handle = await start(taskQueue, contract);
    await waitForStatus(handle, (s) => s.attention?.code === 'scan-missing');
    await env.sleep(3600_000);
    scanThere = true;
    await handle.executeUpdate(operatorUpdate, { args: [{ action: 'retry', note: 'scan uploaded' }] });
    const queued = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    await handle.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC1' });
    await env.sleep(3600_000);
    await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
    await waitForStatus(handle, (s) => s.stage === 'reported-to-gkb');
    await handle.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC3' });
    await env.sleep(DAY);
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, debt: '0.00' }, { acceptedSeq: 2 });
    await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued');
    await handle.signal(gkbResultSignal, { recordId: '2', outcome: 'accepted', text: 'Контракт обновлен.' });
    expect(await handle.result()).toMatchObject({ stage: 'closed', closedReason: 'repaid', gkb: { state: 'accepted', recordId: '2' } });
    await writeHistory(handle, 'case-stage-since.before-patch', workflowsPath());
  });
});

test('case-stage-since.continued.before-patch: the run after a continue-as-new while parked, then the scan appears and the case goes on to GKB', async () => {
  let scanThere = false;
  const { acts } = fakeCaseActivities({ gkb: 'queue', scanAvailableAfter: () => scanThere });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-STAGE-SINCE-CAN';
    const first = await start(taskQueue, contract, { settings: { ...settings, maxHistoryEvents: 40 } });
    await waitForStatus(first, (s) => s.attention?.code === 'scan-missing');
    let secondRunId: string | undefined;
    for (let day = 0; day < 30 && !secondRunId; day++) {
      await env.sleep(DAY);
      const { events } = await env.client.workflow.getHandle(caseWorkflowId(contract), first.firstExecutionRunId).fetchHistory();
      secondRunId = events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    if (!secondRunId) throw new Error('the case did not continue as new');
    const second = env.client.workflow.getHandle(caseWorkflowId(contract), secondRunId);
    await waitForStatus(second, (s) => s.attention?.code === 'scan-missing');
    scanThere = true;
    await second.executeUpdate(operatorUpdate, { args: [{ action: 'retry' }] });
    await waitForStatus(second, (s) => s.gkb.state === 'queued');
    await second.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
    await waitForStatus(second, (s) => s.stage === 'reported-to-gkb');
    // The latest run (the second, or a later one if the second continued as new again while waiting for GKB).
    await env.client.workflow.getHandle(caseWorkflowId(contract)).terminate('recorded');
    await writeHistory(second, 'case-stage-since.continued.before-patch', workflowsPath());
  });
});

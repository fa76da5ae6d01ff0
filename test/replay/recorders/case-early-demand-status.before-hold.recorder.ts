// Compiled against the tree of the commit it is recorded at, not the current one (tsconfig.json excludes recorders).
/**
 * A history of the case code before the patch 'case-early-demand-status': EKO's statuses reach the
 * case before it knows its demand (as when a worker dies after sending the demand and the next
 * worker's first activation delivers the statuses ahead of the repeated issueDemand). The old code
 * drops them and waits at 'sent'. Recorded with
 * `bash scripts/record-history-at.sh 5bad34e test/replay/recorders/case-early-demand-status.before-hold.recorder.ts`
 * (time-skipping server, the in-test fakes of that tree: the first demand reference is PTP00000000001).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseStatus } from '../../../domain/case';
import { caseStatusQuery, caseWorkflow, demandStatusSignal, SEARCH_ATTRIBUTES } from '../../../workflows';
import { workflowsPath } from '../../../worker';
import { timeSkippingEnv } from '../../helpers/temporal';
import { fakeCaseActivities, loan, settings } from '../../helpers/case-fakes';
import { writeHistory } from './write-history';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function waitForStatus(handle: { query: (q: typeof caseStatusQuery) => Promise<CaseStatus> }, pred: (s: CaseStatus) => boolean): Promise<CaseStatus> {
  let last: CaseStatus | undefined;
  for (let i = 0; i < 600; i++) {
    last = await handle.query(caseStatusQuery).catch(() => undefined);
    if (last && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(last));
}

test('case-early-demand-status.before-hold: PC1 and PC3 before the demand is known are dropped; the case waits at sent', async () => {
  const taskQueue = 'record-early-demand-status';
  const contract = 'KD-EARLY-STATUS';
  const reference = 'PTP00000000001';
  // Both statuses are in history before the case's first workflow task.
  const handle = await env.client.workflow.signalWithStart(caseWorkflow, {
    workflowId: caseWorkflowId(contract),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: contract }, settings, meta: { acceptedSeq: 1 } }],
    signal: demandStatusSignal,
    signalArgs: [{ reference, status: 'PC1' }],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    ],
  });
  await handle.signal(demandStatusSignal, { reference, status: 'PC3' });
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  await worker.runUntil(async () => {
    const status = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    expect(status.demand).toMatchObject({ reference, status: 'sent', inCardIndex: false });
    await writeHistory(handle, 'case-early-demand-status.before-hold', workflowsPath());
    await handle.terminate('recorded');
  });
});

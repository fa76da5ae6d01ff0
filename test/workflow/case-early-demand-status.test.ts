/**
 * Patch 'case-early-demand-status': EKO's statuses that reach the case before it knows its demand are
 * kept and applied once issueDemand names that reference. In production this follows a worker that
 * died after EKO accepted the demand: the statuses are in history before the next worker repeats
 * issueDemand (same reference) and sendDemand (a repeat at EKO, which sends no statuses again).
 * Here the statuses come with the start, before the case's first workflow task, which gives the case
 * the same order of events. Time-skipping server, fakes (the first demand reference is
 * PTP00000000001). The code before the patch replays in test/replay
 * (case-early-demand-status.before-hold.json: it dropped them and waited at 'sent').
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId } from '../../domain/case';
import { caseWorkflow, demandStatusSignal, SEARCH_ATTRIBUTES } from '../../workflows';
import { workflowsPath } from '../../worker';
import { timeSkippingEnv } from '../helpers/temporal';
import { recordHistory } from '../helpers/histories';
import { fakeCaseActivities, loan, settings, waitForCaseStatus } from '../helpers/case-fakes';

let env: TestWorkflowEnvironment;
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

/** A case started with `statuses` already in its history, then executed by a worker until its GKB record is queued. */
async function caseWithEarlyStatuses(contract: string, statuses: Array<{ reference: string; status: 'PC1' | 'PC3' }>) {
  const taskQueue = `test-early-status-${++queues}`;
  const [first, ...rest] = statuses;
  const handle = await env.client.workflow.signalWithStart(caseWorkflow, {
    workflowId: caseWorkflowId(contract),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: contract }, settings, meta: { acceptedSeq: 1 } }],
    signal: demandStatusSignal,
    signalArgs: [first],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    ],
  });
  for (const s of rest) await handle.signal(demandStatusSignal, s);
  const { acts, calls } = fakeCaseActivities({ gkb: 'queue' });
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  const status = await worker.runUntil(async () => {
    const s = await waitForCaseStatus(handle, (c) => c.gkb.state === 'queued');
    await recordHistory(handle, contract === 'KD-EARLY-STATUS' ? 'case-early-demand-status' : `case-early-demand-status-${contract.toLowerCase()}`);
    await handle.terminate('test done');
    return s;
  });
  return { status, calls };
}

test('PC1 and PC3 that came before the demand was known are applied once issueDemand names their reference; the demand is not sent again', async () => {
  const reference = 'PTP00000000001';
  const { status, calls } = await caseWithEarlyStatuses('KD-EARLY-STATUS', [
    { reference, status: 'PC1' },
    { reference, status: 'PC3' },
  ]);
  expect(status.demand).toEqual({ reference, status: 'PC3', acceptedByBank: true, inCardIndex: true });
  // EKO evidently has the demand: its statuses came.
  expect(calls).not.toContain('sendDemand');
});

test('an early status of another reference is still ignored: the case sends its own demand and waits for its statuses', async () => {
  const { status, calls } = await caseWithEarlyStatuses('KD-EARLY-OTHER', [{ reference: 'PTP99999999999', status: 'PC3' }]);
  expect(status.demand).toMatchObject({ reference: 'PTP00000000001', status: 'sent', inCardIndex: false });
  expect(calls).toContain('sendDemand');
});

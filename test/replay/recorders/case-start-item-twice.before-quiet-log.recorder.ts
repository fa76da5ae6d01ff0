// Compiled against the tree of the commit it is recorded at, not the current one (tsconfig.json excludes recorders).
/**
 * A history of the case code before the start's own outbox item stopped being logged as ignored:
 * the case is started as the dispatcher starts it (api/dispatcher.ts), by signalWithStart carrying
 * the same item, with the same acceptedSeq, as start input and as loanUpdated signal, so the signal
 * takes the "not newer than the applied one" branch of applyItem; then an item older than the
 * applied one arrives. Recorded with
 * `bash scripts/record-history-at.sh d7009e9 test/replay/recorders/case-start-item-twice.before-quiet-log.recorder.ts`
 * (time-skipping server, the in-test fakes of that tree).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseStatus } from '../../../domain/case';
import { caseStatusQuery, caseWorkflow, loanUpdatedSignal, SEARCH_ATTRIBUTES } from '../../../workflows';
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

test('case-start-item-twice.before-quiet-log: the start item again as signal, then an older item, both ignored', async () => {
  const taskQueue = 'record-start-item-twice';
  const item = { ...loan, contract_number: 'KD-START-TWICE' };
  const handle = await env.client.workflow.signalWithStart(caseWorkflow, {
    workflowId: caseWorkflowId(item.contract_number),
    taskQueue,
    args: [{ loan: item, settings, meta: { acceptedSeq: 7 } }],
    signal: loanUpdatedSignal,
    signalArgs: [item, { acceptedSeq: 7 }],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    ],
  });
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  await worker.runUntil(async () => {
    await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    await handle.signal(loanUpdatedSignal, { ...item, debt: '1.00' }, { acceptedSeq: 6 });
    const status = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    expect(status.updates).toBe(0);
    await writeHistory(handle, 'case-start-item-twice.before-quiet-log', workflowsPath());
    await handle.terminate('recorded');
  });
});

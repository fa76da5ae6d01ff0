/**
 * Recorded at fbb1df2 (the code after patch gkb-report-on-update, before its wait was gated) 'gkb-report-on-update' (scripts/record-history-at.sh):
 * a case reaches GKB and its report is accepted, THEN a changed loan arrives (new overdue_days),
 * later the loan is repaid (debt 0) and the closure report is accepted. The case code of today must
 * replay it: a running case of that time that gets a changed loan must not loop in its wait.
 * Written against that commit's API (its own modules, helpers and fakes).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseStatus } from '../../../domain/case';
import { caseStatusQuery, caseWorkflow, gkbResultSignal, loanUpdatedSignal } from '../../../workflows';
import { workflowsPath } from '../../../worker';
import { timeSkippingEnv } from '../../helpers/temporal';
import { fakeCaseActivities, loan, settings } from '../../helpers/case-fakes';
import { writeHistory } from './write-history';

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function waitForStatus(handle: { query: (q: typeof caseStatusQuery) => Promise<CaseStatus> }, pred: (s: CaseStatus) => boolean): Promise<CaseStatus> {
  for (let i = 0; i < 400; i++) {
    const s = await handle.query(caseStatusQuery);
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(await handle.query(caseStatusQuery)));
}

test('case-gkb-report-on-update.signal-in-wait.before-gate: report accepted, then a changed loan, then repaid and closed', async () => {
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  const taskQueue = 'record-in-wait';
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  await worker.runUntil(async () => {
    const contract = 'KD-IN-WAIT';
    const handle = await env.client.workflow.start(caseWorkflow, {
      workflowId: caseWorkflowId(contract),
      taskQueue,
      args: [{ loan: { ...loan, contract_number: contract }, settings }],
    });
    await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
    await waitForStatus(handle, (s) => s.stage === 'reported-to-gkb' && s.gkb.state === 'accepted');

    // The changed loan arrives while the case waits after the accepted report: today's code reports it again.
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, overdue_days: 95 });
    await waitForStatus(handle, (s) => s.gkb.state === 'queued' && (s.gkb as { recordId: string }).recordId === '2');
    await handle.signal(gkbResultSignal, { recordId: '2', outcome: 'accepted', text: 'Контракт обновлен.' });
    await waitForStatus(handle, (s) => s.gkb.state === 'accepted' && (s.gkb as { recordId: string }).recordId === '2');
    await env.sleep(3600_000);
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, overdue_days: 96, debt: '0.00' });
    await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued' && (s.gkb as { recordId: string }).recordId === '3');
    await handle.signal(gkbResultSignal, { recordId: '3', outcome: 'accepted', text: 'Контракт обновлен.' });
    expect(await handle.result()).toMatchObject({ stage: 'closed', closedReason: 'repaid', overdueDays: 96, gkb: { state: 'accepted', recordId: '3' } });
    await writeHistory(handle, 'case-gkb-report-on-update.signal-in-wait.before-gate', workflowsPath());
  });
});

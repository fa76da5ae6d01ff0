// Compiled against the tree of the commit it is recorded at, not the current one (tsconfig.json excludes recorders).
/**
 * Histories of the case code as it was when issue 12 began, one per path that issue changes, so the
 * changed code is proven to keep such running cases replaying. Recorded with
 * `bash scripts/record-history-at.sh fbb1df2 test/replay/recorders/case-before-issue-12.recorder.ts`
 * (time-skipping server, the in-test fakes of that tree); each test writes `case-<path>.before-<change>.json`.
 */
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { caseWorkflowId, CaseInput, CaseStatus } from '../../../domain/case';
import { caseStatusQuery, caseWorkflow, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal } from '../../../workflows';
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

type Handle = Awaited<ReturnType<typeof start>>;

async function withWorker<T>(acts: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `record-cases-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  return worker.runUntil(fn(taskQueue));
}

function start(taskQueue: string, contract: string, input: Partial<CaseInput> = {}) {
  return env.client.workflow.start(caseWorkflow, {
    workflowId: caseWorkflowId(contract),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: contract }, settings, ...input }],
  });
}

async function waitForStatus(handle: Handle, pred: (s: CaseStatus) => boolean): Promise<CaseStatus> {
  for (let i = 0; i < 600; i++) {
    const s = await handle.query(caseStatusQuery);
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('status never reached: ' + JSON.stringify(await handle.query(caseStatusQuery)));
}

const recordOf = (s: CaseStatus) => (s.gkb as { recordId?: string }).recordId;

/** GKB accepts the record the case waits for; returns the status after. */
async function acceptQueued(handle: Handle, text = 'Контракт обновлен.'): Promise<CaseStatus> {
  const queued = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
  await handle.signal(gkbResultSignal, { recordId: recordOf(queued)!, outcome: 'accepted', text });
  return waitForStatus(handle, (s) => s.gkb.state === 'accepted' && recordOf(s) === recordOf(queued));
}

/** EKO re-sends the loan repaid; GKB accepts the closure report; the case completes. */
async function repayAndClose(handle: Handle, contract: string): Promise<CaseStatus> {
  await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, debt: '0.00' });
  await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued');
  await acceptQueued(handle);
  return handle.result();
}

test('case-continue-as-new.before-bounded: daily re-sends with new overdue_days re-report to GKB for two weeks, then the case continues as new', async () => {
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-CAN';
    const handle = await start(taskQueue, contract, { settings: { ...settings, maxHistoryEvents: 100 } });
    await acceptQueued(handle);
    for (let day = 1; day <= 14; day++) {
      await env.sleep(DAY);
      await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, overdue_days: 90 + day });
      await waitForStatus(handle, (s) => s.gkb.state === 'queued' && recordOf(s) === String(day + 1));
      await acceptQueued(handle);
    }
    // Re-reports never check the bound in this code; the idle wait's 30-day timer does.
    await env.sleep(31 * DAY);
    const chain = env.client.workflow.getHandle(caseWorkflowId(contract));
    for (let i = 0; i < 600 && (await chain.describe()).runId === handle.firstExecutionRunId; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await chain.describe()).runId).not.toBe(handle.firstExecutionRunId);
    const firstRun = env.client.workflow.getHandle(caseWorkflowId(contract), handle.firstExecutionRunId);
    expect((await firstRun.describe()).status.name).toBe('CONTINUED_AS_NEW');
    await writeHistory(firstRun, 'case-continue-as-new.before-bounded', workflowsPath());
    await chain.terminate('recorded');
  });
});

test('case-abs-protocol.before-failure-types: a non-retryable ABS failure parks the case, an operator retry resumes it, it completes', async () => {
  const abs = { broken: true };
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  const checkClient = acts.checkClient;
  const wrapped = {
    ...acts,
    checkClient: async (iinbin: string) => {
      if (abs.broken) throw ApplicationFailure.nonRetryable('ABS client info: fullname missing', 'AbsProtocolError');
      return checkClient(iinbin);
    },
  };
  await withWorker(wrapped, async (taskQueue) => {
    const contract = 'KD-ABS-PROTO';
    const handle = await start(taskQueue, contract);
    await waitForStatus(handle, (s) => s.attention?.code === 'abs-protocol');
    abs.broken = false;
    await handle.signal(operatorActionSignal, { action: 'retry', note: 'ABS fixed the client record' });
    await acceptQueued(handle);
    expect(await repayAndClose(handle, contract)).toMatchObject({ stage: 'closed', closedReason: 'repaid' });
    await writeHistory(handle, 'case-abs-protocol.before-failure-types', workflowsPath());
  });
});

test('case-issue-demand-failure.before-failure-types: issueDemand fails non-retryably with an untyped error (this code fails the case)', async () => {
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  const wrapped = {
    ...acts,
    issueDemand: async () => {
      throw ApplicationFailure.nonRetryable('database is locked', 'Error');
    },
  };
  await withWorker(wrapped, async (taskQueue) => {
    const handle = await start(taskQueue, 'KD-DEMAND-FAIL');
    // Not inside a parking stage: the failure leaves the workflow, which fails; an operator retry has nothing to resume.
    await expect(handle.result()).rejects.toThrow();
    expect((await handle.describe()).status.name).toBe('FAILED');
    await writeHistory(handle, 'case-issue-demand-failure.before-failure-types', workflowsPath());
  });
});

test('case-scan-missing-long.before-since: the scan is missing, re-checked daily for four days, then found; the case completes', async () => {
  let scanRequests = 0;
  const { acts } = fakeCaseActivities({ gkb: 'queue', scanAvailableAfter: () => ++scanRequests >= 5 });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-SCAN-LONG';
    const handle = await start(taskQueue, contract);
    await waitForStatus(handle, (s) => s.attention?.code === 'scan-missing');
    for (let day = 1; day <= 3; day++) {
      await env.sleep(DAY + 60_000);
      await waitForStatus(handle, () => scanRequests >= day + 1);
      expect((await handle.query(caseStatusQuery)).attention?.code).toBe('scan-missing');
    }
    await env.sleep(DAY + 60_000);
    await waitForStatus(handle, (s) => s.demand?.status === 'sent' && s.attention === undefined);
    expect(scanRequests).toBe(5);
    await acceptQueued(handle);
    expect(await repayAndClose(handle, contract)).toMatchObject({ stage: 'closed', closedReason: 'repaid' });
    await writeHistory(handle, 'case-scan-missing-long.before-since', workflowsPath());
  });
});

test('case-gkb-slow-result.before-notices: GKB answers after five days «Создан новый контракт.», then PC1, PC3, then debt 0 closes it', async () => {
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-GKB-SLOW';
    const handle = await start(taskQueue, contract);
    const queued = await waitForStatus(handle, (s) => s.gkb.state === 'queued');
    await env.sleep(5 * DAY);
    await handle.signal(gkbResultSignal, { recordId: recordOf(queued)!, outcome: 'accepted', text: 'Создан новый контракт.' });
    await waitForStatus(handle, (s) => s.stage === 'reported-to-gkb');
    await handle.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC1' });
    await waitForStatus(handle, (s) => s.demand?.status === 'PC1');
    await handle.signal(demandStatusSignal, { reference: queued.demand!.reference, status: 'PC3' });
    await waitForStatus(handle, (s) => s.demand?.status === 'PC3');
    expect(await repayAndClose(handle, contract)).toMatchObject({ stage: 'closed', closedReason: 'repaid', demand: { status: 'PC3' } });
    await writeHistory(handle, 'case-gkb-slow-result.before-notices', workflowsPath());
  });
});

test('case-update-while-closing.before-episodes: while the closure report waits, EKO sends the contract overdue again with a positive debt', async () => {
  const { acts } = fakeCaseActivities({ gkb: 'queue' });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-CLOSING';
    const handle = await start(taskQueue, contract);
    await acceptQueued(handle);
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, debt: '0.00' });
    const closing = await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued');
    await handle.signal(loanUpdatedSignal, { ...loan, contract_number: contract, debt: '150000.00', overdue_days: 5 });
    await env.sleep(3600_000);
    await handle.signal(gkbResultSignal, { recordId: recordOf(closing)!, outcome: 'accepted', text: 'Контракт обновлен.' });
    expect(await handle.result()).toMatchObject({ stage: 'closed', closedReason: 'repaid' });
    await writeHistory(handle, 'case-update-while-closing.before-episodes', workflowsPath());
  });
});

test('case-operator-actions.before-updates: operator supplies the agreement date, retries the scan, closes the case, each with a note', async () => {
  let scanThere = false;
  const { acts } = fakeCaseActivities({ gkb: 'queue', scanAvailableAfter: () => scanThere });
  await withWorker(acts, async (taskQueue) => {
    const contract = 'KD-OPERATOR';
    const { dbz_date: _omit, ...undated } = loan;
    const handle = await start(taskQueue, contract, { loan: { ...undated, contract_number: contract } });
    await waitForStatus(handle, (s) => s.attention?.code === 'agreement-date-missing');
    await handle.signal(operatorActionSignal, { action: 'supply-agreement-date', dbzDate: '2020-01-01', note: 'date from the paper file' });
    await waitForStatus(handle, (s) => s.attention?.code === 'scan-missing');
    scanThere = true;
    await handle.signal(operatorActionSignal, { action: 'retry', note: 'scan uploaded to ABS' });
    await acceptQueued(handle);
    await handle.signal(operatorActionSignal, { action: 'close', note: 'settled with the client' });
    await waitForStatus(handle, (s) => s.stage === 'closed' && s.gkb.state === 'queued');
    await acceptQueued(handle);
    expect(await handle.result()).toMatchObject({ stage: 'closed', closedReason: 'operator', dbzDate: '2020-01-01' });
    await writeHistory(handle, 'case-operator-actions.before-updates', workflowsPath());
  });
});

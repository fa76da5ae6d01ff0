/**
 * An outbox row handed over twice reaches its case once (api/dispatch-request-ids.ts): the real
 * OutboxDispatcher's hand-over on a real Temporal dev server (localEnv), no worker (what Temporal
 * recorded in the case's history is the observable). This is what happens when an API replica is
 * killed between Temporal's answer and marking the row, and another replica sends the row again
 * after the lease (test/e2e/system.test.ts kills one for real).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { OutboxDispatcher } from '../../api/dispatcher';
import { DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { caseWorkflowId } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { loanUpdatedSignal } from '../../workflows/definitions';
import { caseItems } from '../helpers/case-histories';
import { localEnv } from '../helpers/temporal';

jest.setTimeout(120_000);

const quiet = createLogger('request-id-test', 'error', {}, () => undefined);
const rand = mulberry32(20_261_214);
let serial = 7_600_000_000;

function newLoan(overrides: Partial<Loan> = {}): Loan {
  const l = generateLoan(rand, {}, { contractSerial: serial++ });
  return { ...l, debt: Number(l.debt).toFixed(2), ...overrides } as Loan;
}

let env: TestWorkflowEnvironment;
let tmp: string;
let db: Db;
let dispatcher: OutboxDispatcher;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-request-id-'));
  env = await localEnv();
  const config = loadConfig({ ...DEMO_ENV, K2_DATA_DIR: tmp, TEMPORAL_TASK_QUEUE: 'k2-request-id-test' });
  db = await openDb(config.db);
  // Never started: only its hand-over (dispatchLoan) is used, as the loop calls it for a row.
  dispatcher = new OutboxDispatcher(db, env.client, config, quiet, new Metrics());
});

afterAll(async () => {
  await db?.destroy();
  await env?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the same row handed over twice (signal-with-start) is one signal; the next row of the contract is another', async () => {
  const loan = newLoan();
  await dispatcher.dispatchLoan(loan, { acceptedSeq: 41 });
  await dispatcher.dispatchLoan(loan, { acceptedSeq: 41 }); // another replica, after the lease of the first one's claim
  await dispatcher.dispatchLoan({ ...loan, overdue_days: loan.overdue_days + 1 }, { acceptedSeq: 42 });

  expect(await caseItems(env.client, caseWorkflowId(loan.contract_number))).toEqual({ startedWith: 41, signalled: [41, 42] });
});

test('the same repaid row handed over twice (a signal) is one signal', async () => {
  const loan = newLoan();
  await dispatcher.dispatchLoan(loan, { acceptedSeq: 51 });
  const repaid = { ...loan, debt: '0.00' };
  await dispatcher.dispatchLoan(repaid, { acceptedSeq: 52 });
  await dispatcher.dispatchLoan(repaid, { acceptedSeq: 52 });

  expect(await caseItems(env.client, caseWorkflowId(loan.contract_number))).toEqual({ startedWith: 51, signalled: [51, 52] });
});

test('outside the dispatcher the client keeps its own request ids: Temporal takes a repeated signal again', async () => {
  // Also what the hand-over did before its request ids: the server has nothing to tell the repeat by.
  const loan = newLoan();
  await dispatcher.dispatchLoan(loan, { acceptedSeq: 61 });
  const handle = env.client.workflow.getHandle(caseWorkflowId(loan.contract_number));
  await handle.signal(loanUpdatedSignal, loan, { acceptedSeq: 61 });
  await handle.signal(loanUpdatedSignal, loan, { acceptedSeq: 61 });

  expect(await caseItems(env.client, caseWorkflowId(loan.contract_number))).toEqual({ startedWith: 61, signalled: [61, 61, 61] });
});

/**
 * One demand per overdue episode, on a real Temporal dev server (localEnv) with a worker running
 * the real caseWorkflow, the real OutboxDispatcher and a real SQLite database; ABS and EKO are
 * faked as in api.test.ts (the demand references are the real db/demands ones).
 *
 * The rule (README "The outbox"): a new case run, with a new demand, only when EKO re-sends a
 * contract overdue with new data after its case closed; an item the closed case already applied
 * (a re-dispatch after a crash) or a late re-send of the last overdue item it applied starts nothing.
 *
 * The closed episode is recorded by closeEpisode (activities/episodes.ts), which a case calls as it
 * closes; these tests call it themselves after the case completed, with what the case applied, so
 * that they test the dispatcher's side whatever the case does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { closeEpisode } from '../../activities/episodes';
import { OutboxDispatcher } from '../../api/dispatcher';
import { DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { enqueueLoans } from '../../db/outbox';
import { caseWorkflowId, CaseStatus } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { workflowsPath } from '../../worker';
import { caseStatusQuery } from '../../workflows/definitions';
import { localEnv } from '../helpers/temporal';
import { eventually } from '../helpers/eventually';
import { dbBackedCaseActivities } from '../helpers/db-case-fakes';

jest.setTimeout(180_000);

const TASK_QUEUE = 'k2-episodes-test';
const quiet = createLogger('episodes-test', 'error', {}, () => undefined);
const rand = mulberry32(20_261_202);
let serial = 7_400_000_000;
const accountsByIin = new Map<string, Array<{ iban: string; cur: string }>>();

/** A valid, normalized overdue loan with a fresh contract number; its account is known to the fake ABS. */
function newLoan(): Loan {
  const l = generateLoan(rand, {}, { contractSerial: serial++ });
  const loan = { ...l, debt: Number(l.debt).toFixed(2) } as Loan;
  accountsByIin.set(loan.iinbin, [...(accountsByIin.get(loan.iinbin) ?? []), { iban: loan.iban, cur: loan.cur }]);
  return loan;
}

let env: TestWorkflowEnvironment;
let tmp: string;
let db: Db;
let worker: Worker;
let workerRun: Promise<void>;
let dispatcher: OutboxDispatcher;
let metrics: Metrics;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-episodes-'));
  env = await localEnv();
  const config = loadConfig({ ...DEMO_ENV, K2_DATA_DIR: tmp, TEMPORAL_TASK_QUEUE: TASK_QUEUE, K2_DISPATCH_CONCURRENCY: '8' });
  db = await openDb(config.db);
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: workflowsPath(),
    activities: dbBackedCaseActivities(db, (iin) => accountsByIin.get(iin) ?? [], 'GKB is faked away in the episode tests'),
  });
  workerRun = worker.run();
  metrics = new Metrics();
  dispatcher = new OutboxDispatcher(db, env.client, config, quiet, metrics);
  dispatcher.start();
});

afterAll(async () => {
  await dispatcher?.stop();
  if (worker) {
    worker.shutdown();
    await workerRun;
  }
  await db?.destroy();
  await env?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Enqueues one request (as the API does) and returns the new outbox id. */
async function send(loan: Loan): Promise<number> {
  const before = Number((await db('loan_outbox').max({ m: 'id' }))[0].m ?? 0);
  await enqueueLoans(db, [loan], crypto.randomUUID());
  dispatcher.nudge();
  const [row] = await db('loan_outbox').where('id', '>', before).where({ contract_number: loan.contract_number }).select('id');
  return Number(row.id);
}

const outboxRow = (id: number) => db('loan_outbox').where({ id }).first('dispatched_at', 'stale_reason');
const done = (id: number) => eventually(`outbox item ${id} done`, async () => (await outboxRow(id)).dispatched_at !== null);
const handleOf = (loan: Loan) => env.client.workflow.getHandle(caseWorkflowId(loan.contract_number));
const demandsOf = async (loan: Loan) =>
  (await db('payment_demands').where({ contract_number: loan.contract_number }).select('reference')).map((r) => r.reference);
const staleCount = (reason: string) => {
  const series = `k2_outbox_stale_total{reason="${reason}"}`;
  const line = metrics
    .render()
    .split('\n')
    .find((l) => l.startsWith(series + ' '));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

async function settled(loan: Loan): Promise<CaseStatus> {
  return eventually(`${caseWorkflowId(loan.contract_number)} settled`, async () => {
    const s = await handleOf(loan).query(caseStatusQuery);
    return s.demand?.status === 'sent' && s.stage === 'reported-to-gkb' ? s : undefined;
  });
}

/** A case that issued its demand and was closed by EKO's repaid item; its episode recorded as the case records it. */
async function closedCase(loan: Loan): Promise<{ overdueSeq: number; repaidSeq: number; runId: string; reference: string }> {
  const overdueSeq = await send(loan);
  const s = await settled(loan);
  const { runId } = await handleOf(loan).describe();
  const repaidSeq = await send({ ...loan, debt: '0.00' });
  const result: CaseStatus = await handleOf(loan).result();
  expect(result).toMatchObject({ stage: 'closed', closedReason: 'repaid' });
  await done(repaidSeq);
  await closeEpisode(db, {
    contractNumber: loan.contract_number,
    workflowId: caseWorkflowId(loan.contract_number),
    appliedSeq: repaidSeq,
    lastOverdueSeq: overdueSeq,
  });
  return { overdueSeq, repaidSeq, runId, reference: s.demand!.reference };
}

/** The contract's latest run is still the closed first one, and it has its one demand. */
async function expectOnlyFirstEpisode(loan: Loan, first: { runId: string; reference: string }): Promise<void> {
  const d = await handleOf(loan).describe();
  expect({ runId: d.runId, status: d.status.name }).toEqual({ runId: first.runId, status: 'COMPLETED' });
  expect(await demandsOf(loan)).toEqual([first.reference]);
}

test('an item re-dispatched after its case closed (its mark lost in a crash) starts no new run and no second demand', async () => {
  const loan = newLoan();
  const first = await closedCase(loan);
  const staleBefore = staleCount('applied-before-close');

  // The crash: the overdue item's dispatched mark was never written, so a restarted dispatcher reads it again.
  await db('loan_outbox').where({ id: first.overdueSeq }).update({ dispatched_at: null });
  dispatcher.nudge();
  await done(first.overdueSeq);

  await expectOnlyFirstEpisode(loan, first);
  expect(await outboxRow(first.overdueSeq)).toMatchObject({ stale_reason: 'applied-before-close' });
  expect(staleCount('applied-before-close')).toBe(staleBefore + 1);
});

test('a late identical re-send of the last overdue item after closure starts nothing', async () => {
  const loan = newLoan();
  const first = await closedCase(loan);
  const staleBefore = staleCount('resent-after-close');

  const resent = await send({ ...loan });
  await done(resent);

  expect(resent).toBeGreaterThan(first.repaidSeq);
  await expectOnlyFirstEpisode(loan, first);
  expect(await outboxRow(resent)).toMatchObject({ stale_reason: 'resent-after-close' });
  expect(staleCount('resent-after-close')).toBe(staleBefore + 1);
});

test('a new overdue re-send after closure starts a new run with its own demand (a new episode)', async () => {
  const loan = newLoan();
  const first = await closedCase(loan);

  const again = { ...loan, debt: '310000.00', overdue_days: loan.overdue_days + 30 };
  const seq = await send(again);
  await done(seq);
  expect(await outboxRow(seq)).toMatchObject({ stale_reason: null });

  const s = await settled(again);
  const d = await handleOf(loan).describe();
  expect(d.runId).not.toBe(first.runId);
  expect(d.status.name).toBe('RUNNING');
  expect(s).toMatchObject({ debt: '310000.00', updates: 0 });
  expect(s.demand!.reference).not.toBe(first.reference);
  expect((await demandsOf(loan)).sort()).toEqual([first.reference, s.demand!.reference].sort());
});

/**
 * The outbox never stalls on one item: the real OutboxDispatcher on a real SQLite database and a
 * real Temporal dev server (localEnv). No worker runs: whether Temporal has a case (and with what
 * input) is the observable. An item Temporal refuses is either a real refusal (a workflow id longer
 * than Temporal allows, which only a row written past the API's validation can have) or, where the
 * test must heal it or count calls, a client that refuses one contract with the gRPC error shape
 * the Temporal client gives and passes everything else to the real server.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, ServiceError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { OutboxDispatcher } from '../../api/dispatcher';
import { Config, DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { countPending, enqueueLoans } from '../../db/outbox';
import { createColumnSealer } from '../../db/sealed';
import { caseWorkflowId } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { runOutboxCommand } from '../../scripts/outbox';
import { loanUpdatedSignal } from '../../workflows/definitions';
import { freePort } from '../../scripts/system';
import { localEnv } from '../helpers/temporal';
import { eventually } from '../helpers/eventually';

jest.setTimeout(180_000);

const quiet = createLogger('outbox-test', 'error', {}, () => undefined);
const rand = mulberry32(20_261_201);
let serial = 7_300_000_000;

/** A valid, normalized loan with a fresh contract number, as the API writes it to the outbox. */
function newLoan(overrides: Partial<Loan> = {}): Loan {
  const l = generateLoan(rand, {}, { contractSerial: serial++ });
  return { ...l, debt: Number(l.debt).toFixed(2), ...overrides } as Loan;
}

let env: TestWorkflowEnvironment;
let tmp: string;
let db: Db;
let running: OutboxDispatcher | undefined;

function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...DEMO_ENV, K2_DATA_DIR: tmp, TEMPORAL_TASK_QUEUE: 'k2-outbox-test', K2_DISPATCH_CONCURRENCY: '8', ...overrides });
}

/** Starts a dispatcher (the previous one stopped); its metrics are returned with it. */
function startDispatcher(client: Client, config: Config, retryBaseMs: number): { dispatcher: OutboxDispatcher; metrics: Metrics } {
  const metrics = new Metrics();
  const dispatcher = new OutboxDispatcher(db, client, config, quiet, metrics, undefined, { retryBaseMs });
  dispatcher.start();
  running = dispatcher;
  return { dispatcher, metrics };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-outbox-'));
  env = await localEnv();
  db = await openDb(testConfig().db);
});

afterEach(async () => {
  await running?.stop();
  running = undefined;
  // What a test leaves behind (a waiting or dead row) is taken out, so the next test counts only its own.
  await db('loan_outbox').whereNull('dispatched_at').update({ dispatched_at: new Date().toISOString() });
});

afterAll(async () => {
  await db?.destroy();
  await env?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Enqueues loans (one request each) and returns their outbox ids, in order. */
async function enqueue(items: Loan[]): Promise<number[]> {
  const before = Number((await db('loan_outbox').max({ m: 'id' }))[0].m ?? 0);
  await enqueueLoans(db, items, `req-${serial}`);
  return (await db('loan_outbox').where('id', '>', before).orderBy('id').select('id')).map((r) => Number(r.id));
}

const row = (id: number) => db('loan_outbox').where({ id }).first('attempts', 'dispatched_at', 'dead_at', 'next_attempt_at', 'last_error', 'stale_reason');
const allDispatched = async (ids: number[]) =>
  Number((await db('loan_outbox').whereIn('id', ids).whereNotNull('dispatched_at').count({ n: '*' }))[0].n) === ids.length;

function metric(metrics: Metrics, series: string): number | undefined {
  const line = metrics
    .render()
    .split('\n')
    .find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Temporal's refusal of one request as the client rethrows it: a ServiceError around the gRPC error. */
function refusal(): ServiceError {
  const grpc = Object.assign(new Error('9 FAILED_PRECONDITION: refused by the test'), { code: 9, details: 'refused by the test', metadata: { get: () => [] } });
  return new ServiceError('Failed to signalWithStart Workflow', { cause: grpc });
}

/** The real client, except that Temporal "refuses" the contracts `refuses` says; every signalWithStart is logged (workflow id, outbox id). */
function refusingClient(refuses: (workflowId: string) => boolean): { client: Client; calls: Array<{ workflowId: string; seq: number }> } {
  const calls: Array<{ workflowId: string; seq: number }> = [];
  const real = env.client;
  const workflow = {
    signalWithStart(wf: unknown, opts: { workflowId: string; signalArgs: [Loan, { acceptedSeq: number }] }) {
      calls.push({ workflowId: opts.workflowId, seq: opts.signalArgs[1].acceptedSeq });
      if (refuses(opts.workflowId)) return Promise.reject(refusal());
      return real.workflow.signalWithStart(wf as never, opts as never);
    },
    getHandle: (id: string) => real.workflow.getHandle(id),
  };
  return { client: { connection: real.connection, workflow } as unknown as Client, calls };
}

async function exists(contract: string): Promise<boolean> {
  return env.client.workflow
    .getHandle(caseWorkflowId(contract))
    .describe()
    .then(
      () => true,
      () => false,
    );
}

test("the dispatcher's start and signal carry the item's meta (its outbox id) to the case", async () => {
  startDispatcher(env.client, testConfig(), 50);
  const item = newLoan();
  const [first] = await enqueue([item]);
  running!.nudge();
  await eventually('first item dispatched', () => allDispatched([first]));
  const changed = { ...item, overdue_days: item.overdue_days + 1 };
  const [second] = await enqueue([changed]);
  running!.nudge();
  await eventually('second item dispatched', () => allDispatched([second]));

  const history = await env.client.workflow.getHandle(caseWorkflowId(item.contract_number)).fetchHistory();
  const decode = (payloads: unknown) => ((payloads as { payloads?: unknown[] })?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload(p as never));
  const started = history.events!.find((e) => e.workflowExecutionStartedEventAttributes)!.workflowExecutionStartedEventAttributes!;
  expect(decode(started.input)).toEqual([expect.objectContaining({ loan: item, meta: { acceptedSeq: first } })]);
  const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes).map((e) => e.workflowExecutionSignaledEventAttributes!);
  expect(signals.map((s) => s.signalName)).toEqual([loanUpdatedSignal.name, loanUpdatedSignal.name]);
  expect(signals.map((s) => decode(s.input))).toEqual([
    [item, { acceptedSeq: first }],
    [changed, { acceptedSeq: second }],
  ]);
});

test('an item Temporal refuses waits alone (with its contract behind it): the rest flows at once, without a global back-off', async () => {
  const poisoned = newLoan();
  const poisonedId = caseWorkflowId(poisoned.contract_number);
  const { client, calls } = refusingClient((id) => id === poisonedId);
  // A long wait before its second attempt: within this test the poisoned row is tried exactly once.
  startDispatcher(client, testConfig(), 60_000);
  const [x1] = await enqueue([poisoned]);
  const [x2] = await enqueue([{ ...poisoned, overdue_days: poisoned.overdue_days + 1 }]);
  running!.nudge();
  await eventually('the poisoned row refused once', async () => (await row(x1)).attempts === 1);

  // 100 other loans arrive after the refusal, in four requests.
  const others = Array.from({ length: 100 }, () => newLoan());
  const ids: number[] = [];
  for (let i = 0; i < 100; i += 25) {
    ids.push(...(await enqueue(others.slice(i, i + 25))));
    running!.nudge();
  }
  await eventually('the 100 others dispatched', () => allDispatched(ids));
  for (const o of others) expect(await exists(o.contract_number)).toBe(true);

  // The poisoned row was tried once and waits for its next attempt; its contract's later row waited behind it, untried.
  expect(calls.filter((c) => c.workflowId === poisonedId)).toEqual([{ workflowId: poisonedId, seq: x1 }]);
  const refused = await row(x1);
  expect(refused).toMatchObject({ attempts: 1, dispatched_at: null, dead_at: null, last_error: 'FAILED_PRECONDITION: refused by the test' });
  expect(new Date(refused.next_attempt_at).getTime()).toBeGreaterThan(Date.now());
  expect(await row(x2)).toMatchObject({ attempts: 0, dispatched_at: null, dead_at: null });
  expect(await exists(poisoned.contract_number)).toBe(false);
  expect(await countPending(db)).toBe(2);
});

test('a sealed loan this API cannot open (its key not configured) is a refused attempt, alone: the rest flows', async () => {
  const foreign = createColumnSealer([{ id: 'k-elsewhere', key: randomBytes(32) }]);
  const sealedLoan = newLoan();
  startDispatcher(env.client, testConfig(), 60_000);
  await enqueueLoans(db, [sealedLoan], `req-${serial}`, new Date(), foreign);
  const [sealedId] = (await db('loan_outbox').where({ contract_number: sealedLoan.contract_number }).select('id')).map((r) => Number(r.id));
  const others = await enqueue([newLoan(), newLoan()]);
  running!.nudge();
  await eventually('the others dispatched', () => allDispatched(others));
  await eventually('the sealed row counted as refused', async () => (await row(sealedId)).attempts === 1);
  expect(await row(sealedId)).toMatchObject({
    dispatched_at: null,
    dead_at: null,
    last_error: expect.stringMatching(
      /^SealedKeyUnknownError: loan_outbox.payload is sealed with key "k-elsewhere", which is not among the configured payload keys/,
    ),
  });
  expect(await exists(sealedLoan.contract_number)).toBe(false);
});

test('an item Temporal keeps refusing moves to the dead letters after K2_OUTBOX_MAX_ATTEMPTS while 100 others are dispatched; /metrics shows it; requeue puts it back', async () => {
  const { metrics } = startDispatcher(env.client, testConfig({ K2_OUTBOX_MAX_ATTEMPTS: '3' }), 50);
  // Longer than the 1000 characters Temporal allows in a workflow id: refused with INVALID_ARGUMENT every time.
  const poisoned = newLoan({ contract_number: `KD-POISON-${'X'.repeat(1100)}` });
  const [poisonedRow, ...ids] = await enqueue([poisoned, ...Array.from({ length: 100 }, () => newLoan())]);
  running!.nudge();

  await eventually('the 100 others dispatched', () => allDispatched(ids));
  const dead = await eventually('the poisoned row dead', async () => {
    const r = await row(poisonedRow);
    return r.dead_at ? r : undefined;
  });
  expect(dead).toMatchObject({ attempts: 3, dispatched_at: null });
  expect(dead.last_error).toMatch(/^INVALID_ARGUMENT: /);
  expect(await countPending(db)).toBe(0);
  await eventually('dead letters in /metrics', async () => metric(metrics, 'k2_outbox_dead_letters') === 1);
  expect(metric(metrics, 'k2_outbox_dead_letter_oldest_seconds')).toBeGreaterThanOrEqual(0);
  expect(metric(metrics, 'k2_outbox_pending')).toBe(0);

  // The operator lists it and puts it back: it flows again (and, still refused, dies again after 3 more attempts).
  const out: string[] = [];
  expect(
    await runOutboxCommand(
      ['dead-letters'],
      db,
      (l) => out.push(l),
      (l) => out.push(l),
    ),
  ).toBe(0);
  expect(out.join('\n')).toContain(`${poisonedRow}\tKD-POISON-`);
  expect(
    await runOutboxCommand(
      ['requeue', String(poisonedRow)],
      db,
      (l) => out.push(l),
      (l) => out.push(l),
    ),
  ).toBe(0);
  expect(await row(poisonedRow)).toMatchObject({ attempts: 0, dead_at: null });
  await eventually('the requeued row tried again and dead again', async () => {
    const r = await row(poisonedRow);
    return r.dead_at !== null && r.attempts === 3;
  });
});

test('a dead letter does not block its contract for ever: the later row is tried after it; once the cause is fixed, requeued items reach Temporal', async () => {
  let healed = false;
  const y = newLoan();
  const yId = caseWorkflowId(y.contract_number);
  const { client, calls } = refusingClient((id) => id === yId && !healed);
  const { metrics } = startDispatcher(client, testConfig({ K2_OUTBOX_MAX_ATTEMPTS: '2' }), 50);
  const [y1] = await enqueue([y]);
  const y2Loan = { ...y, overdue_days: y.overdue_days + 1 };
  const [y2] = await enqueue([y2Loan]);
  running!.nudge();

  await eventually('both rows of the contract dead', async () => (await row(y1)).dead_at !== null && (await row(y2)).dead_at !== null);
  // Strict id order within the contract: the later row was tried only once the first was out of the flow.
  expect(calls.filter((c) => c.workflowId === yId).map((c) => c.seq)).toEqual([y1, y1, y2, y2]);
  await eventually('two dead letters in /metrics', async () => metric(metrics, 'k2_outbox_dead_letters') === 2);

  healed = true;
  const out: string[] = [];
  expect(
    await runOutboxCommand(
      ['requeue', String(y1)],
      db,
      (l) => out.push(l),
      (l) => out.push(l),
    ),
  ).toBe(0);
  await eventually('the requeued row dispatched', () => allDispatched([y1]));
  expect(await exists(y.contract_number)).toBe(true);
  expect(
    await runOutboxCommand(
      ['requeue', String(y2)],
      db,
      (l) => out.push(l),
      (l) => out.push(l),
    ),
  ).toBe(0);
  await eventually('the second requeued row dispatched', () => allDispatched([y2]));
  await eventually('no dead letters in /metrics', async () => metric(metrics, 'k2_outbox_dead_letters') === 0);
});

test("Temporal unavailable is not the item's fault: no attempt is counted and nothing becomes a dead letter, even with K2_OUTBOX_MAX_ATTEMPTS=1", async () => {
  const dead = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
  try {
    const { metrics } = startDispatcher(new Client({ connection: dead }), testConfig({ K2_OUTBOX_MAX_ATTEMPTS: '1' }), 50);
    const ids = await enqueue([newLoan(), newLoan()]);
    running!.nudge();
    await eventually('a failed hand-over', async () => (metric(metrics, 'k2_outbox_dispatch_failures_total') ?? 0) >= 1, 120_000);
    await running!.stop();
    running = undefined;
    for (const id of ids) expect(await row(id)).toMatchObject({ attempts: 0, dispatched_at: null, dead_at: null, next_attempt_at: null });
    expect(metric(metrics, 'k2_outbox_dead_letters')).toBe(0);
  } finally {
    await dead.close();
  }
});

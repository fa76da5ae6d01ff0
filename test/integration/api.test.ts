/**
 * K2's HTTP facade end to end: the real express app (createApp) on an ephemeral port, a real SQLite
 * database in a temp dir, the real OutboxDispatcher, and a real Temporal dev server (localEnv) with a
 * worker running the real caseWorkflow. Only ABS and EKO are faked (deterministically), since the
 * subject here is the API: issueDemand is the real db/demands.issueDemand against the test database,
 * so references are recorded exactly as in production.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createApp, MAX_LOANS_PER_REQUEST } from '../../api/app';
import { OutboxDispatcher } from '../../api/dispatcher';
import { ERROR_CODES, ErrorCodeName, MAX_ERROR_TEXT } from '../../api/error-codes';
import { Config, DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { findDemand, issueDemand } from '../../db/demands';
import { countPending, pendingLoans } from '../../db/outbox';
import { caseWorkflowId, CaseStatus } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import { createLogger, Logger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { freePort } from '../../scripts/system';
import { workflowsPath } from '../../worker';
import { caseStatusQuery } from '../../workflows';
import { localEnv } from '../helpers/temporal';
import { eventually } from '../helpers/eventually';
import { dbBackedCaseActivities } from '../helpers/db-case-fakes';

jest.setTimeout(120_000);

const LOANS = '/restapi/services/k2loan_from_eko';
const STATUS = '/restapi/services/k2req_status_from_eko';
const TASK_QUEUE = 'k2-api-test';

const quiet: Logger = createLogger('api-test', 'error', {}, () => undefined);

// ---- deterministic test data and fake ABS/EKO ---------------------------------------------------

const rand = mulberry32(20_240_601);
let serial = 7_100_000_000;
/** The accounts the fake ABS knows, by iinbin: every loan the tests make has its account there. */
const accountsByIin = new Map<string, Array<{ iban: string; cur: string }>>();

/** A valid EKO item with a fresh contract number (KD71000000xx), its account registered in the fake ABS. */
function newLoan(overrides: Partial<EkoLoanItem> = {}): EkoLoanItem {
  const item = generateLoan(rand, overrides, { contractSerial: serial++ });
  accountsByIin.set(item.iinbin, [...(accountsByIin.get(item.iinbin) ?? []), { iban: item.iban, cur: item.cur }]);
  return item;
}

// ---- the system under test ----------------------------------------------------------------------

let env: TestWorkflowEnvironment;
let tmp: string;
let db: Db;
let config: Config;
let worker: Worker;
let workerRun: Promise<void>;
let dispatcher: OutboxDispatcher;
let metrics: Metrics;
let base: string;
const servers: http.Server[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...DEMO_ENV,
    K2_DATA_DIR: tmp,
    K2_DB_URL: path.join(tmp, 'k2.sqlite'),
    K2_API_AUTH: 'none',
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    K2_DISPATCH_CONCURRENCY: '8',
    ...overrides,
  });
}

async function listen(app: ReturnType<typeof createApp>): Promise<string> {
  const server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A second app on its own port (other config, db, client or logger); shares the main ones unless told. */
async function otherApp(deps: Partial<Parameters<typeof createApp>[0]> = {}): Promise<string> {
  return listen(createApp({ config, db, temporal: env.client, logger: quiet, metrics: new Metrics(), ...deps }));
}

/**
 * Like otherApp, but every connection looks to the app as if it came from `remoteAddress`: the test's
 * way to be a client that is not on loopback (the app trusts only the socket, never X-Forwarded-For).
 */
async function appSeenFrom(remoteAddress: string, deps: Partial<Parameters<typeof createApp>[0]> = {}): Promise<string> {
  const server = http.createServer(createApp({ config, db, temporal: env.client, logger: quiet, metrics: new Metrics(), ...deps }));
  server.on('connection', (socket) => Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-api-'));
  env = await localEnv();
  config = testConfig();
  db = await openDb(config.db);
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: workflowsPath(),
    // Episodes are real; GKB reporting is out of this test's scope.
    activities: dbBackedCaseActivities(db, (iin) => accountsByIin.get(iin) ?? [], 'GKB is faked away in the API tests'),
  });
  workerRun = worker.run();
  metrics = new Metrics();
  dispatcher = new OutboxDispatcher(db, env.client, config, quiet, metrics);
  // Through the variable: the crash test replaces the dispatcher, as a restarted process would.
  base = await listen(createApp({ config, db, temporal: env.client, logger: quiet, metrics, onLoansAccepted: () => dispatcher.nudge() }));
  dispatcher.start();
});

afterAll(async () => {
  await dispatcher?.stop();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const c of cleanups) await c().catch(() => undefined);
  if (worker) {
    worker.shutdown();
    await workerRun;
  }
  await db?.destroy();
  await env?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- HTTP and answer helpers --------------------------------------------------------------------

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function call(
  url: string,
  method: string,
  opts: { json?: unknown; raw?: string | Uint8Array; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Uint8Array | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  }
  if (opts.raw !== undefined) body = opts.raw;
  if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A request from a chosen local address: 127.0.0.1 and 127.0.0.2 are two clients on loopback. */
function callFrom(localAddress: string, url: string, method = 'GET', opts: { json?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
  const headers = { ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, localAddress, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const replyHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) replyHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: replyHeaders, text, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A POST of loans whose body never ends: it stays in the server (holding its slot) until released. */
function heldRequest(at: string): { release: () => void } {
  const req = http.request(at + LOANS, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': '1000' } });
  req.on('error', () => undefined); // released by destroying it
  req.write('[');
  return { release: () => req.destroy() };
}

const postLoans = (body: unknown, at = base, headers?: Record<string, string>) => call(at + LOANS, 'POST', { json: body, headers });
const postStatus = (body: unknown, at = base, headers?: Record<string, string>) => call(at + STATUS, 'POST', { json: body, headers });

/** Every error code a test has seen answered; the last error-code test checks that all were. */
const seen = new Set<ErrorCodeName>();

/** The spec's answer: JSON { error_text, error_code } and nothing else, with the code's HTTP status. */
function expectAnswer(reply: Reply, name: ErrorCodeName, text?: string | RegExp): void {
  const { code, http } = ERROR_CODES[name];
  expect({ status: reply.status, error_code: reply.body?.error_code, error_text: reply.body?.error_text }).toMatchObject({ status: http, error_code: code });
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(reply.body).sort()).toEqual(['error_code', 'error_text']);
  expect(typeof reply.body.error_text).toBe('string');
  expect(reply.body.error_text.length).toBeLessThanOrEqual(MAX_ERROR_TEXT);
  if (name === 'OK') expect(reply.body.error_text).toBe('');
  if (text !== undefined) expect(reply.body.error_text).toMatch(text);
  seen.add(name);
}

// ---- Temporal and database helpers --------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the dispatcher has handed every accepted row to Temporal. */
const drained = () => eventually('outbox drained', async () => (await countPending(db)) === 0);
const outboxRows = async () => Number((await db('loan_outbox').count({ n: '*' }))[0].n);

const handleOf = (contract: string) => env.client.workflow.getHandle(caseWorkflowId(contract));
const caseStatus = (contract: string) => handleOf(contract).query(caseStatusQuery);

async function statusWhen(contract: string, pred: (s: CaseStatus) => boolean, what = 'case status'): Promise<CaseStatus> {
  return eventually(`${caseWorkflowId(contract)}: ${what}`, async () => {
    const s = await caseStatus(contract);
    return pred(s) ? s : undefined;
  });
}

/** Every run of the contract's case, from visibility. */
async function runsOf(contract: string): Promise<Array<{ runId: string; status: string }>> {
  const runs: Array<{ runId: string; status: string }> = [];
  for await (const w of env.client.workflow.list({ query: `WorkflowId = "${caseWorkflowId(contract)}"` })) runs.push({ runId: w.runId, status: w.status.name });
  return runs;
}

/** The runs once visibility shows the given run (visibility trails the server's own state a little). */
async function runsIncluding(contract: string, runId: string, count = 1): Promise<Array<{ runId: string; status: string }>> {
  return eventually(`visibility of ${caseWorkflowId(contract)}`, async () => {
    const runs = await runsOf(contract);
    return runs.some((r) => r.runId === runId) && runs.length >= count ? runs : undefined;
  });
}

async function expectNoCase(contract: string): Promise<void> {
  await expect(handleOf(contract).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

/**
 * Makes sure the case has processed every signal sent so far: signals are applied in order, so once
 * a change sent afterwards (one more overdue day, through the API) shows, everything before it has
 * been applied too. Returns the status with that change.
 */
async function barrier(item: EkoLoanItem, current: CaseStatus): Promise<CaseStatus> {
  const overdueDays = current.overdueDays + 1;
  expectAnswer(await postLoans([{ ...item, overdue_days: overdueDays }]), 'OK');
  await drained();
  return statusWhen(item.contract_number, (s) => s.overdueDays === overdueDays, 'barrier update applied');
}

/** The case has done all it does on its own: demand issued and handed to EKO, GKB stage passed; it now waits for signals. */
const settled = (s: CaseStatus) => s.demand?.status === 'sent' && s.stage === 'reported-to-gkb';

/** A running case whose demand K2 issued (real reference) and handed to EKO. */
async function caseWithDemand(item: EkoLoanItem): Promise<string> {
  expectAnswer(await postLoans([item]), 'OK');
  const s = await statusWhen(item.contract_number, settled, 'settled');
  return s.demand!.reference;
}

// ---- loans --------------------------------------------------------------------------------------

describe('k2loan_from_eko', () => {
  test('accepts a batch with error_code 0; every loan becomes a running case-<contract_number> with its data', async () => {
    const items = [
      newLoan({ debt: 2_000_000, overdue_days: 30, dbz_date: '2021.03.04', cur: 'KZT' }),
      newLoan({ debt: '1234.5', overdue_days: 1, dbz_date: '2019-12-31' }),
      newLoan({ debt: 99.99, overdue_days: 720 }),
    ];
    const before = await outboxRows();
    expectAnswer(await postLoans(items), 'OK');
    expect(await outboxRows()).toBe(before + 3);
    await drained();

    const expected = [
      { debt: '2000000.00', overdueDays: 30, dbzDate: '2021-03-04' },
      { debt: '1234.50', overdueDays: 1, dbzDate: '2019-12-31' },
      { debt: '99.99', overdueDays: 720, dbzDate: items[2].dbz_date },
    ];
    for (const [i, item] of items.entries()) {
      const handle = handleOf(item.contract_number);
      const d = await handle.describe();
      expect(d).toMatchObject({ workflowId: `case-${item.contract_number}`, type: 'caseWorkflow', taskQueue: TASK_QUEUE, status: { name: 'RUNNING' } });
      const s = await statusWhen(item.contract_number, settled, 'settled');
      expect(s).toMatchObject({ contractNumber: item.contract_number, currency: 'KZT', updates: 0, ...expected[i] });
      // The demand the case issued is recorded for this case, with the loan's data.
      const demand = await findDemand(db, s.demand!.reference);
      expect(demand).toMatchObject({
        workflow_id: `case-${item.contract_number}`,
        contract_number: item.contract_number,
        amount: expected[i].debt,
        iban: item.iban,
        iinbin: item.iinbin,
        status: 'sent',
      });
      expect(demand!.case_id).toBe(`case-${item.contract_number}/${d.runId}`);
    }
  });

  test('the same request sent again changes nothing: one run, no update counted', async () => {
    const item = newLoan();
    const other = newLoan();
    const request = [item, other];
    expectAnswer(await postLoans(request), 'OK');
    await drained();
    const first = await statusWhen(item.contract_number, settled, 'settled');
    const { runId } = await handleOf(item.contract_number).describe();

    // Re-sent twice more (e.g. EKO did not see the first answer), once while the case is already working.
    expectAnswer(await postLoans(request), 'OK');
    expectAnswer(await postLoans(JSON.parse(JSON.stringify(request))), 'OK');
    await drained();
    // Each re-send was really handed to the case (the outbox rows are dispatched)…
    const rows = await db('loan_outbox').where({ contract_number: item.contract_number }).select('dispatched_at');
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.dispatched_at !== null)).toBe(true);
    // …and the case ignored it: same run, no update, same demand (the barrier's update is the only one).
    const after = await barrier(item, first);
    expect(after).toEqual({ ...first, overdueDays: first.overdueDays + 1, updates: 1 });
    expect((await handleOf(item.contract_number).describe()).runId).toBe(runId);
    expect(await runsIncluding(item.contract_number, runId)).toEqual([{ runId, status: 'RUNNING' }]);
  });

  test('identical duplicates inside one request collapse into one item', async () => {
    const item = newLoan();
    const before = await outboxRows();
    expectAnswer(await postLoans([item, { ...item }, { ...item, debt: String(item.debt), unknown_extra: 1 }]), 'OK');
    expect(await outboxRows()).toBe(before + 1);
    await drained();
    const { runId } = await handleOf(item.contract_number).describe();
    expect(await runsIncluding(item.contract_number, runId)).toHaveLength(1);
    expect((await caseStatus(item.contract_number)).updates).toBe(0);
  });

  test('a new debt, overdue_days and dbz_date reach the running case', async () => {
    const item = newLoan({ debt: 500_000, overdue_days: 10, dbz_date: '2020-01-15' });
    expectAnswer(await postLoans([item]), 'OK');
    await drained();
    await statusWhen(item.contract_number, settled, 'settled');
    const { runId } = await handleOf(item.contract_number).describe();

    expectAnswer(await postLoans([{ ...item, debt: '512345.67', overdue_days: 41, dbz_date: '2020.01.16' }]), 'OK');
    await drained();
    const s = await statusWhen(item.contract_number, (st) => st.updates === 1, 'update applied');
    expect(s).toMatchObject({ debt: '512345.67', overdueDays: 41, dbzDate: '2020-01-16', updates: 1 });
    expect((await handleOf(item.contract_number).describe()).runId).toBe(runId);
  });

  test('a repaid loan (debt 0) closes its case; a repaid loan without a case starts none', async () => {
    const item = newLoan();
    await caseWithDemand(item);
    const neverOverdue = newLoan({ debt: 0 });
    expectAnswer(await postLoans([{ ...item, debt: 0 }, neverOverdue]), 'OK');
    await drained();
    const result: CaseStatus = await handleOf(item.contract_number).result();
    expect(result).toMatchObject({ stage: 'closed', closedReason: 'repaid', debt: '0.00', updates: 1 });
    expect((await handleOf(item.contract_number).describe()).status.name).toBe('COMPLETED');
    await expectNoCase(neverOverdue.contract_number);
  });

  test('a closed case whose contract comes back overdue starts a new run under the same workflow id', async () => {
    const item = newLoan({ debt: 300_000 });
    const firstReference = await caseWithDemand(item);
    const firstRun = (await handleOf(item.contract_number).describe()).runId;
    expectAnswer(await postLoans([{ ...item, debt: 0 }]), 'OK');
    await drained();
    await handleOf(item.contract_number).result();

    expectAnswer(await postLoans([{ ...item, debt: 310_000, overdue_days: item.overdue_days + 30 }]), 'OK');
    await drained();
    const d = await handleOf(item.contract_number).describe();
    expect(d.workflowId).toBe(`case-${item.contract_number}`);
    expect(d.runId).not.toBe(firstRun);
    expect(d.status.name).toBe('RUNNING');
    const s = await statusWhen(item.contract_number, settled, 'new case settled');
    expect(s).toMatchObject({ debt: '310000.00', updates: 0 });
    // A new case: its own demand, with a new reference, recorded for the new run.
    expect(s.demand!.reference).not.toBe(firstReference);
    expect(await findDemand(db, s.demand!.reference)).toMatchObject({ case_id: `case-${item.contract_number}/${d.runId}`, amount: '310000.00' });
    const runs = await runsIncluding(item.contract_number, d.runId, 2);
    expect(runs.map((r) => `${r.runId}:${r.status}`).sort()).toEqual([`${firstRun}:COMPLETED`, `${d.runId}:RUNNING`].sort());
  });

  test('conflicting duplicates in one request are rejected, naming both items; nothing is accepted', async () => {
    const a = newLoan();
    const b = newLoan();
    const before = await outboxRows();
    const reply = await postLoans([a, b, { ...a, debt: Number(a.debt) + 1, overdue_days: a.overdue_days + 1 }]);
    expectAnswer(reply, 'VALIDATION', /^item 2 field contract_number: same contract_number as item 0 with different data \(debt, overdue_days\)$/);
    expect(await outboxRows()).toBe(before);
    await drained();
    await expectNoCase(a.contract_number);
    await expectNoCase(b.contract_number);
  });

  test('all or nothing: one bad item among good ones, and nothing reaches the outbox or Temporal', async () => {
    const good = [newLoan(), newLoan(), newLoan()];
    const bad = newLoan({ iinbin: '123' });
    const before = await outboxRows();
    expectAnswer(await postLoans([good[0], good[1], bad, good[2]]), 'VALIDATION', /^item 2 field iinbin: /);
    expect(await outboxRows()).toBe(before);
    await sleep(1200); // longer than the dispatcher's idle poll: it would have found any row by now
    for (const g of [...good, bad]) await expectNoCase(g.contract_number);
    // The same items without the bad one are then accepted.
    expectAnswer(await postLoans(good), 'OK');
    await drained();
    for (const g of good) expect((await handleOf(g.contract_number).describe()).status.name).toBe('RUNNING');
  });
});

// ---- statuses -----------------------------------------------------------------------------------

describe('k2req_status_from_eko', () => {
  test('PC1 then PC3 reach the case that issued the reference (and only it); the same status twice is harmless', async () => {
    const a = newLoan();
    const b = newLoan();
    const refA = await caseWithDemand(a);
    const refB = await caseWithDemand(b);
    expect(refA).not.toBe(refB);

    expectAnswer(await postStatus({ reference: refA, status_code: 'PC1' }), 'OK');
    const pc1 = await statusWhen(a.contract_number, (s) => s.demand?.acceptedByBank === true, 'PC1 seen');
    expect(pc1.demand).toEqual({ reference: refA, status: 'PC1', acceptedByBank: true, inCardIndex: false });
    expect((await findDemand(db, refA))!.status).toBe('PC1');

    expectAnswer(await postStatus({ reference: refA, status_code: 'PC1', extra: 'ignored' }), 'OK');
    expect((await barrier(a, pc1)).demand).toEqual(pc1.demand);

    expectAnswer(await postStatus({ reference: refA, status_code: 'PC3' }), 'OK');
    const pc3 = await statusWhen(a.contract_number, (s) => s.demand?.inCardIndex === true, 'PC3 seen');
    expect(pc3.demand).toEqual({ reference: refA, status: 'PC3', acceptedByBank: true, inCardIndex: true });
    expect((await findDemand(db, refA))!.status).toBe('PC3');
    expectAnswer(await postStatus({ reference: refA, status_code: 'PC3' }), 'OK');

    // The other case heard nothing.
    expect((await caseStatus(b.contract_number)).demand).toEqual({ reference: refB, status: 'sent', acceptedByBank: false, inCardIndex: false });
    expect((await findDemand(db, refB))!.status).toBe('sent');
    // The case stays open: a status never closes it.
    expect((await handleOf(a.contract_number).describe()).status.name).toBe('RUNNING');
  });

  test('PC3 before PC1: the bank accepted (implied); the late PC1 does not move the status back', async () => {
    const c = newLoan();
    const ref = await caseWithDemand(c);
    expectAnswer(await postStatus({ reference: ref, status_code: 'PC3' }), 'OK');
    const pc3 = await statusWhen(c.contract_number, (s) => s.demand?.inCardIndex === true, 'PC3 seen');
    expect(pc3.demand).toEqual({ reference: ref, status: 'PC3', acceptedByBank: true, inCardIndex: true });
    expectAnswer(await postStatus({ reference: ref, status_code: 'PC1' }), 'OK');
    expect((await barrier(c, pc3)).demand).toEqual({ reference: ref, status: 'PC3', acceptedByBank: true, inCardIndex: true });
    expect((await findDemand(db, ref))!.status).toBe('PC3');
  });

  test('a status for a case that is already closed is recorded and answered 0', async () => {
    const c = newLoan();
    const ref = await caseWithDemand(c);
    expectAnswer(await postLoans([{ ...c, debt: 0 }]), 'OK');
    await handleOf(c.contract_number).result();
    expectAnswer(await postStatus({ reference: ref, status_code: 'PC1' }), 'OK');
    expect((await findDemand(db, ref))!.status).toBe('PC1');
  });
});

// ---- every error code ---------------------------------------------------------------------------

describe('error codes', () => {
  test('1 VALIDATION: error_text names each bad item index, field and reason, in order', async () => {
    const before = await outboxRows();
    const { fullname: _f, ...noName } = newLoan();
    const reply = await postLoans([
      newLoan(),
      newLoan({ iban: 'KZ000000000000000001', overdue_days: -1 }),
      newLoan(),
      noName,
      newLoan({ cur: 'kzt', system: 'abs9' }),
    ]);
    expectAnswer(reply, 'VALIDATION');
    const text: string = reply.body.error_text;
    expect(text.split('; ').map((p) => p.replace(/:.*/, ''))).toEqual([
      'item 1 field iban',
      'item 1 field overdue_days',
      'item 3 field fullname',
      'item 4 field cur',
      'item 4 field system',
    ]);
    expect(text).toContain('item 1 field overdue_days: must not be negative');
    expect(text).toContain('item 3 field fullname: is required');
    expect(text).toContain('item 4 field system: unknown ABS system "abs9"');
    expect(text).not.toMatch(/item [02] /);
    expect(await outboxRows()).toBe(before);

    // Thousands of bad items: the answer stays readable and bounded.
    const many = Array.from({ length: 3000 }, () => ({ iban: 'nope' }));
    const big = await postLoans(many);
    expectAnswer(big, 'VALIDATION', /^item 0 field iban: .*… and \d+ more$/);

    // The status service names its field too.
    expectAnswer(await postStatus({ reference: 'PTP123', status_code: 'PC1' }), 'VALIDATION', /field reference: must be PTP followed by 11 digits/);
    expectAnswer(await postStatus({ reference: 'PTP00000000001' }), 'VALIDATION', /field status_code: is required/);
    expectAnswer(await postStatus({ reference: 'PTP00000000001', status_code: 'pc1' }), 'VALIDATION', /field status_code/);
  });

  test('2 MALFORMED_REQUEST: invalid JSON, wrong or missing content type, a body of the wrong shape', async () => {
    const before = await outboxRows();
    for (const url of [base + LOANS, base + STATUS]) {
      expectAnswer(await call(url, 'POST', { raw: '[{"iban": ', contentType: 'application/json' }), 'MALFORMED_REQUEST', /not valid JSON/);
      expectAnswer(await call(url, 'POST', { raw: '{"a":1}{', contentType: 'application/json; charset=utf-8' }), 'MALFORMED_REQUEST', /not valid JSON/);
      expectAnswer(
        await call(url, 'POST', { raw: JSON.stringify([newLoan()]), contentType: 'text/plain' }),
        'MALFORMED_REQUEST',
        /Content-Type must be application\/json, got "text\/plain"/,
      );
      expectAnswer(await call(url, 'POST', { raw: 'a=1', contentType: 'application/x-www-form-urlencoded' }), 'MALFORMED_REQUEST', /Content-Type/);
      // No Content-Type at all (a byte body: fetch adds none).
      expectAnswer(await call(url, 'POST', { raw: new TextEncoder().encode('[]') }), 'MALFORMED_REQUEST', /got "none"/);
      expectAnswer(await call(url, 'POST', { raw: '[]', contentType: 'application/json; charset=latin1' }), 'MALFORMED_REQUEST');
    }
    for (const body of [{ iban: 'x' }, 'loans', 42, null, true]) expectAnswer(await postLoans(body), 'MALFORMED_REQUEST', /must be a JSON array of loans/);
    expectAnswer(await postLoans([]), 'MALFORMED_REQUEST', /at least one loan/);
    expectAnswer(await call(base + LOANS, 'POST', { raw: '', contentType: 'application/json' }), 'MALFORMED_REQUEST');
    for (const body of [[{ reference: 'PTP00000000001', status_code: 'PC1' }], 'PC1', 7, null]) {
      expectAnswer(await postStatus(body), 'MALFORMED_REQUEST', /must be one JSON object/);
    }
    expect(await outboxRows()).toBe(before);
  });

  test('3 PAYLOAD_TOO_LARGE: a body over K2_API_BODY_LIMIT, or more items than allowed', async () => {
    const small = await otherApp({ config: testConfig({ K2_API_BODY_LIMIT: '1kb' }) });
    const item = newLoan({ debt: 0 }); // accepted but starts no case
    expect(JSON.stringify([item]).length).toBeLessThan(1024);
    const before = await outboxRows();
    expectAnswer(await postLoans([item], small), 'OK');
    const four = [newLoan(), newLoan(), newLoan(), newLoan(), newLoan()];
    expect(JSON.stringify(four).length).toBeGreaterThan(1024);
    expectAnswer(await postLoans(four, small), 'PAYLOAD_TOO_LARGE', /exceeds 1kb/);
    expectAnswer(await postStatus({ reference: 'PTP00000000001', status_code: 'PC1', padding: 'x'.repeat(2000) }, small), 'PAYLOAD_TOO_LARGE');
    expect(await outboxRows()).toBe(before + 1);

    const tooMany = `[${Array(MAX_LOANS_PER_REQUEST + 1)
      .fill('{}')
      .join(',')}]`;
    expectAnswer(
      await call(base + LOANS, 'POST', { raw: tooMany, contentType: 'application/json' }),
      'PAYLOAD_TOO_LARGE',
      `too many loans: ${MAX_LOANS_PER_REQUEST + 1}, at most ${MAX_LOANS_PER_REQUEST} per request`,
    );
    expect(await outboxRows()).toBe(before + 1);
    for (const f of four) await expectNoCase(f.contract_number);
  });

  test('4 UNKNOWN_REFERENCE: a well-formed reference K2 never issued', async () => {
    expectAnswer(await postStatus({ reference: 'PTP99999999999', status_code: 'PC1' }), 'UNKNOWN_REFERENCE', /PTP99999999999/);
  });

  test('5 UNKNOWN_STATUS_CODE: a well-formed code that is not PC1 or PC3, and the demand keeps its status', async () => {
    const c = newLoan();
    const ref = await caseWithDemand(c);
    for (const code of ['PC2', 'PC9', 'XY123']) {
      expectAnswer(await postStatus({ reference: ref, status_code: code }), 'UNKNOWN_STATUS_CODE', new RegExp(`unknown status ${code}; known: PC1, PC3`));
    }
    expect((await findDemand(db, ref))!.status).toBe('sent');
    expect((await caseStatus(c.contract_number)).demand?.status).toBe('sent');
  });

  test('6 UNAUTHORIZED: basic (with WWW-Authenticate) and bearer, on both services; probes stay open', async () => {
    const basicAuth = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
    const basic = await otherApp({ config: testConfig({ K2_API_AUTH: 'basic', K2_API_USER: 'eko', K2_API_PASSWORD: 'correct-horse-battery' }) });
    const before = await outboxRows();
    for (const headers of [
      undefined,
      basicAuth('eko', 'wrong-password'),
      basicAuth('other', 'correct-horse-battery'),
      { authorization: 'Bearer correct-horse-battery' },
      { authorization: 'Basic !!!' },
    ]) {
      const r = await postLoans([newLoan()], basic, headers);
      expectAnswer(r, 'UNAUTHORIZED', 'missing or wrong credentials');
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="k2"');
      expectAnswer(await postStatus({ reference: 'PTP99999999999', status_code: 'PC1' }, basic, headers), 'UNAUTHORIZED');
    }
    // The right credentials pass (the empty object then fails as a malformed body, not as unauthorized).
    expectAnswer(await postLoans({}, basic, basicAuth('eko', 'correct-horse-battery')), 'MALFORMED_REQUEST');
    expectAnswer(await postStatus({ reference: 'PTP99999999999', status_code: 'PC1' }, basic, basicAuth('eko', 'correct-horse-battery')), 'UNKNOWN_REFERENCE');

    const token = 'tok-0123456789abcdef';
    const bearer = await otherApp({ config: testConfig({ K2_API_AUTH: 'bearer', K2_API_TOKEN: token }) });
    for (const headers of [undefined, { authorization: `Bearer ${token}x` }, { authorization: token }, basicAuth('eko', token)]) {
      expectAnswer(await postLoans([newLoan()], bearer, headers), 'UNAUTHORIZED');
      expectAnswer(await postStatus({ reference: 'PTP99999999999', status_code: 'PC1' }, bearer, headers), 'UNAUTHORIZED');
    }
    expectAnswer(await postLoans({}, bearer, { authorization: `Bearer ${token}` }), 'MALFORMED_REQUEST');
    expect(await outboxRows()).toBe(before);

    for (const at of [basic, bearer]) {
      expect((await call(at + '/health', 'GET')).status).toBe(200);
      expect((await call(at + '/openapi.json', 'GET')).status).toBe(200);
    }
  });

  test('7 TEMPORARILY_UNAVAILABLE: the database is gone (loans), Temporal is unreachable (statuses); /ready says 503 without the error text', async () => {
    // Loans: the database cannot record them.
    const brokenDb = await openDb({ client: 'sqlite', url: path.join(tmp, 'broken.sqlite') });
    const lines: string[] = [];
    const noDb = await otherApp({ db: brokenDb, logger: createLogger('api-test', 'warn', {}, (l) => lines.push(l)) });
    await brokenDb.destroy();
    expectAnswer(await postLoans([newLoan()], noDb), 'TEMPORARILY_UNAVAILABLE', /nothing was accepted/);
    const notReadyDb = await call(noDb + '/ready', 'GET');
    expect(notReadyDb.status).toBe(503);
    // Each check is ok or failed: why it failed goes to the log, never into the answer.
    expect(notReadyDb.body).toEqual({ status: 'not ready', checks: { database: 'failed', temporal: 'ok' } });
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'readiness check failed');
    expect(logged).toMatchObject({ level: 'warn', check: 'database', err: { message: expect.stringMatching(/\S/) } });
    expect(notReadyDb.text).not.toContain(logged.err.message);

    // Statuses: the reference is known, but the case cannot be signalled.
    const dead = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
    cleanups.push(() => dead.close());
    const noTemporal = await otherApp({ temporal: new Client({ connection: dead }) });
    const ref = await issueDemand(db, {
      caseId: 'case-KD-DEAD/run',
      workflowId: 'case-KD-DEAD',
      contractNumber: 'KD-DEAD',
      amount: '1.00',
      currency: 'KZT',
      iban: newLoan().iban,
      iinbin: newLoan().iinbin,
      evidence: [],
    });
    const started = Date.now();
    const [statusReply, ready] = await Promise.all([postStatus({ reference: ref, status_code: 'PC1' }, noTemporal), call(noTemporal + '/ready', 'GET')]);
    expectAnswer(statusReply, 'TEMPORARILY_UNAVAILABLE', /retry later/);
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not ready', checks: { database: 'ok', temporal: 'failed' } });
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  test('/ready answers within a few seconds when Temporal is unreachable', async () => {
    const dead = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
    cleanups.push(() => dead.close());
    const noTemporal = await otherApp({ temporal: new Client({ connection: dead }) });
    const started = Date.now();
    expect((await call(noTemporal + '/ready', 'GET')).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  test('8 NOT_FOUND: unknown paths and methods, whatever their body', async () => {
    expectAnswer(await call(base + '/nope', 'GET'), 'NOT_FOUND', 'no endpoint GET /nope');
    expectAnswer(await call(base + LOANS, 'GET'), 'NOT_FOUND');
    expectAnswer(await call(base + STATUS, 'PUT', { json: {} }), 'NOT_FOUND');
    expectAnswer(await call(base + '/restapi/services/k2loan_from_ek0', 'POST', { json: [newLoan()] }), 'NOT_FOUND');
    expectAnswer(await call(base + '/restapi/services/k2loan_from_ek0', 'POST', { raw: 'x', contentType: 'text/plain' }), 'NOT_FOUND');
    expectAnswer(await call(base + '/restapi/services/k2loan_from_ek0', 'POST', { raw: '{', contentType: 'application/json' }), 'NOT_FOUND');
    expectAnswer(await call(base + '/restapi/k2loan_from_eko', 'POST', { json: [newLoan()] }), 'NOT_FOUND');
  });

  test('9 INTERNAL: an unexpected error answers 500 in the spec shape, without internals, and is logged', async () => {
    // Not reachable through the real dependencies by any request (every failure they can have maps
    // to a code above), so a dependency that fails unexpectedly is injected: a logger that throws.
    const logged: string[] = [];
    const faulty: Logger = {
      ...quiet,
      info: (msg) => {
        throw new Error(`boom in ${msg} at /secret/path/app.ts:1`);
      },
      error: (msg) => void logged.push(msg),
    };
    const broken = await otherApp({ logger: faulty });
    const before = await outboxRows();
    const reply = await postLoans([newLoan({ iinbin: 'bad' })], broken);
    expectAnswer(reply, 'INTERNAL', 'internal error; it has been logged');
    expect(reply.text).not.toMatch(/boom|secret|\.ts/);
    expect(logged).toContain('unexpected API error');
    expect(await outboxRows()).toBe(before);
  });

  test('10 TOO_MANY_REQUESTS: over K2_API_MAX_CONCURRENT requests at once are refused with Retry-After, nothing of them accepted; /health stays open', async () => {
    const busy = await otherApp({ config: testConfig({ K2_API_MAX_CONCURRENT: '2' }) });
    const held = [heldRequest(busy), heldRequest(busy)];
    try {
      // The held requests take their slots once the server has read their headers.
      const refused = await eventually('both slots taken', async () => {
        const r = await call(busy + '/openapi.json', 'GET');
        return r.status === 429 ? r : undefined;
      });
      expectAnswer(refused, 'TOO_MANY_REQUESTS', /limit of 2 requests at once/);
      expect(refused.headers.get('retry-after')).toBe('1');
      const before = await outboxRows();
      const item = newLoan();
      const refusedLoans = await postLoans([item], busy);
      expectAnswer(refusedLoans, 'TOO_MANY_REQUESTS');
      expect(refusedLoans.headers.get('retry-after')).toBe('1');
      expectAnswer(await postStatus({ reference: 'PTP99999999999', status_code: 'PC1' }, busy), 'TOO_MANY_REQUESTS');
      expect(await outboxRows()).toBe(before);
      expect((await call(busy + '/health', 'GET')).status).toBe(200);

      // A slot comes back when its request ends, here because its client went away.
      held[0].release();
      await eventually('a slot free again', async () => (await call(busy + '/openapi.json', 'GET')).status === 200);
      expectAnswer(await postLoans([item], busy), 'OK');
      expect(await outboxRows()).toBe(before + 1);
      await drained(); // the main dispatcher starts it: later tests count the outbox's pending rows
    } finally {
      for (const h of held) h.release();
    }
  });

  test('10 TOO_MANY_REQUESTS: a client over K2_API_RATE_PER_CLIENT per second is refused while another is served', async () => {
    let now = 1_000_000; // the limiter's clock stands still unless the test moves it
    const limited = await otherApp({ config: testConfig({ K2_API_RATE_PER_CLIENT: '2' }), clock: () => now });
    const [a, b] = ['127.0.0.1', '127.0.0.2'];
    for (let i = 0; i < 2; i++) expect((await callFrom(a, limited + '/openapi.json')).status).toBe(200);
    const before = await outboxRows();
    const refused = await callFrom(a, limited + LOANS, 'POST', { json: [newLoan()] });
    expectAnswer(refused, 'TOO_MANY_REQUESTS', /over its 2 requests per second/);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await outboxRows()).toBe(before);
    expect((await callFrom(a, limited + '/health')).status).toBe(200);

    // Another client has its own bucket.
    expectAnswer(await callFrom(b, limited + LOANS, 'POST', { json: [newLoan()] }), 'OK');
    expect((await callFrom(b, limited + '/openapi.json')).status).toBe(200);
    expect(await outboxRows()).toBe(before + 1);
    await drained();

    // Half a second later the first client may send one more request, and only one.
    now += 500;
    expect((await callFrom(a, limited + '/openapi.json')).status).toBe(200);
    expectAnswer(await callFrom(a, limited + '/openapi.json'), 'TOO_MANY_REQUESTS');
  });

  test('10 TOO_MANY_REQUESTS: an authenticated client is its user or token, wherever it connects from; without credentials, its address', async () => {
    const token = 'tok-0123456789abcdef';
    const limited = await otherApp({ config: testConfig({ K2_API_AUTH: 'bearer', K2_API_TOKEN: token, K2_API_RATE_PER_CLIENT: '1' }), clock: () => 0 });
    const auth = { authorization: `Bearer ${token}` };
    expectAnswer(await callFrom('127.0.0.1', limited + LOANS, 'POST', { json: {}, headers: auth }), 'MALFORMED_REQUEST');
    expectAnswer(await callFrom('127.0.0.2', limited + LOANS, 'POST', { json: {}, headers: auth }), 'TOO_MANY_REQUESTS');
    // The second address without the token counts as itself (and is then refused as unauthorized by the service).
    expectAnswer(await callFrom('127.0.0.2', limited + LOANS, 'POST', { json: {} }), 'UNAUTHORIZED');
    expectAnswer(await callFrom('127.0.0.2', limited + LOANS, 'POST', { json: {} }), 'TOO_MANY_REQUESTS');
  });

  test('11 FORBIDDEN, and the guard of /metrics and /ready in each K2_API_OPS_AUTH mode; X-Forwarded-For is not trusted', async () => {
    const outsider = '203.0.113.7';
    const probes = ['/metrics', '/ready'];
    // loopback (the default): open on loopback, forbidden from elsewhere whatever the client claims.
    const onLoopback = await otherApp();
    for (const p of probes) expect((await call(onLoopback + p, 'GET')).status).toBe(200);
    const fromOutside = await appSeenFrom(outsider);
    for (const p of probes) {
      expectAnswer(await call(fromOutside + p, 'GET'), 'FORBIDDEN', `${p} answers loopback clients only`);
      expectAnswer(await call(fromOutside + p, 'GET', { headers: { 'x-forwarded-for': '127.0.0.1' } }), 'FORBIDDEN');
    }
    expect((await call(fromOutside + '/health', 'GET')).status).toBe(200);
    expectAnswer(await postLoans({}, fromOutside), 'MALFORMED_REQUEST'); // the services have their own authentication

    // token: the bearer token from anywhere, loopback included.
    const opsToken = 'ops-0123456789abcdef';
    const tokenConfig = testConfig({ K2_API_OPS_AUTH: 'token', K2_API_OPS_TOKEN: opsToken });
    for (const at of [await otherApp({ config: tokenConfig }), await appSeenFrom(outsider, { config: tokenConfig })]) {
      for (const p of probes) {
        for (const headers of [undefined, { authorization: `Bearer ${opsToken}x` }, { authorization: opsToken }]) {
          const r = await call(at + p, 'GET', { headers });
          expectAnswer(r, 'UNAUTHORIZED', /Bearer <K2_API_OPS_TOKEN>/);
          expect(r.headers.get('www-authenticate')).toBe('Bearer realm="k2-ops"');
        }
        expect((await call(at + p, 'GET', { headers: { authorization: `Bearer ${opsToken}` } })).status).toBe(200);
      }
    }

    // open: anyone.
    const open = await appSeenFrom(outsider, { config: testConfig({ K2_API_OPS_AUTH: 'open' }) });
    for (const p of probes) expect((await call(open + p, 'GET')).status).toBe(200);
  });

  test('every error code of api/error-codes.ts was answered above with its HTTP status', () => {
    expect([...seen].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});

// ---- operations ---------------------------------------------------------------------------------

describe('operations', () => {
  test('/health is 200; /ready is 200 with database and Temporal up', async () => {
    const health = await call(base + '/health', 'GET');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const ready = await call(base + '/ready', 'GET');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { database: 'ok', temporal: 'ok' } });
  });

  test('/metrics counts answers per endpoint and code, accepted loans and dispatched rows; labels never echo client paths', async () => {
    // Paths a client makes up (with a good body, a wrong content type, bad JSON) must not become label values.
    await call(base + '/restapi/services/evil-label-1', 'POST', { json: [] });
    await call(base + '/restapi/services/evil-label-2', 'POST', { raw: 'x', contentType: 'text/plain' });
    await call(base + '/restapi/services/evil-label-3', 'POST', { raw: '{', contentType: 'application/json' });
    const reply = await call(base + '/metrics', 'GET');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^text\/plain/);
    const value = (series: string) => {
      const line = reply.text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('k2_api_requests_total{endpoint="k2loan_from_eko",error_code="0"}')).toBeGreaterThanOrEqual(10);
    expect(value('k2_api_requests_total{endpoint="k2loan_from_eko",error_code="1"}')).toBeGreaterThanOrEqual(2);
    expect(value('k2_api_requests_total{endpoint="k2req_status_from_eko",error_code="0"}')).toBeGreaterThanOrEqual(5);
    expect(value('k2_api_requests_total{endpoint="k2req_status_from_eko",error_code="4"}')).toBeGreaterThanOrEqual(1);
    expect(value('k2_api_requests_total{endpoint="unknown",error_code="8"}')).toBeGreaterThanOrEqual(1);
    expect(value('k2_loans_accepted_total')).toBeGreaterThanOrEqual(20);
    expect(value('k2_outbox_dispatched_total')).toBeGreaterThanOrEqual(20);
    expect(value('k2_outbox_pending')).toBe(0);
    expect(reply.text).not.toContain('evil-label');
    expect(reply.text).toMatch(/^# HELP k2_api_requests_total /m);
  });
});

// ---- durability ---------------------------------------------------------------------------------

describe('durability', () => {
  test('a crash after the answer loses nothing: after a restart a new dispatcher starts every accepted case exactly once', async () => {
    const crashed = dispatcher;
    await crashed.stop(); // the process dies right after answering
    const items = [newLoan(), newLoan(), newLoan(), newLoan(), newLoan()];
    expectAnswer(await postLoans(items), 'OK');
    const rows = await pendingLoans(db, 100);
    expect(rows.map((r) => r.contract_number).sort()).toEqual(items.map((i) => i.contract_number).sort());
    await sleep(1200);
    for (const i of items) await expectNoCase(i.contract_number);
    // Worst case: before dying it had already handed two rows to Temporal but not marked them dispatched.
    await crashed.dispatchLoan(rows[0].loan!, { acceptedSeq: rows[0].id });
    await crashed.dispatchLoan(rows[1].loan!, { acceptedSeq: rows[1].id });
    expect(await countPending(db)).toBe(items.length);

    dispatcher = new OutboxDispatcher(db, env.client, config, quiet, new Metrics()); // the restarted process
    dispatcher.start();
    await drained();
    for (const i of items) {
      const s = await statusWhen(i.contract_number, settled, 'settled');
      expect(s.updates).toBe(0);
      const { runId } = await handleOf(i.contract_number).describe();
      expect(await runsIncluding(i.contract_number, runId)).toEqual([{ runId, status: 'RUNNING' }]);
      expect(await db('payment_demands').where({ contract_number: i.contract_number }).select('reference')).toHaveLength(1);
    }
  });
});

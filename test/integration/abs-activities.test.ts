/**
 * The case activities (activities/index.ts) with the real ABS client against the ABS simulator
 * over HTTP (ephemeral port), each run inside MockActivityEnvironment so Context works as in a
 * worker. Every fault class ends where the workflow expects it:
 *  - business answer (200, error_code ≠ 0)  → returned as data, { ok: false }
 *  - malformed answer                       → non-retryable ApplicationFailure AbsProtocolError naming the call and field
 *  - 5xx, 429, timeout                      → retryable ApplicationFailure AbsUnavailable
 *  - no scan (404)                          → { found: false }
 *  - scan found                             → streamed into the document store, stored once
 *  - the activity cancelled mid-download    → the HTTP call is aborted, nothing is stored
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type CaseActivities } from '../../activities';
import { createAbsClient } from '../../integrations/abs';
import type { EkoClient } from '../../integrations/eko';
import { createDocumentStore, type DocumentStore } from '../../documents/store';
import { ABS_SCENARIO_IINS as S, ABS_SIM_ERRORS, ABS_SIM_PATHS, createAbsSimulator, deriveLoanAccount, type AbsSimulator } from '../../simulators/abs/server';
import { Faults } from '../../simulators/faults';
import type { Db } from '../../db';
import { testDatabases } from '../helpers/databases';
import { filesBelow } from '../helpers/files';

const SEED = 11;
const TIMEOUT_MS = 400;
const sqlite = testDatabases()[0];

let faults: Faults;
let sim: AbsSimulator;
let db: Db;
let dir: string;
let documents: DocumentStore;
let acts: CaseActivities;
let base: string;

/** Runs one activity as the worker would: inside an activity Context. */
/** The activity's own failure log lines would only repeat what the assertions check. */
const quiet = new DefaultLogger('ERROR');

function run<K extends keyof CaseActivities>(name: K, ...args: Parameters<CaseActivities[K]>): Promise<Awaited<ReturnType<CaseActivities[K]>>> {
  const env = new MockActivityEnvironment({ activityType: name }, { logger: quiet });
  return env.run(acts[name] as (...a: Parameters<CaseActivities[K]>) => Promise<Awaited<ReturnType<CaseActivities[K]>>>, ...args);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the activity to fail');
}

/** ABS away: a retryable ApplicationFailure of type AbsUnavailable naming the call. */
function expectRetryable(err: unknown, call: string): void {
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect({ type: failure.type, nonRetryable: failure.nonRetryable }).toEqual({ type: 'AbsUnavailable', nonRetryable: false });
  expect(failure.message).toContain(`ABS ${call}`);
}

function expectPermanent(err: unknown, ...parts: string[]): ApplicationFailure {
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.nonRetryable).toBe(true);
  expect(failure.type).toBe('AbsProtocolError');
  for (const p of parts) expect(failure.message).toContain(p);
  return failure;
}

const ordinaryLoan = () => deriveLoanAccount(S.ordinary, SEED);
const STATEMENT_DATE = '2021-03-15';
const scanInput = (over: Partial<{ caseId: string; dbzNum: string; dbzDate: string; iinbin: string }> = {}) => ({
  caseId: 'case-KD0000000001/run-1',
  dbzNum: 'KD0000000001',
  dbzDate: '2021-03-15',
  iinbin: S.ordinary,
  ...over,
});

const storedFiles = () => filesBelow(dir);

beforeAll(async () => {
  faults = new Faults('abs');
  sim = createAbsSimulator({ faults, seed: SEED });
  const port = await sim.listen(0);
  base = `http://127.0.0.1:${port}`;
  const abs = createAbsClient({
    clientUrl: base + ABS_SIM_PATHS.client,
    accountsUrl: base + ABS_SIM_PATHS.accounts,
    statementUrl: base + ABS_SIM_PATHS.statement,
    scanUrl: base + ABS_SIM_PATHS.scan,
    timeoutMs: TIMEOUT_MS,
  });
  db = await sqlite.open();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-abs-acts-'));
  documents = createDocumentStore({ db, dir });
  const eko = {} as EkoClient; // not used by the ABS activities
  acts = createActivities({ db, abs, eko, documents });
});

afterEach(() => faults.reset());

afterAll(async () => {
  await sim.close();
  await sqlite.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('answers', () => {
  it('checkClient returns only what the case keeps', async () => {
    const answer = await run('checkClient', S.ordinary);
    expect(answer).toEqual({ ok: true, value: { fullname: expect.any(String), sectecon: 9, residfl: 1 } });
  });

  it('listAccounts returns IBAN and currency of each account, the loan account among them', async () => {
    const answer = await run('listAccounts', S.ordinary);
    if (!answer.ok) throw new Error('expected accounts');
    expect(answer.value).toContainEqual({ iban: ordinaryLoan().iban, cur: ordinaryLoan().cur });
    for (const a of answer.value) expect(Object.keys(a).sort()).toEqual(['cur', 'iban']);
  });

  it('fetchStatement returns the disbursement line', async () => {
    const answer = await run('fetchStatement', ordinaryLoan().iban, STATEMENT_DATE);
    expect(answer).toEqual({
      ok: true,
      value: [{ purpose: expect.any(String), amount: ordinaryLoan().amount, cur: ordinaryLoan().cur, DC: 'D', out_bal: ordinaryLoan().amount }],
    });
  });

  it('fetchDisbursementLine returns only the line proving the disbursement', async () => {
    const answer = await run('fetchDisbursementLine', ordinaryLoan().iban, STATEMENT_DATE, ordinaryLoan().cur);
    expect(answer).toEqual({
      ok: true,
      value: { purpose: expect.any(String), amount: ordinaryLoan().amount, cur: ordinaryLoan().cur, DC: 'D', out_bal: ordinaryLoan().amount },
    });
  });

  it('fetchDisbursementLine returns null when no line is in the loan currency', async () => {
    const other = ordinaryLoan().cur === 'KZT' ? 'USD' : 'KZT';
    expect(await run('fetchDisbursementLine', ordinaryLoan().iban, STATEMENT_DATE, other)).toEqual({ ok: true, value: null });
  });
});

describe('business answers (error_code ≠ 0) come back as data', () => {
  it('client unknown: checkClient and listAccounts answer ok:false with ABS code and text', async () => {
    const { error_code, error_text } = ABS_SIM_ERRORS.CLIENT_NOT_FOUND;
    expect(await run('checkClient', S.clientUnknown)).toEqual({ ok: false, errorCode: error_code, errorText: error_text });
    expect(await run('listAccounts', S.clientUnknown)).toEqual({ ok: false, errorCode: error_code, errorText: error_text });
  });

  it('an unknown account: fetchStatement and fetchDisbursementLine answer ok:false (code 3)', async () => {
    const unknownIban = 'KZ86125KZT5004100100';
    const notFound = { ok: false, errorCode: 3, errorText: ABS_SIM_ERRORS.ACCOUNT_NOT_FOUND.error_text };
    expect(await run('fetchStatement', unknownIban, STATEMENT_DATE)).toEqual(notFound);
    expect(await run('fetchDisbursementLine', unknownIban, STATEMENT_DATE, 'KZT')).toEqual(notFound);
  });

  it('the businessError fault (code 99) on every JSON call', async () => {
    faults.set({ businessError: 1 });
    const refused = { ok: false, errorCode: 99, errorText: ABS_SIM_ERRORS.REFUSED.error_text };
    expect(await run('checkClient', S.ordinary)).toEqual(refused);
    expect(await run('listAccounts', S.ordinary)).toEqual(refused);
    expect(await run('fetchStatement', ordinaryLoan().iban, STATEMENT_DATE)).toEqual(refused);
  });
});

describe('malformed answers become non-retryable ApplicationFailures naming the call and the field', () => {
  it('a required field missing (malformedKind 2)', async () => {
    faults.set({ malformed: 1, malformedKind: 2 });
    expectPermanent(await rejection(run('checkClient', S.ordinary)), 'ABS client info', 'fullname', 'missing');
    expectPermanent(await rejection(run('listAccounts', S.ordinary)), 'ABS accounts', 'ibans[', '].cur', 'missing');
    expectPermanent(await rejection(run('fetchStatement', ordinaryLoan().iban, STATEMENT_DATE)), 'ABS statement', 'stmt[0].amount', 'missing');
    expectPermanent(await rejection(run('fetchDisbursementLine', ordinaryLoan().iban, STATEMENT_DATE, 'KZT')), 'ABS statement', 'stmt[0].amount', 'missing');
  });

  it('truncated JSON (malformedKind 1)', async () => {
    faults.set({ malformed: 1, malformedKind: 1 });
    expectPermanent(await rejection(run('checkClient', S.ordinary)), 'ABS client info', 'not valid JSON');
    expectPermanent(await rejection(run('listAccounts', S.ordinary)), 'ABS accounts', 'not valid JSON');
  });

  it('a wrong content type (malformedKind 3), and an HTML page instead of the scan', async () => {
    faults.set({ malformed: 1, malformedKind: 3 });
    expectPermanent(await rejection(run('fetchStatement', ordinaryLoan().iban, STATEMENT_DATE)), 'ABS statement', 'content type', 'text/html');
    expectPermanent(await rejection(run('fetchScan', scanInput())), 'ABS loan-agreement scan', 'content type', 'text/html');
    expect(storedFiles()).toEqual([]);
  });
});

describe('transient trouble is thrown as a retryable error', () => {
  it.each([
    ['HTTP 5xx', { http5xx: 1 }, /HTTP 50[023]/],
    ['HTTP 429', { http429: 1 }, /HTTP 429/],
    ['no answer (timeout)', { timeout: 1 }, new RegExp(`no (answer|data) within ${TIMEOUT_MS} ms`)],
  ])('%s', async (_label, fault, message) => {
    faults.set(fault);
    const cases: Array<[string, Promise<unknown>]> = [
      ['client', run('checkClient', S.ordinary)],
      ['accounts', run('listAccounts', S.ordinary)],
      ['statement', run('fetchStatement', ordinaryLoan().iban, STATEMENT_DATE)],
      ['statement', run('fetchDisbursementLine', ordinaryLoan().iban, STATEMENT_DATE, 'KZT')],
      ['scan', run('fetchScan', scanInput())],
    ];
    for (const [call, p] of cases) {
      const err = await rejection(p);
      expectRetryable(err, call);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('latency within the timeout is not a fault', async () => {
    faults.set({ latencyMs: 100 });
    expect(await run('checkClient', S.ordinary)).toMatchObject({ ok: true });
  });
});

describe('the loan-agreement scan', () => {
  it('is {found:false} when ABS has none (404)', async () => {
    expect(await run('fetchScan', scanInput({ iinbin: S.scanMissing, caseId: 'case-missing/run' }))).toEqual({ found: false });
    faults.set({ scanMissing: 1 });
    expect(await run('fetchScan', scanInput())).toEqual({ found: false });
    expect(await documents.listForCase('case-missing/run')).toEqual([]);
  });

  it.each([
    ['a PDF with an RFC 5987 Cyrillic name', S.ordinary, 'application/pdf', 'Скан ДБЗ KD0000000002.pdf'],
    ['a TIFF', S.scanTiff, 'image/tiff', 'Скан ДБЗ KD0000000002.tif'],
    ['a raw UTF-8 plain file name', S.scanPlainFileName, 'application/pdf', 'Скан ДБЗ KD0000000002.pdf'],
  ])('is streamed into the document store once: %s', async (_label, iinbin, mediaType, fileName) => {
    const input = scanInput({ iinbin, caseId: `case-${iinbin}/run-1`, dbzNum: 'KD0000000002' });
    const first = await run('fetchScan', input);
    if (!first.found) throw new Error('expected the scan');
    expect(first.ref).toMatchObject({ mediaType, fileName });

    // The file is there under its hash, and its bytes have that hash and size.
    const file = path.join(dir, first.ref.sha256.slice(0, 2), first.ref.sha256.slice(2, 4), first.ref.sha256);
    const bytes = fs.readFileSync(file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(first.ref.sha256);
    expect(bytes.length).toBe(first.ref.size);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe(mediaType === 'application/pdf' ? '%PDF' : 'II*\0');
    // The bytes are exactly what ABS sends (the simulator is deterministic).
    const direct = await fetch(`${base}${ABS_SIM_PATHS.scan}?dbz_num=${input.dbzNum}&dbz_dt=${input.dbzDate}&iinbin=${iinbin}`);
    expect(Buffer.from(await direct.arrayBuffer()).equals(bytes)).toBe(true);

    // A second fetch (a retried activity) stores nothing new.
    const filesBefore = storedFiles();
    const second = await run('fetchScan', input);
    expect(second).toEqual(first);
    expect(storedFiles()).toEqual(filesBefore);
    expect(await documents.listForCase(input.caseId)).toHaveLength(1);
    expect(Number((await db('document_contents').where({ sha256: first.ref.sha256 }).count({ n: '*' }))[0].n)).toBe(1);
    expect(fs.readdirSync(path.join(dir, '.tmp'))).toEqual([]);
  });

  it('heartbeats while storing', async () => {
    const env = new MockActivityEnvironment({ activityType: 'fetchScan' }, { logger: quiet });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const result = await env.run(acts.fetchScan, scanInput({ caseId: 'case-heartbeat/run' }));
    expect(result).toMatchObject({ found: true });
    expect(beats.length).toBeGreaterThanOrEqual(1);
  });
});

describe('a cancelled activity aborts its HTTP call', () => {
  /** A tiny ABS whose scan sends its first chunk at once and the rest only 8 s later (long after the test cancels). */
  async function slowScanServer() {
    let firstChunk!: () => void;
    let ended!: (v: { finished: boolean }) => void;
    const firstChunkSent = new Promise<void>((r) => (firstChunk = r));
    /** Resolves when the response is over: finished true when the whole body went out. */
    const responseEnded = new Promise<{ finished: boolean }>((r) => (ended = r));
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="dbz.pdf"', 'content-length': String(2 * 65536) });
      res.on('close', () => ended({ finished: res.writableFinished }));
      res.write(Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(65536 - 9, 0x20)]), () => firstChunk());
      // Without the abort, the rest arrives and the whole scan would be stored.
      const rest = setTimeout(() => res.end(Buffer.alloc(65536, 0x20)), 8_000);
      req.on('close', () => clearTimeout(rest));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/scan`,
      firstChunkSent,
      responseEnded,
      close: () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    };
  }

  it('fetchScan cancelled mid-download: the server sees the connection closed before the body finished, nothing is stored', async () => {
    const slow = await slowScanServer();
    try {
      // The client's own idle timeout is far away: only the cancellation can end the download early.
      const slowAbs = createAbsClient({ clientUrl: slow.url, accountsUrl: slow.url, statementUrl: slow.url, scanUrl: slow.url, timeoutMs: 60_000 });
      const slowActs = createActivities({ db, abs: slowAbs, eko: {} as EkoClient, documents });
      const caseId = 'case-cancelled/run-1';
      const filesBefore = storedFiles();
      const env = new MockActivityEnvironment({ activityType: 'fetchScan' }, { logger: quiet });
      const outcome = env.run(slowActs.fetchScan, scanInput({ caseId })).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await slow.firstChunkSent;
      env.cancel();
      expect(await slow.responseEnded).toEqual({ finished: false });
      expect(await outcome).toEqual({ error: expect.any(CancelledFailure) });
      expect(await documents.listForCase(caseId)).toEqual([]);
      expect(storedFiles()).toEqual(filesBefore);
      const tmp = path.join(dir, '.tmp');
      expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
    } finally {
      await slow.close();
    }
  });
});

/**
 * The case activities' failure types (domain/failures.ts) for EKO and K2's own database and
 * document store, each run inside MockActivityEnvironment against real servers: the EKO simulator,
 * small local HTTP servers, a real SQLite database, and a PostgreSQL address nobody listens on.
 * The ABS mappings are in abs-activities.test.ts.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type CaseActivities } from '../../activities';
import { createDb, type Db } from '../../db';
import { createAbsClient, type AbsClient } from '../../integrations/abs';
import { createEkoClient, type EkoClient } from '../../integrations/eko';
import { createDocumentStore, type DocumentStore } from '../../documents/store';
import { computeCheckDigit } from '../../domain/iin';
import { kzIbanCheckDigits } from '../../domain/iban';
import { createLogger } from '../../observability/logger';
import { ABS_SCENARIO_IINS as S, ABS_SIM_PATHS, createAbsSimulator, type AbsSimulator } from '../../simulators/abs/server';
import { createEkoSimulator, EKO_DEMAND_PATH, type EkoSimulator } from '../../simulators/eko/server';
import { Faults } from '../../simulators/faults';
import { testDatabases } from '../helpers/databases';

const quiet = new DefaultLogger('ERROR');
const sqlite = testDatabases()[0];

const first11 = '85021030189';
const IIN = first11 + String(computeCheckDigit(first11));
const bban = '7220000000001234';
const IBAN = `KZ${kzIbanCheckDigits(bban)}${bban}`;
const NAME = 'Иванов Иван Иванович';

function run<K extends keyof CaseActivities>(
  acts: CaseActivities,
  name: K,
  ...args: Parameters<CaseActivities[K]>
): Promise<Awaited<ReturnType<CaseActivities[K]>>> {
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

function expectFailure(err: unknown, type: string, retryable: boolean, ...parts: string[]): ApplicationFailure {
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect({ type: f.type, nonRetryable: f.nonRetryable }).toEqual({ type, nonRetryable: !retryable });
  for (const p of parts) expect(f.message).toContain(p);
  return f;
}

function expectNoPersonalData(err: unknown): void {
  const text = `${(err as Error).message} ${JSON.stringify((err as ApplicationFailure).details ?? null)}`;
  for (const secret of [IIN, IBAN, NAME, 'Иванов']) expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
}

/** A local HTTP server answering every request with `handler`; closed by the returned function. */
async function tinyServer(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const absAt = (url: string): AbsClient => createAbsClient({ clientUrl: url, accountsUrl: url, statementUrl: url, scanUrl: url, timeoutMs: 2_000 });
/** A PostgreSQL K2 database nobody listens on (port 1): every statement fails with ECONNREFUSED. */
const unreachableDb = (): Db => createDb({ client: 'pg', url: 'postgres://k2:k2@127.0.0.1:1/k2' });

// knex prints every failed connection attempt of the unreachable database with console.log.
let consoleLog: jest.SpyInstance;
beforeEach(() => {
  consoleLog = jest.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterEach(() => consoleLog.mockRestore());

let db: Db;
let dir: string;
let documents: DocumentStore;
let faults: Faults;
let eko: EkoSimulator;
let ekoClient: EkoClient;

const newDemand = (caseId: string) => ({
  caseId,
  workflowId: `case-${caseId}`,
  contractNumber: `KD${caseId.replace(/\D/g, '').padStart(10, '0')}`,
  amount: '2000000.00',
  currency: 'KZT',
  iban: IBAN,
  iinbin: IIN,
  evidence: [{ sha256: 'a'.repeat(64), size: 10, mediaType: 'application/pdf', fileName: 'dbz.pdf' }],
});

beforeAll(async () => {
  db = await sqlite.open();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-case-acts-'));
  documents = createDocumentStore({ db, dir });
  faults = new Faults('eko');
  eko = createEkoSimulator({ faults, statusDelayMs: 60_000, k2BaseUrl: 'http://127.0.0.1:1', logger: createLogger('eko-sim', 'error', {}, () => undefined) });
  const port = await eko.listen(0);
  ekoClient = createEkoClient({ demandUrl: `http://127.0.0.1:${port}${EKO_DEMAND_PATH}`, timeoutMs: 2_000 });
});

afterEach(() => faults.reset());

afterAll(async () => {
  await eko.close();
  await sqlite.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sendDemand', () => {
  const acts = () => createActivities({ db, abs: {} as AbsClient, eko: ekoClient, documents });

  it('hands the demand to EKO and marks it sent', async () => {
    const reference = await run(acts(), 'issueDemand', newDemand('c-1001'));
    await run(acts(), 'sendDemand', reference);
    expect(eko.demand(reference)?.demand).toMatchObject({ reference, iinbin: IIN, amount: '2000000.00' });
    expect(await db('payment_demands').where({ reference }).first('status')).toEqual({ status: 'sent' });
  });

  it('EKO away (5xx): EkoUnavailable, retryable; the retry after a lost answer is the same demand at EKO', async () => {
    const reference = await run(acts(), 'issueDemand', newDemand('c-1002'));
    faults.set({ http5xx: 1 });
    expectFailure(await rejection(run(acts(), 'sendDemand', reference)), 'EkoUnavailable', true, 'EKO payment demand', 'HTTP 503');
    faults.reset();
    faults.set({ http5xxAfterAccept: 1 });
    expectFailure(await rejection(run(acts(), 'sendDemand', reference)), 'EkoUnavailable', true);
    faults.reset();
    await run(acts(), 'sendDemand', reference);
    expect(eko.demand(reference)?.repeats).toBe(1);
    expect(await db('payment_demands').where({ reference }).first('status')).toEqual({ status: 'sent' });
  });

  it('EKO refusing the demand: EkoRejected, not retryable', async () => {
    const reference = await run(acts(), 'issueDemand', newDemand('c-1003'));
    faults.set({ reject: 1 });
    expectFailure(await rejection(run(acts(), 'sendDemand', reference)), 'EkoRejected', false, 'EKO payment demand', 'code 2');
    expect(await db('payment_demands').where({ reference }).first('status')).toEqual({ status: 'issued' });
  });

  it("EKO's error text quoting personal data does not reach the failure", async () => {
    const server = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: 2, error_text: `client ${NAME} (${IIN}) has no account ${IBAN}` }));
    });
    try {
      const reference = await run(acts(), 'issueDemand', newDemand('c-1004'));
      const viaTiny = createActivities({ db, abs: {} as AbsClient, eko: createEkoClient({ demandUrl: server.url, timeoutMs: 2_000 }), documents });
      const err = await rejection(run(viaTiny, 'sendDemand', reference));
      expectFailure(err, 'EkoRejected', false, 'EKO payment demand', '<IIN/BIN>', '<IBAN>');
      expect((err as Error).message).not.toContain(IIN);
      expect((err as Error).message).not.toContain(IBAN);
    } finally {
      await server.close();
    }
  });

  it('a demand that is not in the database: K2DatabaseError, not retryable', async () => {
    expectFailure(await rejection(run(acts(), 'sendDemand', 'PTP99999999999')), 'K2DatabaseError', false, 'PTP99999999999 is not in the database');
  });

  it('cancelled while EKO is answering: the HTTP call is aborted and the cancellation is thrown', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((r) => (arrived = r));
    let closedEarly!: (v: boolean) => void;
    const closed = new Promise<boolean>((r) => (closedEarly = r));
    const server = await tinyServer((_req, res) => {
      res.on('close', () => closedEarly(!res.writableFinished));
      arrived();
      // Answers only after 10 s: long after the cancellation.
      const timer = setTimeout(() => res.end(JSON.stringify({ error_code: 0, error_text: '' })), 10_000);
      res.on('close', () => clearTimeout(timer));
    });
    try {
      const reference = await run(acts(), 'issueDemand', newDemand('c-1005'));
      const viaTiny = createActivities({ db, abs: {} as AbsClient, eko: createEkoClient({ demandUrl: server.url, timeoutMs: 20_000 }), documents });
      const env = new MockActivityEnvironment({ activityType: 'sendDemand' }, { logger: quiet });
      const outcome = rejection(env.run(viaTiny.sendDemand, reference));
      await requestArrived;
      env.cancel();
      expect(await closed).toBe(true);
      expect(await outcome).toBeInstanceOf(CancelledFailure);
      expect(await db('payment_demands').where({ reference }).first('status')).toEqual({ status: 'issued' });
    } finally {
      await server.close();
    }
  });
});

describe("K2's own database", () => {
  it('unreachable (PostgreSQL refuses the connection): K2DatabaseUnavailable, retryable, for issueDemand and sendDemand', async () => {
    const down = unreachableDb();
    try {
      const acts = createActivities({ db: down, abs: {} as AbsClient, eko: ekoClient, documents });
      expectFailure(await rejection(run(acts, 'issueDemand', newDemand('c-2001'))), 'K2DatabaseUnavailable', true, 'K2 database: issue payment demand');
      expectFailure(await rejection(run(acts, 'sendDemand', 'PTP00000000001')), 'K2DatabaseUnavailable', true, 'K2 database: find payment demand');
    } finally {
      await down.destroy();
    }
  });

  it('refusing the statement (no such table): K2DatabaseError, not retryable, without the loan data', async () => {
    const empty = await sqlite.open({ migrate: false });
    const acts = createActivities({ db: empty, abs: {} as AbsClient, eko: ekoClient, documents });
    const err = await rejection(run(acts, 'issueDemand', newDemand('c-2002')));
    expectFailure(err, 'K2DatabaseError', false, 'K2 database: issue payment demand');
    expectNoPersonalData(err);
  });
});

describe('fetchScan: the document store and the scan ABS sends', () => {
  let absSim: AbsSimulator;
  let abs: AbsClient;
  const scanInput = (caseId: string) => ({ caseId, dbzNum: 'KD0000000001', dbzDate: '2021-03-15', iinbin: S.ordinary });

  beforeAll(async () => {
    absSim = createAbsSimulator({ faults: new Faults('abs'), seed: 11 });
    const base = `http://127.0.0.1:${await absSim.listen(0)}`;
    abs = createAbsClient({
      clientUrl: base + ABS_SIM_PATHS.client,
      accountsUrl: base + ABS_SIM_PATHS.accounts,
      statementUrl: base + ABS_SIM_PATHS.statement,
      scanUrl: base + ABS_SIM_PATHS.scan,
      timeoutMs: 2_000,
    });
  });
  afterAll(() => absSim.close());

  it("the store's database unreachable: K2DatabaseUnavailable, retryable", async () => {
    const down = unreachableDb();
    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-case-acts-store-'));
    try {
      const acts = createActivities({ db, abs, eko: ekoClient, documents: createDocumentStore({ db: down, dir: storeDir }) });
      expectFailure(await rejection(run(acts, 'fetchScan', scanInput('case-s1/run'))), 'K2DatabaseUnavailable', true, 'K2 document store');
    } finally {
      await down.destroy();
      fs.rmSync(storeDir, { recursive: true, force: true });
    }
  });

  it("the store's database refusing the statement: K2DatabaseError, not retryable", async () => {
    const empty = await sqlite.open({ migrate: false });
    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-case-acts-store-'));
    try {
      const acts = createActivities({ db, abs, eko: ekoClient, documents: createDocumentStore({ db: empty, dir: storeDir }) });
      expectFailure(await rejection(run(acts, 'fetchScan', scanInput('case-s2/run'))), 'K2DatabaseError', false, 'K2 document store');
    } finally {
      fs.rmSync(storeDir, { recursive: true, force: true });
    }
  });

  it('an empty scan: AbsProtocolError (ABS sent something unusable), not a database failure', async () => {
    const server = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="dbz.pdf"' });
      res.end();
    });
    try {
      const acts = createActivities({ db, abs: absAt(server.url), eko: ekoClient, documents });
      expectFailure(await rejection(run(acts, 'fetchScan', scanInput('case-s3/run'))), 'AbsProtocolError', false, 'ABS loan-agreement scan', 'empty');
      expect(await documents.listForCase('case-s3/run')).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a body that breaks off: AbsUnavailable, retryable, nothing stored', async () => {
    const server = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': '100000' });
      res.write(Buffer.from('%PDF-1.4\n'));
      setTimeout(() => res.destroy(), 50);
    });
    try {
      const acts = createActivities({ db, abs: absAt(server.url), eko: ekoClient, documents });
      expectFailure(await rejection(run(acts, 'fetchScan', scanInput('case-s4/run'))), 'AbsUnavailable', true, 'ABS loan-agreement scan');
      expect(await documents.listForCase('case-s4/run')).toEqual([]);
      expect(fs.readdirSync(path.join(dir, '.tmp'))).toEqual([]);
    } finally {
      await server.close();
    }
  });
});

describe('ABS answers quoted in failures carry no personal data', () => {
  it("a business answer's error_text naming the client comes back masked", async () => {
    const server = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: 1, error_text: `клиент ${IIN} не найден, счёт ${IBAN}` }));
    });
    try {
      const acts = createActivities({ db, abs: absAt(server.url), eko: ekoClient, documents });
      const masked = { ok: false, errorCode: 1, errorText: 'клиент <IIN/BIN> не найден, счёт <IBAN>' };
      expect(await run(acts, 'checkClient', IIN)).toEqual(masked);
      expect(await run(acts, 'listAccounts', IIN)).toEqual(masked);
      expect(await run(acts, 'fetchStatement', IBAN, '2021-03-15')).toEqual(masked);
      expect(await run(acts, 'fetchDisbursementLine', IBAN, '2021-03-15', 'KZT')).toEqual(masked);
    } finally {
      await server.close();
    }
  });

  it('a body that is not JSON, starting with a name and an IIN', async () => {
    const server = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${NAME} ${IIN} ${IBAN}`);
    });
    try {
      const acts = createActivities({ db, abs: absAt(server.url), eko: ekoClient, documents });
      for (const p of [run(acts, 'checkClient', IIN), run(acts, 'listAccounts', IIN), run(acts, 'fetchDisbursementLine', IBAN, '2021-03-15', 'KZT')]) {
        const err = await rejection(p);
        expectFailure(err, 'AbsProtocolError', false, 'ABS ');
        expectNoPersonalData(err);
      }
    } finally {
      await server.close();
    }
  });
});

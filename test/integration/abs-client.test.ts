/**
 * The ABS client against the ABS simulator over real HTTP (ephemeral port): every call, the wire
 * dates, Cyrillic file names, the loan book, the scenario IINs, and every fault class with its
 * classification (transient / protocol / business answer).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbsProtocolError,
  AbsTransientError,
  createAbsClient,
  fileNameFromContentDisposition,
  isTransientAbsError,
  describeBody,
  formatAbsDate,
  scanTypeOf,
  type AbsClient,
  type AbsClientOptions,
  type AbsDateFormat,
  type AbsScan,
} from '../../integrations/abs';
import { ABS_SCENARIO_IINS as S, ABS_SIM_PATHS, createAbsSimulator, deriveClient, deriveLoanAccount, type AbsSimulator } from '../../simulators/abs/server';
import { Faults } from '../../simulators/faults';
import { generateBin, generateIin, generateLoan, mulberry32 } from '../../domain/generate';
import { isValidKzIban } from '../../domain/iban';
import { createDb, migrate, type Db } from '../../db';
import { createDocumentStore } from '../../documents/store';

const SEED = 7;
let faults: Faults;
let sim: AbsSimulator;
let base: string;
let clock = 1_000_000;

function urls(): Omit<AbsClientOptions, 'timeoutMs'> {
  return {
    clientUrl: base + ABS_SIM_PATHS.client,
    accountsUrl: base + ABS_SIM_PATHS.accounts,
    statementUrl: base + ABS_SIM_PATHS.statement,
    scanUrl: base + ABS_SIM_PATHS.scan,
  };
}

function makeClient(over: Partial<AbsClientOptions> = {}): AbsClient {
  return createAbsClient({ ...urls(), timeoutMs: 3000, ...over });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function found(scan: AbsScan): Promise<{ mediaType: string; fileName: string; bytes: Buffer; size?: number }> {
  if (!scan.found) throw new Error('expected the scan to be found');
  return { mediaType: scan.mediaType, fileName: scan.fileName, size: scan.size, bytes: await readAll(scan.body) };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function postJson(urlPath: string, body: unknown, method = 'POST'): Promise<{ status: number; json: any }> {
  const res = await fetch(base + urlPath, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  faults = new Faults('abs');
  sim = createAbsSimulator({ faults, seed: SEED, scanAfterRequests: 2, scanAfterMs: 60_000, now: () => clock });
  const port = await sim.listen(0);
  base = `http://127.0.0.1:${port}`;
});

afterEach(() => faults.reset());

afterAll(async () => {
  await sim.close();
});

describe('client info', () => {
  it('answers any valid IIN deterministically, as derived from the IIN', async () => {
    const abs = makeClient();
    const iin = generateIin(mulberry32(1));
    const first = await abs.getClient(iin);
    const second = await abs.getClient(iin);
    expect(first).toEqual(second);
    expect(first).toEqual({ ok: true, value: deriveClient(iin, SEED) });
    if (!first.ok) throw new Error('unreachable');
    expect(first.value.fullname).toMatch(/^[А-ЯЁа-яё]+ [А-ЯЁа-яё]+ [А-ЯЁа-яё]+$/);
    expect(first.value.sectecon).toBe(9);
    expect(first.value.residfl).toBe(1);
  });

  it('gives another simulator with the same seed the same world, another seed another one', async () => {
    const iin = S.ordinary;
    const other = createAbsSimulator({ faults: new Faults('abs'), seed: SEED });
    const port = await other.listen(0);
    try {
      const b = `http://127.0.0.1:${port}`;
      const twin = createAbsClient({
        clientUrl: b + ABS_SIM_PATHS.client,
        accountsUrl: b + ABS_SIM_PATHS.accounts,
        statementUrl: b + ABS_SIM_PATHS.statement,
        scanUrl: b + ABS_SIM_PATHS.scan,
        timeoutMs: 3000,
      });
      expect(await twin.getClient(iin)).toEqual(await makeClient().getClient(iin));
      expect(await twin.getAccounts(iin)).toEqual(await makeClient().getAccounts(iin));
    } finally {
      await other.close();
    }
    const names = new Set([0, 1, 2, 3, 4, 5].map((seed) => deriveClient(iin, seed).fullname));
    expect(names.size).toBeGreaterThan(1);
  });

  it('knows legal entities by their BIN', async () => {
    const bin = generateBin(mulberry32(3));
    const answer = await makeClient().getClient(bin);
    expect(answer.ok && answer.value.sectecon).toBe(7);
    expect(answer.ok && answer.value.fullname).toMatch(/^(ТОО|АО) «/);
  });

  it('answers an invalid IIN with a business error in Russian (returned, not thrown)', async () => {
    const answer = await makeClient().getClient('900101300008'); // wrong check digit
    expect(answer).toEqual({ ok: false, errorCode: 2, errorText: 'Некорректный ИИН/БИН' });
  });

  it('scenario: client unknown → error_code 1 for client and accounts', async () => {
    const abs = makeClient();
    expect(await abs.getClient(S.clientUnknown)).toEqual({ ok: false, errorCode: 1, errorText: expect.stringMatching(/не найден/) });
    expect(await abs.getAccounts(S.clientUnknown)).toMatchObject({ ok: false, errorCode: 1 });
    expect(await abs.getScan({ dbzNum: 'KD1', dbzDate: '2020-01-01', iinbin: S.clientUnknown })).toEqual({ found: false });
  });
});

describe('accounts and statement without a loan book', () => {
  it('lists the derived accounts, the loan account among them, with its disbursement line', async () => {
    const abs = makeClient();
    const iin = S.ordinary;
    const loanAccount = deriveLoanAccount(iin, SEED);
    const accounts = await abs.getAccounts(iin);
    if (!accounts.ok) throw new Error(accounts.errorText);
    expect(accounts.value.ibans.length).toBeGreaterThanOrEqual(2);
    for (const a of accounts.value.ibans) {
      expect(isValidKzIban(a.iban)).toBe(true);
      expect(a.cur).toMatch(/^[A-Z]{3}$/);
      expect(a.system).toBe('way4');
    }
    expect(accounts.value.ibans).toContainEqual(expect.objectContaining({ iban: loanAccount.iban, cur: loanAccount.cur, ps: '1417191' }));

    const statement = await abs.getStatement(loanAccount.iban, '2021-03-15');
    expect(statement).toEqual({
      ok: true,
      value: {
        stmt: [{ purpose: 'Предоставление кредита по договору', amount: loanAccount.amount, cur: loanAccount.cur, DC: 'D', out_bal: loanAccount.amount }],
      },
    });
    expect(loanAccount.amount).toMatch(/^\d+\.\d{2}$/);
  });

  it('answers an unknown account with error_code 3', async () => {
    const other = generateLoan(mulberry32(99)).iban; // valid IBAN, never registered
    expect(await makeClient().getStatement(other, '2021-03-15')).toEqual({ ok: false, errorCode: 3, errorText: 'Счет не найден' });
  });
});

describe('dates on the wire', () => {
  it('accepts YYYY.MM.DD from the caller and always sends YYYY-MM-DD', async () => {
    const seen: string[] = [];
    const recording: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const abs = makeClient({ fetch: recording });
    const { iban } = deriveLoanAccount(S.ordinary, SEED);
    expect((await abs.getStatement(iban, '2020.01.05')).ok).toBe(true);
    await found(await abs.getScan({ dbzNum: 'KD0000000001', dbzDate: '2020.01.05', iinbin: S.ordinary }));
    expect(new URL(seen[0]).searchParams.get('dt')).toBe('2020-01-05');
    expect(new URL(seen[1]).searchParams.get('dbz_dt')).toBe('2020-01-05');
  });

  it("sends YYYY.MM.DD when the client is configured so (the form of the specification's tables), from either input form", async () => {
    const seen: string[] = [];
    const recording: typeof fetch = (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    };
    const abs = makeClient({ fetch: recording, dateFormat: 'YYYY.MM.DD' });
    const { iban } = deriveLoanAccount(S.ordinary, SEED);
    // The simulator reads both forms, so the answers are the ordinary ones.
    expect((await abs.getStatement(iban, '2020-01-05')).ok).toBe(true);
    await found(await abs.getScan({ dbzNum: 'KD0000000001', dbzDate: '2020.01.05', iinbin: S.ordinary }));
    expect(new URL(seen[0]).searchParams.get('dt')).toBe('2020.01.05');
    expect(new URL(seen[1]).searchParams.get('dbz_dt')).toBe('2020.01.05');
  });

  it('formats a date for ABS in either form; refuses a format it does not know at start-up', () => {
    expect(formatAbsDate('2020.01.05', 'YYYY-MM-DD')).toBe('2020-01-05');
    expect(formatAbsDate('2020-01-05', 'YYYY.MM.DD')).toBe('2020.01.05');
    expect(formatAbsDate('2024.02.29', 'YYYY.MM.DD')).toBe('2024.02.29');
    expect(formatAbsDate('2023.02.29', 'YYYY.MM.DD')).toBeUndefined();
    expect(formatAbsDate('05.01.2020', 'YYYY-MM-DD')).toBeUndefined();
    expect(() => makeClient({ dateFormat: 'DD.MM.YYYY' as AbsDateFormat })).toThrow(/dateFormat must be one of YYYY-MM-DD, YYYY.MM.DD/);
  });

  it('refuses a date that is not a date before calling ABS (a programming error)', async () => {
    const abs = makeClient();
    await expect(abs.getStatement('KZ00', '2020-02-30')).rejects.toThrow(RangeError);
    await expect(abs.getScan({ dbzNum: 'KD1', dbzDate: '05.01.2020', iinbin: S.ordinary })).rejects.toThrow(RangeError);
  });

  it('the simulator reads both wire forms and answers a bad date with error_code 4', async () => {
    const { iban } = deriveLoanAccount(S.ordinary, SEED);
    for (const dt of ['2020-01-05', '2020.01.05']) {
      const res = await fetch(`${base}${ABS_SIM_PATHS.statement}?iban=${iban}&dt=${dt}`);
      expect(((await res.json()) as { error_code: number }).error_code).toBe(0);
    }
    const bad = await fetch(`${base}${ABS_SIM_PATHS.statement}?iban=${iban}&dt=2020-13-01`);
    expect(await bad.json()).toMatchObject({ error_code: 4, error_text: expect.stringMatching(/дата/) });
  });
});

describe('scan', () => {
  it('streams a real PDF mentioning the agreement, with a Cyrillic file name from filename*', async () => {
    const scan = await found(await makeClient().getScan({ dbzNum: 'KD0000000042', dbzDate: '2019-07-01', iinbin: S.ordinary }));
    expect(scan.mediaType).toBe('application/pdf');
    expect(scan.fileName).toBe('Скан ДБЗ KD0000000042.pdf');
    expect(scan.size).toBe(scan.bytes.length);
    const text = scan.bytes.toString('latin1');
    expect(text.startsWith('%PDF-1.4')).toBe(true);
    expect(text.trimEnd().endsWith('%%EOF')).toBe(true);
    expect(text).toContain('Agreement No. KD0000000042');
    // startxref points at the xref table: the offsets were computed in bytes.
    const startxref = Number(/startxref\n(\d+)/.exec(text)![1]);
    expect(text.slice(startxref, startxref + 4)).toBe('xref');
    // Deterministic: the same request gives the same bytes.
    const again = await found(await makeClient().getScan({ dbzNum: 'KD0000000042', dbzDate: '2019-07-01', iinbin: S.ordinary }));
    expect(again.bytes.equals(scan.bytes)).toBe(true);
  });

  it('scenario: raw UTF-8 in a plain filename="…" is read as UTF-8', async () => {
    const scan = await found(await makeClient().getScan({ dbzNum: 'KD7', dbzDate: '2019-07-01', iinbin: S.scanPlainFileName }));
    expect(scan.fileName).toBe('Скан ДБЗ KD7.pdf');
  });

  it('scenario: a TIFF scan', async () => {
    const scan = await found(await makeClient().getScan({ dbzNum: 'KD8', dbzDate: '2019-07-01', iinbin: S.scanTiff }));
    expect(scan.mediaType).toBe('image/tiff');
    expect(scan.fileName).toBe('Скан ДБЗ KD8.tif');
    expect(scan.bytes.subarray(0, 4)).toEqual(Buffer.from([0x49, 0x49, 42, 0]));
    expect(scan.bytes.toString('latin1')).toContain('Agreement No. KD8');
  });

  it('scenario: scan missing → found: false (404)', async () => {
    expect(await makeClient().getScan({ dbzNum: 'KD9', dbzDate: '2019-07-01', iinbin: S.scanMissing })).toEqual({ found: false });
  });

  it('scenario: the scan appears after N requests', async () => {
    const abs = makeClient();
    const req = { dbzNum: 'KD10', dbzDate: '2019-07-01', iinbin: S.scanAfterRequests };
    expect(await abs.getScan(req)).toEqual({ found: false });
    expect(await abs.getScan(req)).toEqual({ found: false });
    expect((await found(await abs.getScan(req))).mediaType).toBe('application/pdf');
  });

  it('scenario: the scan appears some time after it was first asked for', async () => {
    const abs = makeClient();
    const req = { dbzNum: 'KD11', dbzDate: '2019-07-01', iinbin: S.scanAfterTime };
    expect(await abs.getScan(req)).toEqual({ found: false });
    clock += 59_000;
    expect(await abs.getScan(req)).toEqual({ found: false });
    clock += 1_000;
    expect((await found(await abs.getScan(req))).mediaType).toBe('application/pdf');
  });

  it('streams into the document store: the stored bytes are the scan', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-abs-scan-'));
    const db: Db = createDb({ client: 'sqlite', url: path.join(dir, 'k2.sqlite') });
    try {
      await migrate(db);
      const store = createDocumentStore({ db, dir: path.join(dir, 'documents') });
      const req = { dbzNum: 'KD12', dbzDate: '2019-07-01', iinbin: S.ordinary };
      const scan = await makeClient().getScan(req);
      if (!scan.found) throw new Error('expected a scan');
      const ref = await store.put(scan.body, { caseId: 'case-KD12', kind: 'dbz-scan', mediaType: scan.mediaType, fileName: scan.fileName });
      const bytes = (await found(await makeClient().getScan(req))).bytes;
      expect(ref).toEqual({
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
        mediaType: 'application/pdf',
        fileName: 'Скан ДБЗ KD12.pdf',
      });
    } finally {
      await db.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loan book (POST /_sim/loans)', () => {
  afterEach(async () => {
    await postJson('/_sim/loans', undefined, 'DELETE');
  });

  it('makes the loans EKO sends findable: account, currency, statement, scan and name', async () => {
    const loan = generateLoan(mulberry32(5), { debt: 1234567.5, dbz_date: '2018.03.09' });
    const registered = await postJson('/_sim/loans', [loan]);
    expect(registered).toEqual({ status: 200, json: { registered: 1, total: 1 } });

    const abs = makeClient();
    const client = await abs.getClient(loan.iinbin);
    expect(client.ok && client.value.fullname).toBe(loan.fullname);
    const accounts = await abs.getAccounts(loan.iinbin);
    expect(accounts.ok && accounts.value.ibans).toContainEqual({ iban: loan.iban, accountName: loan.fullname, ps: '1417191', system: 'way4', cur: 'KZT' });
    const statement = await abs.getStatement(loan.iban, '2018-03-09');
    expect(statement).toEqual({
      ok: true,
      value: {
        stmt: [
          { purpose: `Предоставление кредита по договору № ${loan.dbz_contract_number}`, amount: '1234567.50', cur: 'KZT', DC: 'D', out_bal: '1234567.50' },
        ],
      },
    });
    const scan = await found(await abs.getScan({ dbzNum: loan.dbz_contract_number, dbzDate: '2018-03-09', iinbin: loan.iinbin }));
    expect(scan.bytes.toString('latin1')).toContain(`Agreement No. ${loan.dbz_contract_number}`);
    // ABS looks agreements up by number and date: another date finds nothing.
    expect(await abs.getScan({ dbzNum: loan.dbz_contract_number, dbzDate: '2018-03-10', iinbin: loan.iinbin })).toEqual({ found: false });
  });

  it('scenarios apply to registered loans: IBAN not among accounts, currency mismatch, no disbursement', async () => {
    const rand = mulberry32(6);
    const notAmong = generateLoan(rand, { iinbin: S.ibanNotAmongAccounts });
    const mismatch = generateLoan(rand, { iinbin: S.currencyMismatch, cur: 'KZT' });
    const noLine = generateLoan(rand, { iinbin: S.noDisbursement });
    expect((await postJson('/_sim/loans', [notAmong, mismatch, noLine])).status).toBe(200);
    const abs = makeClient();

    const a1 = await abs.getAccounts(S.ibanNotAmongAccounts);
    if (!a1.ok) throw new Error(a1.errorText);
    expect(a1.value.ibans.map((a) => a.iban)).not.toContain(notAmong.iban);
    expect(a1.value.ibans.map((a) => a.iban)).not.toContain(deriveLoanAccount(S.ibanNotAmongAccounts, SEED).iban);

    const a2 = await abs.getAccounts(S.currencyMismatch);
    expect(a2.ok && a2.value.ibans.find((a) => a.iban === mismatch.iban)?.cur).toBe('USD');

    expect(await abs.getStatement(noLine.iban, '2020-01-01')).toEqual({ ok: true, value: { stmt: [] } });
  });

  it('rejects a malformed loan book as a whole, naming index and field', async () => {
    const good = generateLoan(mulberry32(8));
    const bad = { ...generateLoan(mulberry32(9)), iban: 'KZ000000000000000000', dbz_date: '2020-02-30' };
    const answer = await postJson('/_sim/loans', [good, bad]);
    expect(answer.status).toBe(400);
    expect(answer.json.problems).toEqual(['[1].iban: expected a valid Kazakhstan IBAN', '[1].dbz_date: expected YYYY-MM-DD or YYYY.MM.DD']);
    expect((await postJson('/_sim/loans', { not: 'an array' })).status).toBe(400);
    expect(await fetch(`${base}/_sim/loans`).then((r) => r.json())).toEqual({ total: 0 });
  });
});

describe('faults and their classification', () => {
  const iin = S.ordinary;

  it('are set, read and reset over HTTP', async () => {
    expect(await postJson('/_sim/faults', { http5xx: 0.5, latencyMs: 10 })).toMatchObject({ status: 200, json: { faults: { http5xx: 0.5, latencyMs: 10 } } });
    expect(await fetch(`${base}/_sim/faults`).then((r) => r.json())).toMatchObject({ faults: { http5xx: 0.5, latencyMs: 10 } });
    expect((await postJson('/_sim/faults', { http5xx: 'often' })).status).toBe(400);
    expect((await postJson('/_sim/faults', { http5xxx: 1 })).status).toBe(400);
    expect(await postJson('/_sim/faults', undefined, 'DELETE')).toMatchObject({ status: 200, json: { faults: {} } });
    expect(await fetch(`${base}/health`).then((r) => r.json())).toEqual({ status: 'ok' });
  });

  it('http5xx → transient, with the status', async () => {
    faults.set({ http5xx: 1 });
    for (const call of [() => makeClient().getClient(iin), () => makeClient().getScan({ dbzNum: 'KD1', dbzDate: '2020-01-01', iinbin: iin })]) {
      const err = await rejection(call());
      expect(err).toBeInstanceOf(AbsTransientError);
      expect(isTransientAbsError(err)).toBe(true);
      expect((err as AbsTransientError).httpStatus).toBeGreaterThanOrEqual(500);
      expect(err.message).toMatch(/^ABS (client|scan): HTTP 50\d$/);
    }
  });

  it('http429 → transient, with Retry-After', async () => {
    faults.set({ http429: 1 });
    const err = (await rejection(makeClient().getAccounts(iin))) as AbsTransientError;
    expect(err).toBeInstanceOf(AbsTransientError);
    expect(err.httpStatus).toBe(429);
    expect(err.retryAfterMs).toBe(1000);
  });

  it('timeout → transient within the client timeout; the held request ends', async () => {
    faults.set({ timeout: 1 });
    const abs = makeClient({ timeoutMs: 300 });
    const started = Date.now();
    const err = await rejection(abs.getStatement(deriveLoanAccount(iin, SEED).iban, '2020-01-01'));
    expect(err).toBeInstanceOf(AbsTransientError);
    expect(err.message).toBe('ABS statement: no answer within 300 ms');
    const scanErr = await rejection(abs.getScan({ dbzNum: 'KD1', dbzDate: '2020-01-01', iinbin: iin }));
    expect(scanErr).toBeInstanceOf(AbsTransientError);
    expect(scanErr.message).toBe('ABS scan: no answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('latency below the timeout is only slow; above it, transient', async () => {
    faults.set({ latencyMs: 400 });
    expect((await makeClient({ timeoutMs: 3000 }).getClient(iin)).ok).toBe(true);
    expect(await rejection(makeClient({ timeoutMs: 150 }).getClient(iin))).toBeInstanceOf(AbsTransientError);
  });

  it('businessError → a business answer (error_code 99), returned not thrown', async () => {
    faults.set({ businessError: 1 });
    const abs = makeClient();
    expect(await abs.getClient(iin)).toEqual({ ok: false, errorCode: 99, errorText: 'Операция отклонена АБС' });
    expect(await abs.getAccounts(iin)).toMatchObject({ ok: false, errorCode: 99 });
    expect(await abs.getStatement(deriveLoanAccount(iin, SEED).iban, '2020-01-01')).toMatchObject({ ok: false, errorCode: 99 });
  });

  it('scanMissing → found: false', async () => {
    faults.set({ scanMissing: 1 });
    expect(await makeClient().getScan({ dbzNum: 'KD1', dbzDate: '2020-01-01', iinbin: iin })).toEqual({ found: false });
  });

  it('malformed: truncated JSON → protocol error', async () => {
    faults.set({ malformed: 1, malformedKind: 1 });
    const err = await rejection(makeClient().getClient(iin));
    expect(err).toBeInstanceOf(AbsProtocolError);
    expect(isTransientAbsError(err)).toBe(false);
    expect(err.message).toMatch(/^ABS client: answer is not valid JSON/);
  });

  it('malformed: a missing field → protocol error naming call and field', async () => {
    faults.set({ malformed: 1, malformedKind: 2 });
    const abs = makeClient();
    const accounts = await rejection(abs.getAccounts(iin));
    expect(accounts).toBeInstanceOf(AbsProtocolError);
    expect(accounts.message).toMatch(/^ABS accounts: ibans\[\d\]\.cur missing$/);
    expect((await rejection(abs.getClient(iin))).message).toBe('ABS client: fullname missing');
    expect((await rejection(abs.getStatement(deriveLoanAccount(iin, SEED).iban, '2020-01-01'))).message).toBe('ABS statement: stmt[0].amount missing');
    // On a business answer the field that goes missing is error_code itself.
    expect((await rejection(abs.getClient(S.clientUnknown))).message).toBe('ABS client: error_code missing');
  });

  it('malformed: an HTML page instead of JSON or a scan → protocol error saying what came', async () => {
    faults.set({ malformed: 1, malformedKind: 3 });
    const err = await rejection(makeClient().getAccounts(iin));
    expect(err).toBeInstanceOf(AbsProtocolError);
    expect(err.message).toMatch(
      /^ABS accounts: content type "text\/html" instead of application\/json, and the answer is not JSON either \(an HTML or XML page of \d+ bytes\)$/,
    );
    const scanErr = await rejection(makeClient().getScan({ dbzNum: 'KD1', dbzDate: '2020-01-01', iinbin: iin }));
    expect(scanErr).toBeInstanceOf(AbsProtocolError);
    expect(scanErr.message).toBe('ABS scan: not a PDF or TIFF scan by its first bytes (content type "text/html")');
  });

  it('an unexpected 4xx (a wrong URL) → protocol error', async () => {
    const err = (await rejection(makeClient({ clientUrl: `${base}/abs/nowhere` }).getClient(iin))) as AbsProtocolError;
    expect(err).toBeInstanceOf(AbsProtocolError);
    expect(err.httpStatus).toBe(404);
    expect(err.message).toBe('ABS client: unexpected HTTP 404');
  });

  it('nobody listening → transient network error', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const err = await rejection(makeClient({ clientUrl: `http://127.0.0.1:${port}/abs/client` }).getClient(iin));
    expect(err).toBeInstanceOf(AbsTransientError);
    expect(err.message).toBe('ABS client: network error (ECONNREFUSED)');
  });

  it("the caller's cancellation is passed through, not turned into an ABS error", async () => {
    faults.set({ timeout: 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('activity cancelled')), 50);
    const err = await rejection(makeClient().getClient(iin, { signal: controller.signal }));
    expect(err.message).toBe('activity cancelled');
    expect(isTransientAbsError(err)).toBe(false);
  });

  it('error messages carry neither the IIN nor the IBAN', async () => {
    faults.set({ malformed: 1, malformedKind: 2 });
    const { iban } = deriveLoanAccount(iin, SEED);
    const errors = [await rejection(makeClient().getAccounts(iin)), await rejection(makeClient().getStatement(iban, '2020-01-01'))];
    for (const e of errors) {
      expect(e.message).not.toContain(iin);
      expect(e.message).not.toContain(iban);
    }
  });
});

describe('Content-Disposition file names', () => {
  it.each([
    [`attachment; filename="DBZ.pdf"; filename*=UTF-8''%D0%98%D0%BC%D1%8F%D1%84%D0%B0%D0%B9%D0%BB%D0%B0.pdf`, 'Имяфайла.pdf'],
    [`attachment; filename*=utf-8'ru'%D0%A1%D0%BA%D0%B0%D0%BD%20%E2%84%96%201.pdf; filename="fallback.pdf"`, 'Скан № 1.pdf'],
    [Buffer.from('attachment; filename="Имяфайла.pdf"', 'utf8').toString('latin1'), 'Имяфайла.pdf'],
    ['attachment; filename="a \\"quoted\\" name; with semicolon.pdf"', 'a "quoted" name; with semicolon.pdf'],
    ['attachment; filename=plain.tif', 'plain.tif'],
    [`attachment; filename*=ISO-8859-1''caf%E9.pdf`, 'café.pdf'],
    ['attachment; filename="%D0%94%D0%91%D0%97.pdf"', 'ДБЗ.pdf'],
    ['attachment; filename="../../etc/passwd"', 'passwd'],
    ['attachment; filename*=UTF-8\'\'%E0%A4%A; filename="fallback.pdf"', 'fallback.pdf'],
    ['attachment', undefined],
  ])('%s → %s', (header, expected) => {
    expect(fileNameFromContentDisposition(header)).toBe(expected);
  });
});

describe('answers as they come, not as they are labelled (a tiny ABS over real HTTP)', () => {
  type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
  let handler: Handler;
  let tiny: http.Server;
  let tinyBase: string;
  const timers = new Set<NodeJS.Timeout>();
  const pdf = Buffer.from('%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n', 'latin1');
  const tiffBigEndian = Buffer.concat([Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]), Buffer.alloc(64, 0xab)]);
  const scanRequest = { dbzNum: 'KD0000000001', dbzDate: '2020-01-05', iinbin: S.ordinary };

  const tinyClient = (over: Partial<AbsClientOptions> = {}): AbsClient =>
    createAbsClient({
      clientUrl: `${tinyBase}/c`,
      accountsUrl: `${tinyBase}/a`,
      statementUrl: `${tinyBase}/s`,
      scanUrl: `${tinyBase}/d`,
      timeoutMs: 5000,
      ...over,
    });
  const serve =
    (status: number, headers: Record<string, string>, body: string | Buffer): Handler =>
    (_req, res) => {
      res.writeHead(status, headers);
      res.end(body);
    };

  beforeAll(async () => {
    tiny = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => tiny.listen(0, '127.0.0.1', resolve));
    tinyBase = `http://127.0.0.1:${(tiny.address() as net.AddressInfo).port}`;
  });
  afterEach(() => {
    for (const t of timers) clearInterval(t);
    timers.clear();
  });
  afterAll(async () => {
    // Only here: closing kept-alive connections between tests would fail the next request on a stale one.
    tiny.closeAllConnections();
    await new Promise<void>((resolve) => tiny.close(() => resolve()));
  });

  describe('JSON', () => {
    const clientAnswer = JSON.stringify({ error_code: 0, error_text: '', iinbin: S.ordinary, fullname: 'Тестов Тест Тестович', sectecon: 9, residfl: 1 });

    it.each(['text/plain', 'text/html;charset=utf-8', 'application/octet-stream'])('is read when it parses, also as %s', async (type) => {
      handler = serve(200, { 'content-type': type }, clientAnswer);
      expect(await tinyClient().getClient(S.ordinary)).toEqual({
        ok: true,
        value: { iinbin: S.ordinary, fullname: 'Тестов Тест Тестович', sectecon: 9, residfl: 1 },
      });
    });

    it('that does not parse under another content type: the error says what came, never what it said', async () => {
      handler = serve(200, { 'content-type': 'text/plain; charset=utf-8' }, `Клиент ${S.ordinary} не найден`);
      const err = await rejection(tinyClient().getClient(S.ordinary));
      expect(err).toBeInstanceOf(AbsProtocolError);
      expect(err.message).toMatch(
        /^ABS client: content type "text\/plain" instead of application\/json, and the answer is not JSON either \(\d+ bytes of text\)$/,
      );
      expect(err.message).not.toContain(S.ordinary);

      handler = serve(200, {}, '');
      expect((await rejection(tinyClient().getAccounts(S.ordinary))).message).toBe(
        'ABS accounts: content type "(none)" instead of application/json, and the answer is not JSON either (an empty body)',
      );
    });

    it('labelled JSON but broken: the message quotes none of the text (Node quotes an excerpt in its own message)', async () => {
      handler = serve(200, { 'content-type': 'application/json' }, `iinbin=${S.ordinary}&fullname=Тестов`);
      const err = await rejection(tinyClient().getClient(S.ordinary));
      expect(err).toBeInstanceOf(AbsProtocolError);
      expect(err.message).toMatch(/^ABS client: answer is not valid JSON \(Unexpected token.*; \d+ bytes of text\)$/);
      expect(err.message).not.toContain(S.ordinary);
      expect(err.message).not.toContain('Тестов');
    });

    it('describes a body without quoting it', () => {
      expect(describeBody('')).toBe('an empty body');
      expect(describeBody(' \n')).toBe('2 bytes of white space');
      expect(describeBody('  <!DOCTYPE html><p>Ошибка</p>')).toBe('an HTML or XML page of 36 bytes');
      expect(describeBody('Ошибка')).toBe('12 bytes of text');
    });
  });

  describe('scan', () => {
    it('tells PDF and TIFF (both byte orders) by their first bytes, and nothing else', () => {
      expect(scanTypeOf(Buffer.from('%PDF-1.7'))).toBe('application/pdf');
      expect(scanTypeOf(Buffer.from([0x49, 0x49, 0x2a, 0x00, 8]))).toBe('image/tiff');
      expect(scanTypeOf(Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0]))).toBe('image/tiff');
      for (const other of ['%PDF', '%PDF 1.4', '<html>', '', 'GIF89a', '\xff\xd8\xff\xe0']) expect(scanTypeOf(Buffer.from(other, 'latin1'))).toBeUndefined();
      expect(scanTypeOf(Buffer.from([0x49, 0x49, 0x00, 0x2a]))).toBeUndefined(); // little-endian mark with big-endian 42
    });

    it('a PDF served as application/octet-stream without a file name is a PDF', async () => {
      handler = serve(200, { 'content-type': 'application/octet-stream' }, pdf);
      const scan = await found(await tinyClient().getScan(scanRequest));
      expect(scan).toEqual({ mediaType: 'application/pdf', fileName: 'dbz-2020-01-05.pdf', size: undefined, bytes: pdf });
    });

    it('the bytes win over a wrong header: a PDF labelled image/tiff, a TIFF labelled text/html', async () => {
      handler = serve(200, { 'content-type': 'image/tiff', 'content-disposition': 'attachment; filename="scan.pdf"' }, pdf);
      expect(await found(await tinyClient().getScan(scanRequest))).toMatchObject({ mediaType: 'application/pdf', fileName: 'scan.pdf', bytes: pdf });
      handler = serve(200, { 'content-type': 'text/html' }, tiffBigEndian);
      expect(await found(await tinyClient().getScan(scanRequest))).toMatchObject({
        mediaType: 'image/tiff',
        fileName: 'dbz-2020-01-05.tif',
        bytes: tiffBigEndian,
      });
    });

    it('bytes that are neither (whatever the header and the file name say): protocol error without personal data', async () => {
      handler = serve(
        200,
        { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="scan.pdf"' },
        `<html>Нет скана для ${S.ordinary}</html>`,
      );
      const err = await rejection(tinyClient().getScan(scanRequest));
      expect(err).toBeInstanceOf(AbsProtocolError);
      expect(err.message).toBe('ABS scan: not a PDF or TIFF scan by its first bytes (content type "application/octet-stream")');

      handler = serve(200, { 'content-type': 'application/pdf' }, '');
      const empty = await rejection(tinyClient().getScan(scanRequest));
      expect(empty).toBeInstanceOf(AbsProtocolError);
      expect(empty.message).toBe('ABS scan: the scan is empty (content type "application/pdf")');
    });

    it('is typed from its first bytes while the rest still streams (nothing is buffered)', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        // The signature split over two writes, then the rest only when the test says so.
        res.write(pdf.subarray(0, 2));
        setTimeout(() => res.write(pdf.subarray(2, 12)), 30);
        void released.then(() => res.end(pdf.subarray(12)));
      };
      const scan = await tinyClient().getScan(scanRequest);
      if (!scan.found) throw new Error('expected a scan');
      expect(scan.mediaType).toBe('application/pdf');
      release();
      expect(await readAll(scan.body)).toEqual(pdf);
    });

    it("a cancelled download aborts its HTTP request; the stream fails with the caller's reason, not an ABS error", async () => {
      let serverSawClose!: () => void;
      const closed = new Promise<void>((resolve) => (serverSawClose = resolve));
      handler = (req, res) => {
        res.writeHead(200, { 'content-type': 'application/pdf' });
        res.write(pdf);
        // A large scan that keeps coming.
        const t = setInterval(() => res.write(Buffer.alloc(16 * 1024, 0x20)), 10);
        timers.add(t);
        res.on('close', () => {
          clearInterval(t);
          serverSawClose();
        });
        req.resume();
      };
      const controller = new AbortController();
      const scan = await tinyClient().getScan(scanRequest, { signal: controller.signal });
      if (!scan.found) throw new Error('expected a scan');
      let received = 0;
      const reading = (async () => {
        for await (const chunk of scan.body) {
          received += chunk.length;
          if (received > 64 * 1024) controller.abort(new Error('local attempt timed out'));
        }
      })();
      const err = await rejection(reading);
      expect(err.message).toBe('local attempt timed out');
      expect(isTransientAbsError(err)).toBe(false);
      expect(err).not.toBeInstanceOf(AbsProtocolError);
      await closed; // the connection is gone: the download does not go on in the background
    });

    it("an abort while waiting for the answer, or before the call, is the caller's reason for every call", async () => {
      handler = () => undefined; // never answers
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled')), 50);
      const abs = tinyClient();
      const scanErr = await rejection(abs.getScan(scanRequest, { signal: controller.signal }));
      expect(scanErr.message).toBe('cancelled');
      expect(isTransientAbsError(scanErr)).toBe(false);
      for (const call of [
        () => abs.getClient(S.ordinary, { signal: controller.signal }),
        () => abs.getAccounts(S.ordinary, { signal: controller.signal }),
        () => abs.getStatement('KZ86125KZT5004100100', '2020-01-05', { signal: controller.signal }),
        () => abs.getScan(scanRequest, { signal: controller.signal }),
      ]) {
        const err = await rejection(call());
        expect(err.message).toBe('cancelled');
        expect(isTransientAbsError(err)).toBe(false);
      }
    });
  });
});

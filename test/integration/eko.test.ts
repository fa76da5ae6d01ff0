/**
 * EKO's side of K2 over real HTTP on ephemeral ports: the demand client against the EKO simulator,
 * and the simulator's status reports against a small fake K2 that records what arrives.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { generateLoans } from '../../domain/generate';
import { computeCheckDigit } from '../../domain/iin';
import { kzIbanCheckDigits } from '../../domain/iban';
import {
  createEkoClient,
  EKO_ERROR,
  EkoRejectedError,
  EkoTransientError,
  isTransientEkoError,
  validatePaymentDemand,
  type PaymentDemand,
} from '../../integrations/eko';
import { createLogger } from '../../observability/logger';
import { Faults } from '../../simulators/faults';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { createEkoSimulator, EKO_DEMAND_PATH, type EkoSimulator, type EkoSimulatorOptions } from '../../simulators/eko/server';

const STATUS_DELAY_MS = 20;
const quiet = createLogger('eko-test', 'error', {}, () => undefined);

// Valid generated data (never the seed's placeholders): an IIN with its check digit, a KZ IBAN with its check digits.
const first11 = '85021030189';
const IIN = first11 + String(computeCheckDigit(first11));
const bban = '7220000000001234';
const IBAN = `KZ${kzIbanCheckDigits(bban)}${bban}`;

let referenceCounter = 0;
function demandFor(overrides: Partial<PaymentDemand> = {}): PaymentDemand {
  referenceCounter++;
  return {
    reference: `PTP${String(70_000_000_000 + referenceCounter).padStart(11, '0')}`,
    contract_number: `KD${String(referenceCounter).padStart(10, '0')}`,
    iban: IBAN,
    amount: '2000000.00',
    currency: 'KZT',
    iinbin: IIN,
    evidence: [{ kind: 'dbz-scan', sha256: 'a'.repeat(64), mediaType: 'application/pdf', fileName: 'dbz.pdf' }],
    issued_at: '2026-11-22T10:00:00.000Z',
    ...overrides,
  };
}

// ---- a fake K2 that records every status it receives --------------------------------------------

interface Arrival {
  reference: string;
  status_code: string;
  at: number;
  authorization?: string;
}
type K2Reply = { http: number; body: unknown };
const arrivals: Arrival[] = [];
/** Bodies the fake ABS simulator and fake K2 loan service received (for the feeder). */
const absRegistrations: unknown[] = [];
const k2LoanBodies: unknown[] = [];
let k2LoanReplies: K2Reply[] = [];
/** Replies to use before falling back to "200, error_code 0" (one per request, in order). */
let k2Replies: K2Reply[] = [];
let k2Server: http.Server;
let k2BaseUrl: string;

function statusesOf(reference: string): string[] {
  return arrivals.filter((a) => a.reference === reference).map((a) => a.status_code);
}

beforeAll(async () => {
  const app = express();
  app.use(express.json());
  app.post('/restapi/services/k2req_status_from_eko', (req, res) => {
    arrivals.push({ reference: req.body.reference, status_code: req.body.status_code, at: Date.now(), authorization: req.get('authorization') });
    const reply = k2Replies.shift() ?? { http: 200, body: { error_text: '', error_code: 0 } };
    res.status(reply.http).json(reply.body);
  });
  // The same fake also plays the ABS simulator's registration endpoint and K2's loan service.
  app.post('/_sim/loans', (req, res) => {
    absRegistrations.push(req.body);
    res.json({ registered: Array.isArray(req.body) ? req.body.length : 0 });
  });
  app.post('/restapi/services/k2loan_from_eko', (req, res) => {
    k2LoanBodies.push(req.body);
    const reply = k2LoanReplies.shift() ?? { http: 200, body: { error_text: '', error_code: 0 } };
    res.status(reply.http).json(reply.body);
  });
  k2Server = http.createServer(app);
  await new Promise<void>((r) => k2Server.listen(0, '127.0.0.1', r));
  k2BaseUrl = `http://127.0.0.1:${(k2Server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => {
    k2Server.close(() => r());
    k2Server.closeAllConnections();
  });
});

// ---- one simulator per test ----------------------------------------------------------------------

let sim: EkoSimulator;
let faults: Faults;
let ekoUrl: string;

async function startSimulator(overrides: Partial<EkoSimulatorOptions> = {}): Promise<void> {
  faults = new Faults('eko');
  sim = createEkoSimulator({
    faults,
    statusDelayMs: STATUS_DELAY_MS,
    k2BaseUrl,
    k2AuthHeader: 'Bearer test-token-for-k2',
    logger: quiet,
    k2Retry: { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 40 },
    ...overrides,
  });
  const port = await sim.listen(0);
  ekoUrl = `http://127.0.0.1:${port}`;
}

const client = () => createEkoClient({ demandUrl: `${ekoUrl}${EKO_DEMAND_PATH}`, timeoutMs: 2_000 });

beforeEach(async () => {
  arrivals.length = 0;
  k2Replies = [];
  await startSimulator();
});

afterEach(async () => {
  await sim.close();
});

/** Answers are checked field by field in the tests, so they are read loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (res: Response): Promise<any> => res.json();

async function captureError(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to fail');
}

describe('the demand validator', () => {
  it('accepts a well-formed demand and names every wrong field', () => {
    expect(validatePaymentDemand(demandFor()).ok).toBe(true);
    const bad = validatePaymentDemand({
      ...demandFor(),
      reference: 'PTP1',
      amount: 2000000,
      currency: 'kzt',
      evidence: [{ kind: 'dbz-scan', sha256: 'xyz', mediaType: 'pdf', fileName: '' }],
    });
    expect(bad.ok).toBe(false);
    const problems = bad.ok ? [] : bad.problems.join('\n');
    for (const field of ['reference', 'amount', 'currency', 'evidence[0].sha256', 'evidence[0].mediaType', 'evidence[0].fileName'])
      expect(problems).toContain(`${field}:`);
    expect(problems).not.toContain('iban:');
  });
});

describe('EKO client against the simulator', () => {
  it('sends a demand that EKO accepts and records', async () => {
    const demand = demandFor();
    await expect(client().sendDemand(demand)).resolves.toEqual({ error_code: 0, error_text: '' });
    const res = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}/${demand.reference}`);
    expect(res.status).toBe(200);
    const record = await json(res);
    expect(record.demand).toEqual(demand);
    expect(record.repeats).toBe(0);
  });

  it('treats a repeat of the same reference as harmless: answer 0, one status run', async () => {
    const demand = demandFor();
    await client().sendDemand(demand);
    await expect(client().sendDemand({ ...demand, issued_at: '2026-11-22T10:05:00.000Z' })).resolves.toEqual({ error_code: 0, error_text: '' });
    await sim.whenIdle();
    expect(sim.demand(demand.reference)?.repeats).toBe(1);
    expect(statusesOf(demand.reference)).toEqual(['PC1', 'PC3']);
  });

  it('rejects a reference reused for a different demand (permanent)', async () => {
    const demand = demandFor();
    await client().sendDemand(demand);
    const err = await captureError(client().sendDemand({ ...demand, amount: '1.00' }));
    expect(err).toBeInstanceOf(EkoRejectedError);
    expect((err as EkoRejectedError).code).toBe(EKO_ERROR.REFERENCE_CONFLICT);
    expect(isTransientEkoError(err)).toBe(false);
  });

  it('classifies EKO refusing a demand (error_code ≠ 0) as rejected, carrying code and text', async () => {
    faults.set({ reject: 1 });
    const err = await captureError(client().sendDemand(demandFor()));
    expect(err).toBeInstanceOf(EkoRejectedError);
    expect((err as EkoRejectedError).code).toBe(EKO_ERROR.REJECTED);
    expect((err as EkoRejectedError).text).toMatch(/rejected/);
    expect(isTransientEkoError(err)).toBe(false);
  });

  it('answers an invalid demand with error_code 1 naming the field; the client refuses to send one', async () => {
    const res = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...demandFor(), amount: '12.5' }),
    });
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error_code).toBe(EKO_ERROR.VALIDATION);
    expect(body.error_text).toMatch(/^amount: /);

    const err = await captureError(client().sendDemand({ ...demandFor(), iinbin: '000000000000' }));
    expect(err).toBeInstanceOf(EkoRejectedError);
    expect((err as EkoRejectedError).code).toBe(EKO_ERROR.VALIDATION);
    expect((err as EkoRejectedError).httpStatus).toBeUndefined();
  });

  it('refuses an Idempotency-Key that differs from the reference, and malformed JSON', async () => {
    const demand = demandFor();
    const wrongKey = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'PTP99999999999' },
      body: JSON.stringify(demand),
    });
    expect(wrongKey.status).toBe(400);
    expect((await json(wrongKey)).error_text).toMatch(/Idempotency-Key/);
    const malformed = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"reference":' });
    expect(malformed.status).toBe(400);
    expect(await json(malformed)).toEqual({ error_code: EKO_ERROR.VALIDATION, error_text: 'body: not valid JSON' });
  });

  it('classifies 5xx as transient', async () => {
    faults.set({ http5xx: 1 });
    const err = await captureError(client().sendDemand(demandFor()));
    expect(err).toBeInstanceOf(EkoTransientError);
    expect((err as EkoTransientError).httpStatus).toBe(503);
    expect(isTransientEkoError(err)).toBe(true);
  });

  it('classifies 429 as transient and other 4xx as rejected; sends the reference as Idempotency-Key', async () => {
    const app = express();
    let status = 429;
    const keys: Array<string | undefined> = [];
    app.post('/x', (req, res) => {
      keys.push(req.get('idempotency-key'));
      res.status(status).send('nope');
    });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      const c = createEkoClient({ demandUrl: url, timeoutMs: 2_000 });
      const demand = demandFor();
      expect(await captureError(c.sendDemand(demand))).toBeInstanceOf(EkoTransientError);
      expect(keys).toEqual([demand.reference]);
      status = 403;
      const err = await captureError(c.sendDemand(demandFor()));
      expect(err).toBeInstanceOf(EkoRejectedError);
      expect((err as EkoRejectedError).code).toBe(403);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });

  it('re-sends a demand with the same Idempotency-Key, its reference', async () => {
    const app = express();
    const keys: Array<string | undefined> = [];
    let replies = [503, 200];
    app.post('/x', (req, res) => {
      keys.push(req.get('idempotency-key'));
      const status = replies.shift() ?? 200;
      res.status(status).json({ error_code: status === 200 ? 0 : EKO_ERROR.UNAVAILABLE, error_text: '' });
    });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      const demand = demandFor();
      // Two clients: a retry may come from another worker process, after a restart.
      expect(await captureError(createEkoClient({ demandUrl: url, timeoutMs: 2_000 }).sendDemand(demand))).toBeInstanceOf(EkoTransientError);
      await expect(createEkoClient({ demandUrl: url, timeoutMs: 2_000 }).sendDemand({ ...demand, issued_at: '2026-11-22T10:05:00.000Z' })).resolves.toEqual({
        error_code: 0,
        error_text: '',
      });
      replies = [200];
      const other = demandFor();
      await createEkoClient({ demandUrl: url, timeoutMs: 2_000 }).sendDemand(other);
      expect(keys).toEqual([demand.reference, demand.reference, other.reference]);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });

  it("aborts the call when the caller's signal aborts, and throws the signal's reason (not EKO trouble)", async () => {
    faults.set({ latencyMs: 1_500 });
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const demand = demandFor();
    const pending = captureError(client().sendDemand(demand, { signal: controller.signal }));
    // The simulator holds the request; abort once it has arrived.
    await new Promise((r) => setTimeout(r, 200));
    controller.abort(reason);
    expect(await pending).toBe(reason);
  });

  it('does not quote a 4xx body that is not an EKO answer', async () => {
    const app = express();
    app.post('/x', (_req, res) => {
      res.status(403).send(`<html>forbidden for ${IIN} ${IBAN}</html>`);
    });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      const err = await captureError(createEkoClient({ demandUrl: url, timeoutMs: 2_000 }).sendDemand(demandFor()));
      expect(err).toBeInstanceOf(EkoRejectedError);
      expect((err as Error).message).toMatch(/HTTP 403/);
      expect((err as Error).message).not.toContain(IIN);
      expect((err as Error).message).not.toContain(IBAN);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });

  it('recovers from a lost answer: the retry of the same reference answers 0, still one status run', async () => {
    faults.set({ http5xxAfterAccept: 1 });
    const demand = demandFor();
    expect(isTransientEkoError(await captureError(client().sendDemand(demand)))).toBe(true);
    faults.reset();
    await expect(client().sendDemand(demand)).resolves.toEqual({ error_code: 0, error_text: '' });
    await sim.whenIdle();
    expect(statusesOf(demand.reference)).toEqual(['PC1', 'PC3']);
  });

  it('classifies a timeout and an unreachable EKO as transient', async () => {
    faults.set({ latencyMs: 500 });
    const slow = createEkoClient({ demandUrl: `${ekoUrl}${EKO_DEMAND_PATH}`, timeoutMs: 100 });
    const timeout = await captureError(slow.sendDemand(demandFor()));
    expect(timeout).toBeInstanceOf(EkoTransientError);
    expect((timeout as Error).message).toMatch(/did not answer within 100 ms/);

    // A port nobody listens on: take an ephemeral one and free it again.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const down = await captureError(
      createEkoClient({ demandUrl: `http://127.0.0.1:${deadPort}/eko/payment-demands`, timeoutMs: 1_000 }).sendDemand(demandFor()),
    );
    expect(down).toBeInstanceOf(EkoTransientError);
    expect((down as Error).message).toMatch(/unreachable/);
  });

  it('requires the configured Authorization when asked to', async () => {
    await sim.close();
    await startSimulator({ requiredAuthHeader: 'Basic azI6c2VjcmV0' });
    const err = await captureError(client().sendDemand(demandFor()));
    expect((err as EkoRejectedError).code).toBe(EKO_ERROR.UNAUTHORIZED);
    const authed = createEkoClient({ demandUrl: `${ekoUrl}${EKO_DEMAND_PATH}`, timeoutMs: 2_000, authHeader: 'Basic azI6c2VjcmV0' });
    await expect(authed.sendDemand(demandFor())).resolves.toEqual({ error_code: 0, error_text: '' });
  });
});

describe('EKO simulator reporting statuses to K2', () => {
  it('posts PC1, then PC3 one status delay later, with K2 credentials', async () => {
    const demand = demandFor();
    await client().sendDemand(demand);
    await sim.whenIdle();
    const mine = arrivals.filter((a) => a.reference === demand.reference);
    expect(mine.map((a) => a.status_code)).toEqual(['PC1', 'PC3']);
    expect(mine[1].at - mine[0].at).toBeGreaterThanOrEqual(STATUS_DELAY_MS - 5);
    expect(mine.every((a) => a.authorization === 'Bearer test-token-for-k2')).toBe(true);

    const record = await json(await fetch(`${ekoUrl}${EKO_DEMAND_PATH}/${demand.reference}`));
    expect(record.state).toBe('done');
    expect(record.sent.map((s: { status_code: string; outcome: string }) => `${s.status_code}:${s.outcome}`)).toEqual(['PC1:delivered', 'PC3:delivered']);
  });

  it('pc3BeforePc1 sends PC3 first; onlyPc1 stops after PC1', async () => {
    faults.set({ pc3BeforePc1: 1 });
    const reversed = demandFor();
    await client().sendDemand(reversed);
    faults.reset();
    faults.set({ onlyPc1: 1 });
    const short = demandFor();
    await client().sendDemand(short);
    await sim.whenIdle();
    expect(statusesOf(reversed.reference)).toEqual(['PC3', 'PC1']);
    expect(statusesOf(short.reference)).toEqual(['PC1']);
  });

  it('duplicateStatus sends each status twice', async () => {
    faults.set({ duplicateStatus: 1 });
    const demand = demandFor();
    await client().sendDemand(demand);
    await sim.whenIdle();
    expect(statusesOf(demand.reference)).toEqual(['PC1', 'PC1', 'PC3', 'PC3']);
  });

  it('follows a per-demand plan when one is given', async () => {
    await sim.close();
    await startSimulator({ planStatuses: (d) => (d.currency === 'USD' ? [] : ['PC1']) });
    const usd = demandFor({ currency: 'USD' });
    const kzt = demandFor();
    await client().sendDemand(usd);
    await client().sendDemand(kzt);
    await sim.whenIdle();
    expect(statusesOf(usd.reference)).toEqual([]);
    expect(statusesOf(kzt.reference)).toEqual(['PC1']);
  });

  it('retries with backoff while K2 answers 5xx or "temporarily unavailable"', async () => {
    k2Replies = [
      { http: 503, body: { error_text: 'the status could not be recorded; retry later', error_code: 7 } },
      { http: 500, body: 'oops' },
      { http: 200, body: { error_text: 'temporarily unavailable', error_code: 99 } },
    ];
    const demand = demandFor();
    await client().sendDemand(demand);
    await sim.whenIdle();
    expect(statusesOf(demand.reference)).toEqual(['PC1', 'PC1', 'PC1', 'PC1', 'PC3']);
    const record = sim.demand(demand.reference);
    expect(record?.sent.map((s) => [s.status_code, s.outcome, s.attempts])).toEqual([
      ['PC1', 'delivered', 4],
      ['PC3', 'delivered', 1],
    ]);
  });

  it('does not retry a permanent K2 refusal, and goes on with the next status', async () => {
    k2Replies = [{ http: 404, body: { error_text: 'no payment demand with this reference was issued', error_code: 4 } }];
    const demand = demandFor();
    await client().sendDemand(demand);
    await sim.whenIdle();
    expect(statusesOf(demand.reference)).toEqual(['PC1', 'PC3']);
    expect(sim.demand(demand.reference)?.sent.map((s) => s.outcome)).toEqual(['refused', 'delivered']);
  });

  it('gives up after bounded attempts when K2 stays down', async () => {
    await sim.close();
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await startSimulator({ k2BaseUrl: `http://127.0.0.1:${deadPort}`, k2Retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 10 } });
    const demand = demandFor();
    await client().sendDemand(demand);
    await sim.whenIdle();
    const record = sim.demand(demand.reference);
    expect(record?.state).toBe('gave_up');
    expect(record?.sent).toEqual([expect.objectContaining({ status_code: 'PC1', outcome: 'gave_up', attempts: 3 })]);
  });

  it('cancels pending status timers on close', async () => {
    await sim.close();
    await startSimulator({ statusDelayMs: 60_000 });
    const demand = demandFor();
    await client().sendDemand(demand);
    const started = Date.now();
    await sim.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(sim.demand(demand.reference)?.state).toBe('stopped');
    expect(statusesOf(demand.reference)).toEqual([]);
  });
});

describe('simulator control endpoints', () => {
  it('changes, shows and clears faults at run time; refuses unknown knobs', async () => {
    const post = await fetch(`${ekoUrl}/_sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ reject: 1, latencyMs: 5 }),
    });
    expect(post.status).toBe(200);
    expect((await json(await fetch(`${ekoUrl}/_sim/faults`))).faults).toEqual({ reject: 1, latencyMs: 5 });
    expect(isTransientEkoError(await captureError(client().sendDemand(demandFor())))).toBe(false);

    const unknown = await fetch(`${ekoUrl}/_sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ rejct: 1 }),
    });
    expect(unknown.status).toBe(400);

    const del = await fetch(`${ekoUrl}/_sim/faults`, { method: 'DELETE' });
    expect((await json(del)).faults).toEqual({});
    await expect(client().sendDemand(demandFor())).resolves.toEqual({ error_code: 0, error_text: '' });
  });

  it('answers /health and 404 for an unknown reference', async () => {
    expect((await json(await fetch(`${ekoUrl}/health`))).status).toBe('ok');
    const res = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}/PTP00000000000`);
    expect(res.status).toBe(404);
  });
});

describe('demo feeder', () => {
  beforeEach(() => {
    absRegistrations.length = 0;
    k2LoanBodies.length = 0;
    k2LoanReplies = [];
  });

  it('registers the loans with ABS, then waits for K2 to answer 0 and returns the contract numbers', async () => {
    k2LoanReplies = [{ http: 503, body: { error_text: 'starting; retry later', error_code: 7 } }];
    const contracts = await feedDemoLoans({ k2BaseUrl, absSimUrl: k2BaseUrl, count: 5, seed: 7, maxWaitMs: 5_000, logger: quiet });
    const expected = generateLoans(7, 5);
    expect(contracts).toEqual(expected.map((l) => l.contract_number));
    expect(absRegistrations).toEqual([expected]);
    expect(k2LoanBodies).toEqual([expected, expected]);
  });

  it('fails at once when K2 refuses the loans for good', async () => {
    k2LoanReplies = [{ http: 400, body: { error_text: '[0].iban: mod-97 check failed', error_code: 1 } }];
    await expect(feedDemoLoans({ k2BaseUrl, absSimUrl: k2BaseUrl, count: 2, seed: 7, maxWaitMs: 5_000, logger: quiet })).rejects.toThrow(/error_code 1/);
    expect(k2LoanBodies).toHaveLength(1);
  });
});

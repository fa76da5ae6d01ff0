/**
 * The EKO simulator's journal of demand POSTs and the ABS simulator's call counts (GET /_sim/journal),
 * over real HTTP on ephemeral ports: every outcome is recorded as it happened, and no personal data is.
 */
import { computeCheckDigit } from '../../domain/iin';
import { kzIbanCheckDigits } from '../../domain/iban';
import type { PaymentDemand } from '../../integrations/eko';
import { createLogger } from '../../observability/logger';
import { ABS_SCENARIO_IINS, createAbsSimulator, type AbsJournal, type AbsSimulator } from '../../simulators/abs/server';
import { createEkoSimulator, EKO_DEMAND_PATH, EKO_JOURNAL_PATH, type EkoSimulator } from '../../simulators/eko/server';
import type { DemandJournalEntry } from '../../simulators/eko/journal';
import { Faults } from '../../simulators/faults';

const quiet = createLogger('journal-test', 'error', {}, () => undefined);
const first11 = '92031540127';
const IIN = first11 + String(computeCheckDigit(first11));
const bban = '7220000000005678';
const IBAN = `KZ${kzIbanCheckDigits(bban)}${bban}`;

function demand(n: number, overrides: Partial<PaymentDemand> = {}): PaymentDemand {
  return {
    reference: `PTP${String(80_000_000_000 + n)}`,
    contract_number: `KD-JRN-${n}`,
    iban: IBAN,
    amount: '150000.00',
    currency: 'KZT',
    iinbin: IIN,
    evidence: [{ kind: 'dbz-scan', sha256: 'b'.repeat(64), mediaType: 'application/pdf', fileName: 'dbz.pdf' }],
    issued_at: '2026-03-02T10:00:00.000Z',
    ...overrides,
  };
}

describe('EKO simulator journal', () => {
  const faults = new Faults('eko');
  let eko: EkoSimulator;
  let base: string;

  beforeAll(async () => {
    // No statuses: the journal is about what EKO received, not what it reports.
    eko = createEkoSimulator({ faults, statusDelayMs: 10, k2BaseUrl: 'http://127.0.0.1:9', planStatuses: () => [], logger: quiet });
    base = `http://127.0.0.1:${await eko.listen(0)}`;
  });
  afterAll(() => eko.close());
  afterEach(() => faults.reset());

  const post = (body: unknown, key?: string) =>
    fetch(`${base}${EKO_DEMAND_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('every demand POST is journaled with its outcome, reference, contract and key, and nothing personal', async () => {
    const d1 = demand(1);
    expect((await post(d1, d1.reference)).status).toBe(200);
    expect((await post(d1, d1.reference)).status).toBe(200); // a repeat
    expect((await post({ ...d1, amount: '1.00' }, d1.reference)).status).toBe(409);
    faults.set({ http5xx: 1 });
    expect((await post(demand(2), demand(2).reference)).status).toBe(503);
    faults.set({ http5xx: 0, reject: 1 });
    expect((await post(demand(3), demand(3).reference)).status).toBe(200);
    faults.set({ reject: 0, http5xxAfterAccept: 1 });
    expect((await post(demand(4), demand(4).reference)).status).toBe(503);
    faults.reset();
    expect((await post({ ...demand(5), amount: 'a lot' })).status).toBe(400);
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ ...demand(6), episode: 'case-KD-JRN-6/run/episode-2' })).status).toBe(200);

    const res = await fetch(`${base}${EKO_JOURNAL_PATH}`);
    const text = await res.text();
    const { demands, dropped } = JSON.parse(text) as { demands: DemandJournalEntry[]; dropped: number };
    expect(dropped).toBe(0);
    expect(demands.map((d) => [d.reference, d.contract_number, d.outcome])).toEqual([
      [d1.reference, 'KD-JRN-1', 'accepted'],
      [d1.reference, 'KD-JRN-1', 'repeat'],
      [d1.reference, 'KD-JRN-1', 'conflict'],
      [demand(2).reference, 'KD-JRN-2', '5xx'],
      [demand(3).reference, 'KD-JRN-3', 'refused-by-fault'],
      [demand(4).reference, 'KD-JRN-4', 'accepted-then-5xx'],
      [demand(5).reference, 'KD-JRN-5', 'invalid'],
      [undefined, undefined, 'invalid'],
      [demand(6).reference, 'KD-JRN-6', 'accepted'],
    ]);
    expect(demands[0]).toEqual({
      reference: d1.reference,
      contract_number: 'KD-JRN-1',
      idempotency_key: d1.reference,
      outcome: 'accepted',
      received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(demands[8].episode).toBe('case-KD-JRN-6/run/episode-2');
    expect(eko.journal()).toEqual(demands);
    expect(text).not.toContain(IIN);
    expect(text).not.toContain(IBAN);
  });
});

describe('ABS simulator journal', () => {
  const faults = new Faults('abs');
  let abs: AbsSimulator;
  let base: string;

  beforeAll(async () => {
    abs = createAbsSimulator({ faults });
    base = `http://127.0.0.1:${await abs.listen(0)}`;
  });
  afterAll(() => abs.close());
  afterEach(() => faults.reset());

  const get = (path: string, timeoutMs = 5000) =>
    fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) }).then(
      (r) => r.status,
      () => 'no answer',
    );

  test('counts every ABS call per path and outcome; DELETE starts again', async () => {
    expect(await get(`/abs/client?iinbin=${ABS_SCENARIO_IINS.ordinary}`)).toBe(200);
    expect(await get(`/abs/client?iinbin=${ABS_SCENARIO_IINS.clientUnknown}`)).toBe(200); // error_code 1
    expect(await get(`/abs/dbz-scan?dbz_num=D1&dbz_dt=2020-01-01&iinbin=${ABS_SCENARIO_IINS.scanMissing}`)).toBe(404);
    faults.set({ http5xx: 1 });
    expect(await get(`/abs/accounts?iinbin=${ABS_SCENARIO_IINS.ordinary}`)).toBeGreaterThanOrEqual(500);
    faults.set({ http5xx: 0, http429: 1 });
    expect(await get(`/abs/accounts?iinbin=${ABS_SCENARIO_IINS.ordinary}`)).toBe(429);
    faults.set({ http429: 0, timeout: 1 });
    expect(await get(`/abs/client?iinbin=${ABS_SCENARIO_IINS.ordinary}`, 300)).toBe('no answer');
    faults.set({ timeout: 0, malformed: 1, malformedKind: 3 });
    expect(await get(`/abs/client?iinbin=${ABS_SCENARIO_IINS.ordinary}`)).toBe(200);
    faults.reset();

    const res = await fetch(`${base}/_sim/journal`);
    const journal = (await res.json()) as AbsJournal;
    expect(journal.calls).toEqual({
      '/abs/client': { ok: 1, 'business-error': 1, timeout: 1, malformed: 1 },
      '/abs/dbz-scan': { 'not-found': 1 },
      '/abs/accounts': { http5xx: 1, http429: 1 },
    });
    expect(journal.total).toBe(7);
    expect(JSON.stringify(journal)).not.toContain(ABS_SCENARIO_IINS.ordinary);

    await fetch(`${base}/_sim/journal`, { method: 'DELETE' });
    expect(await get(`/abs/client?iinbin=${ABS_SCENARIO_IINS.ordinary}`)).toBe(200);
    expect(abs.journal()).toMatchObject({ total: 1, calls: { '/abs/client': { ok: 1 } } });
  });
});

import fc from 'fast-check';
import {
  DEMAND_CLOCK_EPOCH_MS,
  DEMAND_STATUSES,
  demandClock,
  formatDemandReference,
  isDemandReference,
  isDemandStatusCode,
  nextDemandNumber,
  validateStatusUpdate,
} from '../../domain/demand-status';

describe('demand statuses and references', () => {
  it('names the two statuses of the seed', () => {
    expect(DEMAND_STATUSES).toEqual({ PC1: 'Принята банком', PC3: 'Принята в картотеку банка' });
    expect(isDemandStatusCode('PC1')).toBe(true);
    expect(isDemandStatusCode('PC2')).toBe(false);
    expect(isDemandStatusCode('toString')).toBe(false);
  });

  it.each([
    ['PTP00000000001', true],
    ['PTP99999999999', true],
    ['PTP0000000001', false],
    ['PTP000000000001', false],
    ['ptp00000000001', false],
    ['PTP0000000000a', false],
    [' PTP00000000001', false],
    ['PTP00000000001\n', false],
    [1, false],
  ])('isDemandReference(%j) = %s', (s, expected) => {
    expect(isDemandReference(s)).toBe(expected);
  });

  it('formats a number as PTP + 11 zero-padded digits', () => {
    expect(formatDemandReference(1)).toBe('PTP00000000001');
    expect(formatDemandReference(0)).toBe('PTP00000000000');
    expect(formatDemandReference(1234567)).toBe('PTP00001234567');
    expect(formatDemandReference(99999999999)).toBe('PTP99999999999');
  });

  it.each([100000000000, -1, 1.5, NaN, Infinity])('refuses %p', (n) => {
    expect(() => formatDemandReference(n)).toThrow(RangeError);
  });

  it('formatted references are references (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99999999999 }), (n) => {
        const reference = formatDemandReference(n);
        expect(isDemandReference(reference)).toBe(true);
        expect(Number(reference.slice(3))).toBe(n);
      }),
    );
  });
});

describe('validateStatusUpdate', () => {
  it('accepts the seed example and PC3', () => {
    expect(validateStatusUpdate({ reference: 'PTP00000000001', status_code: 'PC1' })).toEqual({ ok: true, reference: 'PTP00000000001', status: 'PC1' });
    expect(validateStatusUpdate({ reference: 'PTP00000000042', status_code: 'PC3', comment: 'ignored' })).toEqual({
      ok: true,
      reference: 'PTP00000000042',
      status: 'PC3',
    });
  });

  it('answers unknown-status for a well-formed code it does not know', () => {
    expect(validateStatusUpdate({ reference: 'PTP00000000001', status_code: 'PC9' })).toEqual({
      ok: false,
      kind: 'unknown-status',
      problems: [{ index: 0, field: 'status_code', reason: 'unknown status PC9; known: PC1, PC3' }],
    });
  });

  it.each<[unknown, { field: string; reason: string }[]]>([
    [null, [{ field: '', reason: 'must be a JSON object' }]],
    [[{ reference: 'PTP00000000001', status_code: 'PC1' }], [{ field: '', reason: 'must be a JSON object' }]],
    ['PC1', [{ field: '', reason: 'must be a JSON object' }]],
    [
      {},
      [
        { field: 'reference', reason: 'is required' },
        { field: 'status_code', reason: 'is required' },
      ],
    ],
    [{ reference: 'PTP1', status_code: 'PC1' }, [{ field: 'reference', reason: 'must be PTP followed by 11 digits' }]],
    [{ reference: 1, status_code: 'PC1' }, [{ field: 'reference', reason: 'must be PTP followed by 11 digits' }]],
    [{ reference: 'PTP00000000001', status_code: 'pc1' }, [{ field: 'status_code', reason: 'must be a status code like PC1' }]],
    [{ reference: 'PTP00000000001', status_code: 1 }, [{ field: 'status_code', reason: 'must be a status code like PC1' }]],
    [{ reference: 'PTP00000000001', status_code: null }, [{ field: 'status_code', reason: 'is required' }]],
    // A bad reference makes the request malformed even when the status is merely unknown.
    [
      { reference: 'x', status_code: 'PC9' },
      [
        { field: 'reference', reason: 'must be PTP followed by 11 digits' },
        { field: 'status_code', reason: 'unknown status PC9; known: PC1, PC3' },
      ],
    ],
  ])('rejects %j as a validation error', (body, problems) => {
    expect(validateStatusUpdate(body)).toEqual({ ok: false, kind: 'validation', problems: problems.map((p) => ({ index: 0, ...p })) });
  });

  it('never throws on arbitrary input; ok only for a reference and a known status (property)', () => {
    const body = fc.oneof(
      fc.record(
        {
          reference: fc.oneof(fc.string(), fc.stringMatching(/^PTP\d{11}$/), fc.jsonValue()),
          status_code: fc.oneof(fc.constantFrom('PC1', 'PC3', 'PC9', 'XX1'), fc.string(), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
      fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true }),
    );
    fc.assert(
      fc.property(body, (b) => {
        const result = validateStatusUpdate(b);
        if (result.ok) {
          expect(isDemandReference(result.reference)).toBe(true);
          expect(['PC1', 'PC3']).toContain(result.status);
        } else {
          expect(result.problems.length).toBeGreaterThan(0);
          expect(result.problems.every((p) => p.index === 0)).toBe(true);
          if (result.kind === 'unknown-status') expect(result.problems).toHaveLength(1);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('demand numbers: max(last + 1, the demand clock)', () => {
  const at = (iso: string) => new Date(iso);

  it('counts 10 ms steps since 2026-01-01T00:00Z, and 0 before', () => {
    expect(DEMAND_CLOCK_EPOCH_MS).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(demandClock(at('2026-01-01T00:00:00.000Z'))).toBe(0);
    expect(demandClock(at('2026-01-01T00:00:00.009Z'))).toBe(0);
    expect(demandClock(at('2026-01-01T00:00:00.010Z'))).toBe(1);
    expect(demandClock(at('2026-01-01T00:00:01Z'))).toBe(100);
    expect(demandClock(at('2026-12-01T00:00:00Z'))).toBe(334 * 86_400 * 100);
    expect(demandClock(at('2025-06-01T00:00:00Z'))).toBe(0);
    expect(() => demandClock(new Date('nonsense'))).toThrow(RangeError);
  });

  it('takes the clock when it is ahead of the counter, last + 1 otherwise', () => {
    const now = at('2026-12-01T00:00:00Z');
    const clock = demandClock(now);
    expect(nextDemandNumber(0, now)).toBe(clock);
    expect(nextDemandNumber(clock - 5, now)).toBe(clock);
    expect(nextDemandNumber(clock - 1, now)).toBe(clock);
    expect(nextDemandNumber(clock, now)).toBe(clock + 1); // two in the same 10 ms
    expect(nextDemandNumber(clock + 1000, now)).toBe(clock + 1001); // ahead of the clock: counts on
    // A clock set back before the epoch: the counter alone keeps the numbers unique.
    expect(nextDemandNumber(41, at('2020-01-01T00:00:00Z'))).toBe(42);
    expect(() => nextDemandNumber(-1, now)).toThrow(RangeError);
    expect(() => nextDemandNumber(1.5, now)).toThrow(RangeError);
  });

  it('lasts about 31 years: until September 2057, then refuses rather than wrap', () => {
    expect(formatDemandReference(nextDemandNumber(0, at('2057-09-01T00:00:00Z')))).toMatch(/^PTP\d{11}$/);
    expect(() => nextDemandNumber(0, at('2057-10-01T00:00:00Z'))).toThrow(/demand numbers are exhausted/);
    expect(() => nextDemandNumber(99_999_999_999, at('2026-12-01T00:00:00Z'))).toThrow(/demand numbers are exhausted/);
  });

  it('is strictly increasing for any sequence of times, also a clock that goes back (property)', () => {
    const times = fc.array(fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2040-01-01T00:00:00Z') }), { minLength: 1, maxLength: 50 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), times, (start, ms) => {
        let last = start;
        for (const t of ms) {
          const next = nextDemandNumber(last, new Date(t));
          expect(next).toBeGreaterThan(last);
          expect(next).toBeGreaterThanOrEqual(demandClock(new Date(t)));
          last = next;
        }
      }),
    );
  });

  it('gives references EKO reads as before: PTP + 11 digits', () => {
    const reference = formatDemandReference(nextDemandNumber(0, at('2026-12-01T09:30:00.123Z')));
    expect(reference).toBe('PTP02889180012');
    expect(isDemandReference(reference)).toBe(true);
    expect(validateStatusUpdate({ reference, status_code: 'PC1' })).toEqual({ ok: true, reference, status: 'PC1' });
  });
});

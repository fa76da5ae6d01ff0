import fc from 'fast-check';
import { DEMAND_STATUSES, formatDemandReference, isDemandReference, isDemandStatusCode, validateStatusUpdate } from '../../domain/demand-status';

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
    fc.assert(fc.property(fc.integer({ min: 0, max: 99999999999 }), (n) => {
      const reference = formatDemandReference(n);
      expect(isDemandReference(reference)).toBe(true);
      expect(Number(reference.slice(3))).toBe(n);
    }));
  });
});

describe('validateStatusUpdate', () => {
  it('accepts the seed example and PC3', () => {
    expect(validateStatusUpdate({ reference: 'PTP00000000001', status_code: 'PC1' })).toEqual({ ok: true, reference: 'PTP00000000001', status: 'PC1' });
    expect(validateStatusUpdate({ reference: 'PTP00000000042', status_code: 'PC3', comment: 'ignored' })).toEqual({ ok: true, reference: 'PTP00000000042', status: 'PC3' });
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
    [{}, [{ field: 'reference', reason: 'is required' }, { field: 'status_code', reason: 'is required' }]],
    [{ reference: 'PTP1', status_code: 'PC1' }, [{ field: 'reference', reason: 'must be PTP followed by 11 digits' }]],
    [{ reference: 1, status_code: 'PC1' }, [{ field: 'reference', reason: 'must be PTP followed by 11 digits' }]],
    [{ reference: 'PTP00000000001', status_code: 'pc1' }, [{ field: 'status_code', reason: 'must be a status code like PC1' }]],
    [{ reference: 'PTP00000000001', status_code: 1 }, [{ field: 'status_code', reason: 'must be a status code like PC1' }]],
    [{ reference: 'PTP00000000001', status_code: null }, [{ field: 'status_code', reason: 'is required' }]],
    // A bad reference makes the request malformed even when the status is merely unknown.
    [{ reference: 'x', status_code: 'PC9' }, [
      { field: 'reference', reason: 'must be PTP followed by 11 digits' },
      { field: 'status_code', reason: 'unknown status PC9; known: PC1, PC3' },
    ]],
  ])('rejects %j as a validation error', (body, problems) => {
    expect(validateStatusUpdate(body)).toEqual({ ok: false, kind: 'validation', problems: problems.map((p) => ({ index: 0, ...p })) });
  });

  it('never throws on arbitrary input; ok only for a reference and a known status (property)', () => {
    const body = fc.oneof(
      fc.record({ reference: fc.oneof(fc.string(), fc.stringMatching(/^PTP\d{11}$/), fc.jsonValue()), status_code: fc.oneof(fc.constantFrom('PC1', 'PC3', 'PC9', 'XX1'), fc.string(), fc.jsonValue()) }, { requiredKeys: [] }),
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

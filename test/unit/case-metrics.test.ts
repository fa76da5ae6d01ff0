/**
 * The pure parts of the case gauges (observability/case-metrics.ts): finding the oldest by counting,
 * and counting by value with or without GROUP BY.
 */
import fc from 'fast-check';
import { CASE_STAGES } from '../../domain/case';
import { ATTENTION_CODES } from '../../domain/case';
import { bracketOldest, countByValue, isRefusedQuery, oldestAgeSeconds, preciseEnough, type Bracket, type CountQuery } from '../../observability/case-metrics';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1, 12);

/** countBefore over fixed times, counting its calls. */
function counter(times: number[]) {
  const calls: number[] = [];
  const countBefore = async (t: number) => {
    calls.push(t);
    return times.filter((x) => x < t).length;
  };
  return { countBefore, calls };
}

describe('bracketOldest', () => {
  it('brackets the oldest time to 1% of its age (at least a second), and none when nothing is older than now', async () => {
    const oldest = NOW - 3 * DAY - 12_345;
    const { countBefore } = counter([NOW - 60_000, oldest, NOW - DAY]);
    const b = (await bracketOldest(countBefore, NOW))!;
    expect(b.lo <= oldest && oldest < b.hi).toBe(true);
    expect(preciseEnough(b, NOW)).toBe(true);
    expect(b.hi - b.lo).toBeLessThanOrEqual(0.01 * (NOW - b.lo));
    expect(await bracketOldest(counter([NOW + 5_000]).countBefore, NOW)).toBeUndefined();
    expect(await bracketOldest(counter([]).countBefore, NOW)).toBeUndefined();
  });

  it('holds for any set of times: the oldest lies in the bracket, which is precise enough', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 400 * DAY }), { minLength: 1, maxLength: 20 }), async (agesMs) => {
        const times = agesMs.map((a) => NOW - a);
        const b = (await bracketOldest(counter(times).countBefore, NOW))!;
        const oldest = Math.min(...times);
        expect(b.lo <= oldest && oldest < b.hi).toBe(true);
        expect(preciseEnough(b, NOW)).toBe(true);
      }),
    );
  });

  it('costs two counts when the previous bracket still holds, and searches again when it does not', async () => {
    const oldest = NOW - 5 * DAY;
    const first = counter([oldest, NOW - 1000]);
    const hint = (await bracketOldest(first.countBefore, NOW))!;
    expect(first.calls.length).toBeGreaterThan(6);

    const again = counter([oldest, NOW - 500]);
    expect(await bracketOldest(again.countBefore, NOW + 30_000, hint)).toEqual(hint);
    expect(again.calls).toEqual([hint.lo, hint.hi]);

    // The oldest left the stage: the hint fails, the next oldest is found.
    const next = NOW - 2 * DAY;
    const moved = counter([next]);
    const b = (await bracketOldest(moved.countBefore, NOW, hint))!;
    expect(b.lo <= next && next < b.hi).toBe(true);
  });

  it('reports the age as a lower bound from the earliest upper end; 0 without brackets', () => {
    const brackets: Array<Bracket | undefined> = [{ lo: NOW - 10_000, hi: NOW - 9_000 }, undefined, { lo: NOW - 4_000, hi: NOW - 3_000 }];
    expect(oldestAgeSeconds(NOW, brackets)).toBe(9);
    expect(oldestAgeSeconds(NOW, [undefined])).toBe(0);
  });
});

describe('countByValue', () => {
  const BASE = 'WorkflowType="caseWorkflow"';

  it('uses one GROUP BY count when the server can, with the rest as other', async () => {
    const queries: string[] = [];
    const count: CountQuery = async (q) => {
      queries.push(q);
      return {
        count: 9,
        groups: [
          { count: 4, groupValues: [['received']] },
          { count: 3, groupValues: [['closed']] },
          { count: 2, groupValues: [['some-new-stage']] },
        ],
      };
    };
    const grouping = { supported: true };
    const { byValue, other } = await countByValue(count, BASE, 'K2Stage', CASE_STAGES, grouping);
    expect(queries).toEqual([`${BASE} GROUP BY K2Stage`]);
    expect(Object.fromEntries(byValue)).toEqual({
      received: 4,
      'client-checked': 0,
      'account-checked': 0,
      'evidence-collected': 0,
      'demand-issued': 0,
      'reported-to-gkb': 0,
      closed: 3,
    });
    expect(other).toBe(2);
    expect(grouping.supported).toBe(true);
  });

  it('counts value by value once the server refused GROUP BY (SQL visibility), and remembers it', async () => {
    const queries: string[] = [];
    const refusal = Object.assign(new Error('Failed to count workflows'), {
      cause: Object.assign(new Error("'GROUP BY' clause is not supported"), { code: 3 }),
    });
    const count: CountQuery = async (q) => {
      queries.push(q);
      if (q.includes('GROUP BY')) throw refusal;
      if (q === BASE) return { count: 5, groups: [] };
      return { count: q.endsWith('K2AttentionReason="abs-unavailable"') ? 3 : 0, groups: [] };
    };
    const grouping = { supported: true };
    const first = await countByValue(count, BASE, 'K2AttentionReason', ATTENTION_CODES, grouping);
    expect(grouping.supported).toBe(false);
    expect(first.byValue.get('abs-unavailable')).toBe(3);
    expect(first.other).toBe(2);
    expect(queries.filter((q) => q.includes('GROUP BY'))).toHaveLength(1);
    queries.splice(0);
    await countByValue(count, BASE, 'K2AttentionReason', ATTENTION_CODES, grouping);
    expect(queries).toHaveLength(1 + ATTENTION_CODES.length);
    expect(queries.some((q) => q.includes('GROUP BY'))).toBe(false);
  });

  it('passes on an error that is not a refused query (visibility away)', async () => {
    const count: CountQuery = async () => Promise.reject(Object.assign(new Error('unavailable'), { code: 14 }));
    const grouping = { supported: true };
    await expect(countByValue(count, BASE, 'K2Stage', CASE_STAGES, grouping)).rejects.toThrow('unavailable');
    expect(grouping.supported).toBe(true);
    expect(isRefusedQuery({ cause: { code: 12 } })).toBe(true);
    expect(isRefusedQuery(new Error('x'))).toBe(false);
  });
});

describe('ATTENTION_CODES', () => {
  it('lists each code once (the compiler checks it against AttentionCode)', () => {
    expect(new Set(ATTENTION_CODES).size).toBe(ATTENTION_CODES.length);
    expect(ATTENTION_CODES).toEqual(expect.arrayContaining(['abs-unavailable', 'gkb-waiting', 'unclassified-failure']));
  });
});

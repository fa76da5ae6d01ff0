/**
 * The chaos run's fault timeline and load plan are pure functions of the seed and the options: the
 * same seed replays the same faults at the same moments and the same loans; every fault kind the
 * issue names is in every timeline, the short one included.
 */
import { planTimeline, missingFaultKinds, killsPerWorker, type ChaosTimeline } from '../../chaos/timeline';
import { planLoad } from '../../chaos/load';
import { parseArgs, SHORT } from '../../chaos/run';

const DEV = { workers: ['worker'], apis: ['api'], postgres: false };
const CLUSTER = { workers: ['worker-1', 'worker-2'], apis: ['api-1', 'api-2'], postgres: true };

describe('planTimeline', () => {
  test('the same seed and options give the same timeline; another seed another one', () => {
    const a = planTimeline({ seed: 42, durationMs: 600_000, short: false, ...CLUSTER });
    expect(planTimeline({ seed: 42, durationMs: 600_000, short: false, ...CLUSTER })).toEqual(a);
    expect(planTimeline({ seed: 43, durationMs: 600_000, short: false, ...CLUSTER }).events).not.toEqual(a.events);
  });

  test.each([
    ['dev, short', { ...DEV, short: true, durationMs: SHORT.durationMs }],
    ['dev, full', { ...DEV, short: false, durationMs: 600_000 }],
    ['cluster, short', { ...CLUSTER, short: true, durationMs: SHORT.durationMs }],
    ['cluster, full', { ...CLUSTER, short: false, durationMs: 600_000 }],
  ])('%s: every fault kind, each worker killed several times, all within the run and cleared at its end', (_name, o) => {
    for (const seed of [0, 1, 7, 42, 99_999]) {
      const t = planTimeline({ seed, ...o });
      expect(missingFaultKinds(t, o)).toEqual([]);
      for (const w of o.workers) expect(t.events.filter((e) => e.kind === 'kill-worker' && e.target === w)).toHaveLength(killsPerWorker(o.durationMs, o.short));
      expect(t.events.filter((e) => e.kind === 'restart-postgres')).toHaveLength(o.postgres ? 1 : 0);
      expect(t.events.filter((e) => e.kind === 'kill-api-mid-post')).toHaveLength(1);
      expect(t.events.map((e) => e.at)).toEqual([...t.events.map((e) => e.at)].sort((x, y) => x - y));
      for (const e of t.events) {
        expect(e.at).toBeGreaterThan(0);
        expect(e.at).toBeLessThanOrEqual(t.faultsEndMs);
      }
      expect(
        t.events
          .filter((e) => e.at === t.faultsEndMs && e.kind === 'clear-faults')
          .map((e) => (e as { system: string }).system)
          .sort(),
      ).toEqual(['abs', 'eko', 'gkb']);
    }
  });

  test('a worker is never killed again before it has been started again (with a few seconds to get ready)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const t: ChaosTimeline = planTimeline({ seed, durationMs: SHORT.durationMs, short: true, ...CLUSTER });
      for (const w of CLUSTER.workers) {
        const kills = t.events.filter((e): e is Extract<typeof e, { kind: 'kill-worker' }> => e.kind === 'kill-worker' && e.target === w);
        for (let i = 1; i < kills.length; i++) expect(kills[i].at - kills[i - 1].at).toBeGreaterThan(kills[i - 1].downMs + 5_000);
      }
    }
  });

  test('refuses what it cannot plan, saying why', () => {
    expect(() => planTimeline({ seed: -1, durationMs: 600_000, short: false, ...DEV })).toThrow('seed');
    expect(() => planTimeline({ seed: 1, durationMs: 1000, short: false, ...DEV })).toThrow('duration');
    expect(() => planTimeline({ seed: 1, durationMs: 600_000, short: false, workers: [], apis: ['api'], postgres: false })).toThrow('worker');
  });

  test('missingFaultKinds names what a timeline lacks', () => {
    const t = planTimeline({ seed: 5, durationMs: 600_000, short: false, ...CLUSTER });
    const without = {
      ...t,
      events: t.events.filter(
        (e) =>
          e.kind !== 'restart-postgres' &&
          !(e.kind === 'kill-worker' && e.target === 'worker-2') &&
          !(e.kind === 'set-faults' && 'recordRejectNextFiles' in e.knobs),
      ),
    };
    expect(missingFaultKinds(without, CLUSTER)).toEqual(['worker-2 killed at least twice', 'a PostgreSQL restart', 'gkb.recordRejectNextFiles']);
  });
});

describe('planLoad', () => {
  const apiKill = { at: 40_000, target: 'api-1', downMs: 5000 };

  test('the same seed gives the same loans at the same times', () => {
    expect(planLoad({ seed: 42, cases: 100, durationMs: 120_000, apiKill })).toEqual(planLoad({ seed: 42, cases: 100, durationMs: 120_000, apiKill }));
  });

  test('every loan is first sent as new, its later items come after, one contract once per POST; re-sends, repayments and returns to overdue happen', () => {
    const plan = planLoad({ seed: 7, cases: 400, durationMs: 600_000, apiKill });
    const items = plan.steps.flatMap((s) => s.items.map((i) => ({ ...i, at: s.at })));
    expect(new Set(items.filter((i) => i.kind === 'new' || i.kind === 'scenario').map((i) => i.loan.contract_number)).size).toBe(400);
    expect(plan.book).toHaveLength(395);
    for (const step of plan.steps) expect(new Set(step.items.map((i) => i.loan.contract_number)).size).toBe(step.items.length);
    const first = new Map<string, number>();
    for (const i of items) if (i.kind === 'new') first.set(i.loan.contract_number, i.at);
    for (const i of items) if (i.kind !== 'new' && i.kind !== 'scenario') expect(i.at).toBeGreaterThan(first.get(i.loan.contract_number)!);
    const count = (kind: string) => items.filter((i) => i.kind === kind).length;
    expect(count('resend')).toBeGreaterThan(50);
    expect(count('repay')).toBeGreaterThan(30);
    expect(count('reopen')).toBeGreaterThan(5);
    for (const i of items.filter((x) => x.kind === 'repay')) expect(i.loan.debt).toBe(0);
    for (const i of items.filter((x) => x.kind === 'reopen' || x.kind === 'resend')) expect(Number(i.loan.debt)).toBeGreaterThan(0);
    expect(Math.max(...plan.steps.map((s) => s.at))).toBeLessThanOrEqual(0.85 * 600_000 + 5000);
  });

  test('the large POST the API is killed under holds a quarter of the loans, at the kill', () => {
    const plan = planLoad({ seed: 3, cases: 100, durationMs: 120_000, apiKill });
    const large = plan.steps.filter((s) => s.killApi);
    expect(large).toHaveLength(1);
    expect(large[0]).toMatchObject({ at: 40_000, killApi: { target: 'api-1', downMs: 5000 } });
    expect(large[0].items).toHaveLength(24);
  });
});

describe('parseArgs', () => {
  test('the options of the issue, and the short run', () => {
    expect(parseArgs(['--cases', '400', '--duration', '10m', '--topology', 'cluster', '--seed', '42'])).toMatchObject({
      cases: 400,
      durationMs: 600_000,
      topology: 'cluster',
      seed: 42,
      short: false,
    });
    expect(parseArgs(['--short', '--seed=9'])).toMatchObject({ cases: SHORT.cases, durationMs: SHORT.durationMs, topology: 'dev', seed: 9, short: true });
  });

  test('a wrong argument is named', () => {
    expect(() => parseArgs(['--cases', 'many'])).toThrow('--cases: expected a whole number');
    expect(() => parseArgs(['--duration', '5'])).toThrow('--duration');
    expect(() => parseArgs(['--topology', 'k8s'])).toThrow('k8s');
    expect(() => parseArgs(['--fast'])).toThrow('unknown argument "--fast"');
  });
});

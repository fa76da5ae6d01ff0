/**
 * K2's metric registries and the call metrics: the Prometheus text the API renders (histograms
 * included), the SDK registry's bucket rule, and the outcome each client records per call.
 */
import type { MetricMeter } from '@temporalio/common';
import { ConfigError, DEMO_ENV, loadConfig } from '../../config';
import { AbsProtocolError, AbsTransientError, absErrorClass } from '../../integrations/abs';
import { EkoRejectedError, EkoTransientError, ekoErrorClass } from '../../integrations/eko';
import { GkbPermanentError, GkbProtocolError, GkbTransientError, gkbErrorClass } from '../../integrations/gkb/soap-client';
import { createCallMetrics, K2_HISTOGRAM_BUCKETS, CALL_DURATION_METRIC, timedCall, type CallMetrics } from '../../observability/call-metrics';
import { Metrics } from '../../observability/metrics';
import { sdkMetricsRegistry } from '../../observability/sdk-metrics';
import { ageSeconds } from '../../observability/state-metrics';

const line = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(series + ' '));

describe('Metrics (Prometheus text)', () => {
  it('renders counters and gauges with sorted labels, and 0 for a series never set', () => {
    const m = new Metrics();
    const c = m.counter('k2_things_total', 'Things.');
    m.gauge('k2_level', 'Level.');
    c.inc({ b: 'x', a: 'y' });
    c.inc({ a: 'y', b: 'x' }, 2);
    const text = m.render();
    expect(text).toContain('# HELP k2_things_total Things.\n# TYPE k2_things_total counter\n');
    expect(line(text, 'k2_things_total{a="y",b="x"}')).toBe('k2_things_total{a="y",b="x"} 3');
    expect(line(text, 'k2_level')).toBe('k2_level 0');
  });

  it('renders a histogram as cumulative buckets, +Inf, sum and count per label set', () => {
    const m = new Metrics();
    const h = m.histogram('k2_call_seconds', 'Calls.', [0.1, 1]);
    h.observe(0.05, { call: 'a' });
    h.observe(0.5, { call: 'a' });
    h.observe(3, { call: 'a' });
    h.observe(0.1, { call: 'b' });
    const text = m.render();
    expect(text).toContain('# TYPE k2_call_seconds histogram');
    expect(line(text, 'k2_call_seconds_bucket{call="a",le="0.1"}')).toMatch(/ 1$/);
    expect(line(text, 'k2_call_seconds_bucket{call="a",le="1"}')).toMatch(/ 2$/);
    expect(line(text, 'k2_call_seconds_bucket{call="a",le="+Inf"}')).toMatch(/ 3$/);
    expect(line(text, 'k2_call_seconds_sum{call="a"}')).toBe('k2_call_seconds_sum{call="a"} 3.55');
    expect(line(text, 'k2_call_seconds_count{call="a"}')).toMatch(/ 3$/);
    expect(line(text, 'k2_call_seconds_bucket{call="b",le="0.1"}')).toMatch(/ 1$/); // the bound is inclusive
  });

  it('refuses buckets that are not ascending', () => {
    expect(() => new Metrics().histogram('h', 'H.', [1, 1])).toThrow(/ascending/);
    expect(() => new Metrics().histogram('h', 'H.', [])).toThrow(/ascending/);
  });

  it('never lets a label value break the text format', () => {
    const m = new Metrics();
    m.gauge('g', 'G.').set(1, { v: 'a"b\\c\nd' });
    expect(line(m.render(), 'g{v="a_b_c_d"}')).toBe('g{v="a_b_c_d"} 1');
  });
});

describe('sdkMetricsRegistry', () => {
  function fakeMeter() {
    const calls: Array<[string, string, number, unknown]> = [];
    const metric = (kind: string, name: string) => ({
      add: (v: number, tags?: unknown) => calls.push([kind, name, v, tags]),
      set: (v: number, tags?: unknown) => calls.push([kind, name, v, tags]),
      record: (v: number, tags?: unknown) => calls.push([kind, name, v, tags]),
    });
    const meter = {
      createCounter: (name: string) => metric('counter', name),
      createGauge: (name: string) => metric('gauge', name),
      createHistogram: (name: string) => metric('histogram', name),
    } as unknown as MetricMeter;
    return { meter, calls };
  }

  it('hands counters, gauges and histograms to the SDK meter with their labels', () => {
    const { meter, calls } = fakeMeter();
    const registry = sdkMetricsRegistry(meter, K2_HISTOGRAM_BUCKETS);
    createCallMetrics(registry).record('abs', 'client', 0.2, 'AbsUnavailable');
    registry.gauge('k2_g', 'G.').set(4, { x: 'y' });
    expect(calls).toEqual([
      ['histogram', CALL_DURATION_METRIC, 0.2, { system: 'abs', call: 'client' }],
      ['counter', 'k2_calls_total', 1, { system: 'abs', call: 'client', outcome: 'AbsUnavailable' }],
      ['gauge', 'k2_g', 4, { x: 'y' }],
    ]);
  });

  it('refuses a histogram whose buckets were not installed in the Runtime', () => {
    const { meter } = fakeMeter();
    expect(() => sdkMetricsRegistry(meter, {}).histogram(CALL_DURATION_METRIC, 'C.', [1, 2])).toThrow(/histogramBucketOverrides/);
    expect(() => sdkMetricsRegistry(meter, { [CALL_DURATION_METRIC]: [1, 3] }).histogram(CALL_DURATION_METRIC, 'C.', [1, 2])).toThrow(
      /histogramBucketOverrides/,
    );
  });
});

describe('timedCall', () => {
  const recorded: Array<[string, string, string]> = [];
  const metrics: CallMetrics = {
    record: (system, call, seconds, outcome) => void (expect(seconds).toBeGreaterThanOrEqual(0), recorded.push([system, call, outcome])),
  };
  beforeEach(() => void recorded.splice(0));

  it('records ok, a business answer, the error class, and cancelled when the caller aborted', async () => {
    const classifier = { errorClass: () => 'SomeError', resultOutcome: (r: { ok: boolean }) => (r.ok ? 'ok' : 'business-answer') };
    await timedCall(metrics, 'abs', 'client', undefined, classifier, async () => ({ ok: true }));
    await timedCall(metrics, 'abs', 'client', undefined, classifier, async () => ({ ok: false }));
    await expect(timedCall(metrics, 'abs', 'client', undefined, classifier, async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    const aborted = new AbortController();
    aborted.abort();
    await expect(timedCall(metrics, 'abs', 'scan', aborted.signal, classifier, async () => Promise.reject(new Error('y')))).rejects.toThrow('y');
    expect(recorded).toEqual([
      ['abs', 'client', 'ok'],
      ['abs', 'client', 'business-answer'],
      ['abs', 'client', 'SomeError'],
      ['abs', 'scan', 'cancelled'],
    ]);
  });

  it('only runs the call without metrics', async () => {
    expect(await timedCall(undefined, 'eko', 'sendDemand', undefined, { errorClass: () => 'E' }, async () => 7)).toBe(7);
  });
});

describe('error classes: the failure types K2 makes of each client error', () => {
  it('ABS', () => {
    expect(absErrorClass(new AbsTransientError('client', 'HTTP 503', 503))).toBe('AbsUnavailable');
    expect(absErrorClass(new AbsProtocolError('client', 'bad'))).toBe('AbsProtocolError');
    expect(absErrorClass(new RangeError('a K2 bug'))).toBe('AbsProtocolError');
  });
  it('EKO', () => {
    expect(ekoErrorClass(new EkoTransientError('EKO answered HTTP 503', 503))).toBe('EkoUnavailable');
    expect(ekoErrorClass(new EkoRejectedError(2, 'refused', 422))).toBe('EkoRejected');
  });
  it('GKB', () => {
    expect(gkbErrorClass(new GkbTransientError('t', 'timeout', true))).toBe('GkbTransientError');
    expect(gkbErrorClass(new GkbPermanentError('p', 'ScbValidationFault', 'C', 'd'))).toBe('ScbValidationFault');
    expect(gkbErrorClass(new GkbProtocolError('uploadFile', 'batchPackageId', 'missing'))).toBe('Protocol');
  });
});

describe('ageSeconds', () => {
  it('is whole seconds since the time, 0 for nothing or a time ahead', () => {
    expect(ageSeconds(10_600, new Date(1_000))).toBe(10);
    expect(ageSeconds(1_000, undefined)).toBe(0);
    expect(ageSeconds(1_000, new Date(5_000))).toBe(0);
  });
});

describe('K2_METRICS_INTERVAL', () => {
  const problems = (value: string) => {
    try {
      loadConfig({ ...DEMO_ENV, K2_METRICS_INTERVAL: value });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  it('is 30 s by default and takes a duration of at least a second', () => {
    expect(loadConfig({ ...DEMO_ENV }).api.metricsIntervalMs).toBe(30_000);
    expect(loadConfig({ ...DEMO_ENV, K2_METRICS_INTERVAL: '1s' }).api.metricsIntervalMs).toBe(1000);
    expect(problems('500ms')).toEqual(['K2_METRICS_INTERVAL="500ms": at least 1s']);
    expect(problems('often')).toEqual([expect.stringMatching(/^K2_METRICS_INTERVAL="often": expected a duration/)]);
  });
});

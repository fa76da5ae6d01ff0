/**
 * The business metrics on the real system (scripts/system.ts, processes from dist/): demo loans go
 * through the EKO feeder; the API's /metrics shows the cases by stage and by attention reason as
 * Temporal visibility counts them, the demands by status and the GKB and outbox gauges; the worker's
 * /metrics shows each ABS/EKO call with its latency and outcome, and an ABS fault injected through
 * the simulator's /_sim/faults as its error class (AbsUnavailable). Needs dist/ (scripts/test.sh
 * builds it first).
 */
import { e2eSystem } from '../helpers/e2e-system';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { CASE_STAGES } from '../../domain/case';
import { RUNNING_CASES } from '../../observability/case-metrics';

jest.setTimeout(300_000);

const e2e = e2eSystem('k2-e2e-metrics-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text page (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

/** The sum of a metric's samples whose labels include `match`; undefined when there is none. */
function total(samples: Sample[], name: string, match: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  return found.length ? found.reduce((sum, s) => sum + s.value, 0) : undefined;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
}

test('/metrics of the API shows the cases by stage as visibility counts them; the worker shows each call, an ABS fault as its error class', async () => {
  const { client, ports } = await e2e.start({ K2_API_AUTH: 'none', K2_METRICS_INTERVAL: '1s', EKO_SIM_STATUS_DELAY: '1h' });
  const apiMetrics = `http://127.0.0.1:${ports.api}/metrics`;
  const workerMetrics = `http://127.0.0.1:${ports.workerMetrics}/metrics`;
  const feed = (count: number, seed: number) =>
    feedDemoLoans({ k2BaseUrl: `http://127.0.0.1:${ports.api}`, absSimUrl: `http://127.0.0.1:${ports.abs}`, count, seed });
  const count = async (query: string) => (await client.workflow.count(query)).count;

  const contracts = await feed(6, 1616);
  expect(contracts).toHaveLength(6);
  // Every case has moved on: past its first stage, or parked with a reason (the demo data has some on purpose).
  await eventually('six cases past received', async () =>
    (await count(RUNNING_CASES)) === 6 && (await count(`${RUNNING_CASES} AND K2Stage="received" AND K2NeedsAttention=false`)) === 0 ? true : undefined,
  );

  // The gauges agree with visibility, stage by stage (the cases wait for EKO's status for an hour: they stay put).
  const byStage = async () =>
    Object.fromEntries(await Promise.all(CASE_STAGES.map(async (stage) => [stage, await count(`${RUNNING_CASES} AND K2Stage="${stage}"`)] as const)));
  const expected = await byStage();
  expect(Object.values(expected).reduce((a, b) => a + b, 0)).toBe(6);
  const api = await eventually('the stage gauges equal the visibility counts', async () => {
    const samples = await scrape(apiMetrics);
    const shown = Object.fromEntries(CASE_STAGES.map((stage) => [stage, total(samples, 'k2_cases', { stage })]));
    return JSON.stringify(shown) === JSON.stringify(expected) ? samples : undefined;
  });
  const needAttention = await count(`${RUNNING_CASES} AND K2NeedsAttention=true`);
  expect(total(api, 'k2_cases_attention')).toBe(needAttention);
  for (const [stage, n] of Object.entries(expected))
    if (n === 0) expect({ stage, oldest: total(api, 'k2_case_stage_oldest_seconds', { stage }) }).toEqual({ stage, oldest: 0 });
  // One demand per case that reached its demand (the gauge is read after the stages: it may lag a refresh).
  const withDemand = await count(`${RUNNING_CASES} AND K2Stage IN ("demand-issued", "reported-to-gkb")`);
  const demands = await eventually('a demand per case at its demand', async () =>
    total(await scrape(apiMetrics), 'k2_demands') === withDemand ? withDemand : undefined,
  );
  for (const series of ['k2_outbox_pending_oldest_seconds', 'k2_gkb_packages_in_flight', 'k2_gkb_package_oldest_seconds', 'k2_gkb_result_horizon_seconds'])
    expect({ series, shown: total(api, series) !== undefined }).toEqual({ series, shown: true });
  expect(total(api, 'k2_outbox_pending_oldest_seconds')).toBe(0);

  // The worker: every ABS call timed, by call; each demand EKO took counted as sent.
  const worker = await eventually('the worker counts the demands sent', async () => {
    const samples = await scrape(workerMetrics);
    return (total(samples, 'k2_calls_total', { system: 'eko', call: 'sendDemand', outcome: 'ok' }) ?? 0) >= demands ? samples : undefined;
  });
  expect(total(worker, 'k2_calls_total', { system: 'abs', call: 'client' })).toBeGreaterThanOrEqual(6);
  expect(total(worker, 'k2_call_duration_seconds_count', { system: 'abs', call: 'client' })).toBe(
    total(worker, 'k2_calls_total', { system: 'abs', call: 'client' }),
  );
  expect(total(worker, 'k2_call_duration_seconds_bucket', { system: 'abs', call: 'client', le: '+Inf' })).toBe(
    total(worker, 'k2_calls_total', { system: 'abs', call: 'client' }),
  );
  expect(total(worker, 'k2_calls_total', { outcome: 'AbsUnavailable' })).toBeUndefined();

  // ABS answers every call with HTTP 5xx: the next cases' calls fail as AbsUnavailable (they retry).
  const fault = await fetch(`http://127.0.0.1:${ports.abs}/_sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ http5xx: 1 }),
  });
  expect(fault.status).toBe(200);
  await feed(2, 1617);
  const failed = await eventually("AbsUnavailable in the worker's /metrics", async () => {
    const n = total(await scrape(workerMetrics), 'k2_calls_total', { system: 'abs', call: 'client', outcome: 'AbsUnavailable' });
    return n && n > 0 ? n : undefined;
  });
  expect(failed).toBeGreaterThan(0);
});

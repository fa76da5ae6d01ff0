/**
 * The case gauges against a real Temporal dev server (localEnv, SQL visibility: GROUP BY refused,
 * so counted value by value): running cases by stage and by attention reason, and the oldest case
 * per stage by K2StageSince, by StartTime for a case without it, and by StartTime alone once the
 * attribute is not registered. The cases are started on a task queue no worker polls, with the
 * search attributes they would carry, so they stay where they were put.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { SearchAttributePair } from '@temporalio/common';
import { createCaseMetrics, RUNNING_CASES } from '../../observability/case-metrics';
import { Metrics } from '../../observability/metrics';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { localEnv } from '../helpers/temporal';

jest.setTimeout(120_000);

const HOUR = 3_600_000;
let env: TestWorkflowEnvironment;
let seq = 0;

beforeAll(async () => {
  env = await localEnv();
});
afterAll(async () => {
  await env?.teardown();
});

async function startCase(stage: string, opts: { since?: Date; reason?: string; type?: string } = {}): Promise<string> {
  const typedSearchAttributes: SearchAttributePair[] = [
    { key: SEARCH_ATTRIBUTES.stage, value: stage },
    { key: SEARCH_ATTRIBUTES.needsAttention, value: opts.reason !== undefined },
  ];
  if (opts.reason) typedSearchAttributes.push({ key: SEARCH_ATTRIBUTES.attentionReason, value: opts.reason });
  if (opts.since) typedSearchAttributes.push({ key: SEARCH_ATTRIBUTES.stageSince, value: opts.since });
  const workflowId = `metrics-case-${++seq}`;
  await env.client.workflow.start(opts.type ?? 'caseWorkflow', { taskQueue: 'k2-metrics-nobody-polls', workflowId, typedSearchAttributes });
  return workflowId;
}

const gauge = (metrics: Metrics, series: string): number | undefined => {
  const line = metrics
    .render()
    .split('\n')
    .find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

test('counts running cases by stage and by reason, and finds the oldest case of each stage', async () => {
  const now = Date.now();
  const testStarted = now;
  await startCase('received', { since: new Date(now - 48 * HOUR), reason: 'abs-unavailable' });
  await startCase('received', { since: new Date(now - HOUR) });
  await startCase('demand-issued'); // started before K2StageSince existed: its StartTime counts
  await startCase('demand-issued', { since: new Date(now - 5 * HOUR), reason: 'eko-rejected' });
  await startCase('client-checked', { reason: 'a-code-k2-does-not-list' });
  await startCase('received', { since: new Date(now - 100 * HOUR), type: 'gkbBatchWorkflow' }); // not a case
  const closed = await startCase('received', { since: new Date(now - 200 * HOUR) });
  await env.client.workflow.getHandle(closed).terminate('closed cases are not counted');

  const deadline = Date.now() + 30_000;
  while ((await env.client.workflow.count(RUNNING_CASES)).count !== 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));

  const metrics = new Metrics();
  const cases = createCaseMetrics(metrics, env.client);
  await cases.refresh();
  const refreshed = Date.now();

  expect(gauge(metrics, 'k2_cases{stage="received"}')).toBe(2);
  expect(gauge(metrics, 'k2_cases{stage="demand-issued"}')).toBe(2);
  expect(gauge(metrics, 'k2_cases{stage="client-checked"}')).toBe(1);
  expect(gauge(metrics, 'k2_cases{stage="closed"}')).toBe(0);
  expect(gauge(metrics, 'k2_cases_attention{reason="abs-unavailable"}')).toBe(1);
  expect(gauge(metrics, 'k2_cases_attention{reason="eko-rejected"}')).toBe(1);
  expect(gauge(metrics, 'k2_cases_attention{reason="scan-missing"}')).toBe(0);
  expect(gauge(metrics, 'k2_cases_attention{reason="other"}')).toBe(1);

  // By K2StageSince: to 1% of the age, never older than true.
  const received = gauge(metrics, 'k2_case_stage_oldest_seconds{stage="received"}')!;
  expect(received).toBeLessThanOrEqual((refreshed - (now - 48 * HOUR)) / 1000 + 1);
  expect(received).toBeGreaterThanOrEqual(0.99 * 48 * 3600);
  // The older of the two: the one with K2StageSince, not the one counted from its StartTime.
  const demand = gauge(metrics, 'k2_case_stage_oldest_seconds{stage="demand-issued"}')!;
  expect(demand).toBeGreaterThanOrEqual(0.99 * 5 * 3600);
  expect(demand).toBeLessThanOrEqual((refreshed - (now - 5 * HOUR)) / 1000 + 1);
  // Only a case without K2StageSince: its StartTime, within this test.
  const checked = gauge(metrics, 'k2_case_stage_oldest_seconds{stage="client-checked"}')!;
  expect(checked).toBeLessThanOrEqual((refreshed - testStarted) / 1000 + 1);
  expect(gauge(metrics, 'k2_case_stage_oldest_seconds{stage="closed"}')).toBe(0);

  // A server without K2StageSince registered: StartTime for every case (all started within this test).
  await env.connection.operatorService.removeSearchAttributes({ namespace: env.namespace ?? 'default', searchAttributes: ['K2StageSince'] });
  await cases.refresh();
  const again = Date.now();
  expect(gauge(metrics, 'k2_cases{stage="received"}')).toBe(2);
  expect(gauge(metrics, 'k2_case_stage_oldest_seconds{stage="received"}')).toBeLessThanOrEqual((again - testStarted) / 1000 + 1);
  expect(gauge(metrics, 'k2_case_stage_oldest_seconds{stage="demand-issued"}')).toBeLessThanOrEqual((again - testStarted) / 1000 + 1);
});

/**
 * The GKB schedule is created once, whichever workers start at once: every worker runs
 * ensureGkbSchedule at start-up (worker/main.ts); with two or more starting together they all find
 * no schedule, all create it, and all but one are told it exists; and when they start together
 * again (a restart of the deployment) they all update it at once. None of them may fail. Against a
 * real Temporal dev server (localEnv).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Config, DEMO_ENV, loadConfig } from '../../config';
import { ensureGkbSchedule, GKB_SCHEDULE_ID } from '../../worker';
import { localEnv } from '../helpers/temporal';

jest.setTimeout(180_000);

const WORKERS = 4;
let env: TestWorkflowEnvironment;

function workerConfig(interval: string): Config {
  return loadConfig({ ...DEMO_ENV, TEMPORAL_TASK_QUEUE: 'k2-schedule-test', GKB_BATCH_INTERVAL: interval });
}

beforeAll(async () => {
  env = await localEnv();
});
afterAll(async () => {
  await env?.teardown();
});

test(`${WORKERS} workers starting at once on a fresh server: none fails, the schedule exists; starting at once again updates it`, async () => {
  const first = await Promise.allSettled(Array.from({ length: WORKERS }, () => ensureGkbSchedule(env.client, workerConfig('15m'))));
  expect(first.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
  expect((await env.client.schedule.getHandle(GKB_SCHEDULE_ID).describe()).spec.intervals?.map((i) => i.every)).toEqual([15 * 60_000]);

  // a new release starts every worker at once, with a changed interval
  const again = await Promise.allSettled(Array.from({ length: WORKERS }, () => ensureGkbSchedule(env.client, workerConfig('20m'))));
  expect(again.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
  const described = await env.client.schedule.getHandle(GKB_SCHEDULE_ID).describe();
  expect(described.spec.intervals?.map((i) => i.every)).toEqual([20 * 60_000]);
});

/**
 * Backlog narrowing (worker/backlog-narrowing.ts), on the real system: while a large POST's
 * cases wait in the outbox to be started, the worker narrows to K2_WORKER_NARROW_SLOTS workflow
 * tasks, says so in its log and its metric, and widens again once the backlog is gone; every case
 * still gets executed. Needs dist/ (scripts/test.sh builds it first).
 */
import fs from 'node:fs';
import path from 'node:path';
import { e2eSystem } from '../helpers/e2e-system';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';

jest.setTimeout(300_000);

const LOANS = 600;
const e2e = e2eSystem('k2-e2e-narrowing-');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`a POST of ${LOANS} loans narrows the worker while their cases wait to start, and every case is still executed`, async () => {
  const { client, ports } = await e2e.start({ K2_API_AUTH: 'none', K2_WORKER_NARROW_BACKLOG: '50', K2_WORKER_NARROW_SLOTS: '2', EKO_SIM_STATUS_DELAY: '1h' });
  const metricsUrl = `http://127.0.0.1:${ports.workerMetrics}/metrics`;
  const narrowedGauge = async (): Promise<number | undefined> => {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => /^k2_worker_narrowed(\{[^}]*\})? /.test(l));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  expect(await narrowedGauge()).toBe(0);

  // Sample the gauge while the cases are handed to Temporal.
  const seen: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const v = await narrowedGauge().catch(() => undefined);
      if (v !== undefined && seen[seen.length - 1] !== v) seen.push(v);
      await sleep(100);
    }
  })();
  const contracts = await feedDemoLoans({ k2BaseUrl: `http://127.0.0.1:${ports.api}`, absSimUrl: `http://127.0.0.1:${ports.abs}`, count: LOANS, seed: 777 });
  expect(contracts).toHaveLength(LOANS);

  const count = async (query: string) => (await client.workflow.count(query)).count;
  // Every case executed: it reached its demand, or (the demo data has some on purpose) it needs attention.
  const notExecuted = 'WorkflowType="caseWorkflow" AND K2Stage="received" AND K2NeedsAttention=false';
  const deadline = Date.now() + 180_000;
  while (((await count('WorkflowType="caseWorkflow"')) < LOANS || (await count(notExecuted)) > 0) && Date.now() < deadline) await sleep(1000);
  sampling = false;
  await sampler;

  expect(await count('WorkflowType="caseWorkflow"')).toBe(LOANS);
  expect(await count(notExecuted)).toBe(0);
  expect(await count('WorkflowType="caseWorkflow" AND K2Stage="demand-issued"')).toBeGreaterThan(LOANS / 2);
  expect(seen).toEqual([0, 1, 0]);
  const log = fs.readFileSync(path.join(e2e.dataDir, 'logs', 'worker.log'), 'utf8');
  const narrowed = log.indexOf('backlog narrowing: the outbox holds a backlog');
  const widened = log.indexOf('backlog narrowing: backlog gone');
  expect(narrowed).toBeGreaterThan(-1);
  expect(widened).toBeGreaterThan(narrowed);
});

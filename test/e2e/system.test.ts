/**
 * End to end, every part real and separate: HTTP → K2 API → outbox → Temporal dev server → worker
 * → ABS simulator (HTTP) → document store → payment demand → EKO simulator → statuses back through
 * the API → the case. Then the whole system is stopped and started again on the same data folder,
 * and the earlier cases are still there. Needs dist/ (scripts/test.sh builds it first).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { e2eSystem } from '../helpers/e2e-system';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { caseWorkflowId, CaseStatus } from '../../domain/case';
import { caseStatusQuery } from '../../workflows/definitions';

jest.setTimeout(300_000);

const e2e = e2eSystem('k2-e2e-');

async function waitForCases(client: Client, ids: string[], pred: (s: CaseStatus) => boolean, timeoutMs = 120_000): Promise<CaseStatus[]> {
  const deadline = Date.now() + timeoutMs;
  let last: CaseStatus[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(ids.map((id) => client.workflow.getHandle(id).query(caseStatusQuery).catch(() => undefined as unknown as CaseStatus)));
    if (last.every((s) => s && pred(s))) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`cases not there in time: ${JSON.stringify(last)}`);
}

test('loans posted to K2 become cases that reach their demand and its statuses, and survive a full restart', async () => {
  const env = { K2_API_AUTH: 'none', EKO_SIM_STATUS_DELAY: '300ms' };
  const { client, ports } = await e2e.start(env);

  const contracts = await feedDemoLoans({
    k2BaseUrl: `http://127.0.0.1:${ports.api}`,
    absSimUrl: `http://127.0.0.1:${ports.abs}`,
    count: 3,
    seed: 4242,
  });
  expect(contracts).toHaveLength(3);
  const ids = contracts.map(caseWorkflowId);

  const cases = await waitForCases(client, ids, (s) => s.demand?.status === 'PC3');
  for (const c of cases) {
    expect(c.stage).toBe('demand-issued');
    expect(c.attention).toBeUndefined();
    expect(c.demand?.reference).toMatch(/^PTP\d{11}$/);
    expect(c.demand).toMatchObject({ acceptedByBank: true, inCardIndex: true });
    expect(c.scan?.sha256).toMatch(/^[0-9a-f]{64}$/);
  }
  // The scan is in the document store on disk, not in the history.
  const sha = cases[0].scan!.sha256;
  expect(fs.existsSync(path.join(e2e.dataDir, 'documents', sha.slice(0, 2), sha.slice(2, 4), sha))).toBe(true);
  const history = await client.workflow.getHandle(ids[0]).fetchHistory();
  expect(JSON.stringify(history).length).toBeLessThan(200_000);

  // No personal data in workflow IDs or search attributes.
  const described = await client.workflow.getHandle(ids[0]).describe();
  expect(described.searchAttributes).toMatchObject({ K2Stage: ['demand-issued'], K2NeedsAttention: [false] });

  await e2e.stop();

  // Start again on the same data folder: the cases are still there and still answer.
  const restarted = await e2e.start(env, ports);
  const again = await waitForCases(restarted.client, ids, (s) => s.demand?.status === 'PC3', 60_000);
  expect(again.map((c) => c.demand?.reference)).toEqual(cases.map((c) => c.demand?.reference));
});

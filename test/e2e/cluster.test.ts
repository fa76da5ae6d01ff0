/**
 * Smoke run of the production topology (scripts/cluster.ts, cluster/README.md): PostgreSQL, a real
 * Temporal server with its schema set up by its SQL tool, the UI server, two workers and two API
 * replicas behind nginx, on free ports in a temp folder. A few loans posted through nginx reach their
 * payment demand, read through the Temporal server with K2's own client. Needs the binaries of
 * scripts/install-cluster-tools.sh (built from Go; skipped with the reason when they are not there),
 * Debian's PostgreSQL and nginx, and dist/ (scripts/test.sh builds it first).
 */
import fs from 'node:fs';
import type { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../config';
import { findClusterTools, freeClusterPorts, startCluster, tempClusterDir, type RunningCluster } from '../../scripts/cluster';
import { openConnection, temporalClient } from '../../temporal/connection';
import { formatPayloadKeys, newPayloadKey } from '../../temporal/keys';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { caseWorkflowId, CASE_STAGES, type CaseStatus } from '../../domain/case';
import { caseStatusQuery } from '../../workflows/definitions';

jest.setTimeout(240_000);

const tools = findClusterTools();
const SKIP_REASON = typeof tools === 'string' ? tools : undefined;
if (SKIP_REASON) console.warn(`cluster.test.ts skipped: ${SKIP_REASON}`);
const describeWithCluster = SKIP_REASON ? describe.skip : describe;

/** demand-issued and the stages after it short of closed. */
const AT_DEMAND = CASE_STAGES.slice(CASE_STAGES.indexOf('demand-issued'), CASE_STAGES.indexOf('closed'));
const reachedDemand = (s: CaseStatus | undefined) => s !== undefined && (AT_DEMAND as readonly string[]).includes(s.stage);

describeWithCluster('the cluster topology', () => {
  let dataDir = '';
  let cluster: RunningCluster | undefined;
  let connection: Connection | undefined;

  afterAll(async () => {
    await connection?.close();
    await cluster?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('loans posted through nginx become cases on the Temporal server that reach their demand', async () => {
    dataDir = tempClusterDir('k2-e2e-cluster-');
    cluster = await startCluster({
      dataDir,
      ports: await freeClusterPorts(),
      env: { K2_API_AUTH: 'none', EKO_SIM_STATUS_DELAY: '300ms', K2_PAYLOAD_KEYS: formatPayloadKeys([newPayloadKey('cluster-test')]) },
    });
    const config = loadConfig({ ...process.env, ...cluster.env });
    // The cluster's own server, not a dev server: PostgreSQL persistence and its frontend on the cluster's port.
    expect(config.temporal.address).toBe(`127.0.0.1:${cluster.ports.temporal}`);
    connection = await openConnection(config);
    const client: Client = temporalClient(config, connection);

    const contracts = await feedDemoLoans({ k2BaseUrl: cluster.apiUrl, absSimUrl: `http://127.0.0.1:${cluster.ports.abs}`, count: 3, seed: 7314 });
    expect(contracts).toHaveLength(3);

    const ids = contracts.map((c) => caseWorkflowId(c));
    const deadline = Date.now() + 150_000;
    let statuses: Array<CaseStatus | undefined> = [];
    while (Date.now() < deadline) {
      statuses = await Promise.all(ids.map((id) => client.workflow.getHandle(id).query(caseStatusQuery).catch(() => undefined)));
      if (statuses.every(reachedDemand)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(statuses.map((s) => s?.stage).filter((stage) => !(AT_DEMAND as readonly string[]).includes(stage ?? ''))).toEqual([]);
  });
});

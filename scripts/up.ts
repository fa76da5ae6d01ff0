/**
 * `npm run up`: the whole system on its embedded default, demo data flowing. Ctrl-C stops every
 * process cleanly; the Temporal and K2 databases stay in .data/, so a restart finds the earlier cases.
 * Payloads in Temporal are encrypted with the demo's key, .data/payload-keys, created on the first
 * start and reused afterwards (deleting it makes the earlier cases unreadable: delete .data/ with it),
 * unless K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE give keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEMO_ENV, DEMO_SECRETS, loadConfig } from '../config';
import { ensureDemoKeyFile } from '../temporal/keys';
import { codecEndpoint, DEFAULT_PORTS, repoRoot, startSystem } from './system';
import { CLUSTER_VERSIONS, startCluster } from './cluster';
import { createConsoleWarnings, type ConsoleWarnings } from './console-warnings';
import { feedDemoLoans } from '../simulators/eko/demo-feeder';
import { demoScenarioLoans } from '../simulators/eko/demo-scenarios';

async function main() {
  if (process.argv.includes('--cluster')) return upCluster();
  const dataDir = path.join(repoRoot(), '.data');
  const demoCount = Number(process.env.K2_DEMO_LOANS ?? 12);
  const keys = payloadKeysEnv(dataDir);
  const config = loadConfig({ ...process.env, ...DEMO_ENV, ...keys });
  const ports = {
    ...DEFAULT_PORTS,
    temporal: Number(config.temporal.address.split(':')[1]),
    ui: config.temporal.uiPort,
    api: config.api.port,
    abs: config.simulators.absPort,
    gkb: config.simulators.gkbPort,
    eko: config.simulators.ekoPort,
    workerMetrics: Number(config.temporal.workerMetrics.split(':')[1]),
    codec: config.codec.port,
  };
  console.log('Starting K2: Temporal dev server, simulators (ABS, GKB, EKO), worker, API …');
  const warnings = createConsoleWarnings();
  const system = await startSystem({
    dataDir,
    ports,
    env: { ...demoPaceEnv(), ...keys },
    onLine: warnings.line,
  });
  warnings.temporalUp(true);
  stopOnSignal(system, 'Stopping every process …', '.data/', warnings);

  const k2 = `http://127.0.0.1:${ports.api}`;
  const seed = Date.now() % 1_000_000;
  const contracts = await feedDemoLoans({ k2BaseUrl: k2, absSimUrl: `http://127.0.0.1:${ports.abs}`, count: demoCount, seed });
  // A few loans that need an operator, straight to K2 (ABS answers them from its named scenarios).
  const scenarios = demoScenarioLoans(seed);
  const posted = await fetch(`${k2}/restapi/services/k2loan_from_eko`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(scenarios),
  });
  const answer = (await posted.json()) as { error_code: number; error_text: string };
  if (answer.error_code !== 0) console.log(`Scenario loans refused: ${answer.error_text}`);
  const ui = `http://127.0.0.1:${ports.ui}`;
  const codec = codecEndpoint(ports);
  // The demo's token is public (config DEMO_SECRETS); a token of the operator's own is never printed.
  const codecToken = system.env.K2_CODEC_TOKEN === DEMO_SECRETS.K2_CODEC_TOKEN ? `the demo token "${DEMO_SECRETS.K2_CODEC_TOKEN}"` : 'K2_CODEC_TOKEN';
  const query = encodeURIComponent('WorkflowType="caseWorkflow"');
  console.log(`
K2 is up. ${contracts.length} demo loans posted (seed ${seed}), and ${scenarios.length} that will need an operator.

  Temporal Web UI   ${ui}/namespaces/default/workflows?query=${query}
  Decoded payloads  the Web UI shows only ciphertext until you sign in at the codec server ${codec}/login
                    with ${codecToken}, and in the Web UI's Codec Server settings choose "Use my browser
                    setting", endpoint ${codec}, "Include cross-origin credentials" (README: "Decoded loans in the Web UI").
  Needs attention   ${ui}/namespaces/default/workflows?query=${encodeURIComponent('K2NeedsAttention=true')}
  GKB batches       ${ui}/namespaces/default/workflows?query=${encodeURIComponent('WorkflowType="gkbBatchWorkflow"')}   (schedule: ${ui}/namespaces/default/schedules/gkb-batch)
  Worker metrics    http://${config.temporal.workerMetrics}/metrics
  K2 API            ${k2}/restapi/services/k2loan_from_eko   (OpenAPI: ${k2}/openapi.json, ${k2}/ready, ${k2}/metrics)
  ABS simulator     http://127.0.0.1:${ports.abs}
  GKB sandbox       http://127.0.0.1:${ports.gkb}/BatchProcessingService?wsdl
  EKO simulator     http://127.0.0.1:${ports.eko}
  Logs              ${path.join(dataDir, 'logs')}/*.log
  Operator CLI      K2_DEMO=true npm run k2 -- case list --attention any   (README "Operator actions"; --help on every command)

Press Ctrl-C to stop.`);
}

/** Demo pace: statuses within seconds, scans re-checked and a GKB batch started every minute. */
function demoPaceEnv(): Record<string, string> {
  return {
    K2_API_AUTH: 'none',
    EKO_SIM_STATUS_DELAY: process.env.EKO_SIM_STATUS_DELAY ?? '10s',
    CASE_SCAN_RECHECK: process.env.CASE_SCAN_RECHECK ?? '1m',
    GKB_BATCH_INTERVAL: process.env.GKB_BATCH_INTERVAL ?? '1m',
    GKB_POLL_INITIAL: process.env.GKB_POLL_INITIAL ?? '5s',
    GKB_POLL_MAX: process.env.GKB_POLL_MAX ?? '30s',
  };
}

/**
 * `npm run up -- --cluster`: the production topology (scripts/cluster.ts, cluster/README.md) on the
 * default cluster ports, its data in .data/cluster/ (PostgreSQL included), the same demo loans.
 */
async function upCluster() {
  const dataDir = path.join(repoRoot(), '.data', 'cluster');
  fs.mkdirSync(dataDir, { recursive: true });
  const keys = payloadKeysEnv(dataDir);
  console.log('Starting the K2 cluster: PostgreSQL, Temporal server, UI server, simulators, codec server, 2 workers, 2 API replicas behind nginx …');
  const warnings = createConsoleWarnings();
  const cluster = await startCluster({
    dataDir,
    env: { ...demoPaceEnv(), ...keys },
    onLine: warnings.line,
  });
  warnings.temporalUp(true);
  stopOnSignal(cluster, 'Stopping every process, in reverse order …', '.data/cluster/', warnings);

  const { ports, apiUrl } = cluster;
  const seed = Date.now() % 1_000_000;
  const contracts = await feedDemoLoans({
    k2BaseUrl: apiUrl,
    absSimUrl: `http://127.0.0.1:${ports.abs}`,
    count: Number(process.env.K2_DEMO_LOANS ?? 12),
    seed,
  });
  const ui = `http://127.0.0.1:${ports.ui}`;
  const codec = `http://127.0.0.1:${ports.codec}`;
  const query = encodeURIComponent('WorkflowType="caseWorkflow"');
  console.log(`
The K2 cluster is up (cluster/README.md). ${contracts.length} demo loans posted (seed ${seed}).

  Temporal Web UI   ${ui}/namespaces/default/workflows?query=${query}   (UI server ${CLUSTER_VERSIONS.uiServer})
  Decoded payloads  sign in at the codec server ${codec}/login (the UI already uses it as its codec endpoint)
  Temporal server   127.0.0.1:${ports.temporal} (${CLUSTER_VERSIONS.temporalServer}, PostgreSQL 127.0.0.1:${ports.postgres}; metrics http://127.0.0.1:${ports.temporalMetrics}/metrics)
  K2 API (nginx)    ${apiUrl}/restapi/services/k2loan_from_eko   (replicas ${ports.apiReplicas.map((p) => `127.0.0.1:${p}`).join(', ')}; /metrics on each replica)
  Worker metrics    ${ports.workers.map((w) => `http://127.0.0.1:${w.metrics}/metrics`).join('  ')}
  Worker health     ${ports.workers.map((w) => `http://127.0.0.1:${w.health}/health`).join('  ')}
  ABS, GKB, EKO     http://127.0.0.1:${ports.abs}  http://127.0.0.1:${ports.gkb}/BatchProcessingService?wsdl  http://127.0.0.1:${ports.eko}
  Logs              ${path.join(dataDir, 'logs')}/*.log

Press Ctrl-C to stop.`);
}

/** The payload keys of the demo: the caller's own (K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE), else the demo key file in .data/. */
function payloadKeysEnv(dataDir: string): Record<string, string> {
  if (process.env.K2_PAYLOAD_KEYS || process.env.K2_PAYLOAD_KEYS_FILE) return {};
  const { file, created } = ensureDemoKeyFile(dataDir);
  console.log(
    created
      ? `Created the demo payload key ${file} (mode 0600): Temporal stores every payload encrypted with it. Keep it with .data/; without it the cases there cannot be read.`
      : `Payloads are encrypted with the demo key ${file}.`,
  );
  return { K2_PAYLOAD_KEYS_FILE: file };
}

main().catch((err) => {
  console.error(`K2 failed to start: ${err?.message ?? err}`);
  process.exit(1);
});

/** Ctrl-C (or SIGTERM) stops every process once, then exits. */
function stopOnSignal(running: { stop(): Promise<void> }, announce: string, dataFolder: string, warnings: ConsoleWarnings): void {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    warnings.temporalUp(false);
    console.log(`\n${announce}`);
    await running.stop();
    console.log(`Stopped. Data kept in ${dataFolder} (delete it for a clean start).`);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

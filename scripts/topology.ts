/**
 * Either topology behind one interface, so the end-to-end tests, the chaos suite and the benchmarks
 * run the same code on both: `dev` is scripts/system.ts (the Temporal dev server on SQLite, one
 * worker, one API), `cluster` is scripts/cluster.ts (PostgreSQL, the Temporal server, two workers,
 * two API replicas behind nginx). Free ports, the demo's configuration (K2_DEMO=true), processes
 * from dist/.
 */
import { findClusterTools, freeClusterPorts, startCluster, type ClusterK2Process } from './cluster';
import { freePorts, startSystem } from './system';

export type TopologyKind = 'dev' | 'cluster';
export const TOPOLOGY_KINDS: readonly TopologyKind[] = ['dev', 'cluster'];

export interface TopologyOptions {
  dataDir: string;
  /** Added to every process's environment (simulator pace, SIM_FAULTS, K2 settings, payload keys). */
  env?: Record<string, string>;
  onLine?: (name: string, line: string) => void;
  /** dev: run the dev server's Web UI too (the cluster always runs its UI server). */
  webUi?: boolean;
}

export interface RunningTopology {
  kind: TopologyKind;
  dataDir: string;
  /** The K2 processes' common environment: loadConfig({ ...process.env, ...env }) is a client's configuration. */
  env: Record<string, string>;
  /** The K2 API (nginx on the cluster). */
  apiUrl: string;
  /** Temporal's frontend, host:port. */
  temporalAddress: string;
  /** The Web UI (dev: only with `webUi`) and the codec server it decodes through. */
  uiUrl: string;
  codecUrl: string;
  simUrls: { abs: string; gkb: string; eko: string };
  metricsUrls: { api: string[]; worker: string[] };
  /** Each K2 process's readiness endpoint, by process name (an API replica's /ready, a worker's health /ready): 200 once it can work. */
  readyUrls: Record<string, string>;
  /** Process names: dev ['worker'], cluster ['worker-1', 'worker-2']. */
  workers: string[];
  /** Process names: dev ['api'], cluster ['api-1', 'api-2']. */
  apis: string[];
  /** Process name → pid of every running process. */
  pids(): Record<string, number>;
  /** Sends the signal (default SIGKILL) to one named process and waits for it to exit. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped worker or API replica again and waits until it is ready. */
  start(name: string): Promise<void>;
  /** Restarts the Temporal server (dev: on its SQLite file) and waits until it answers. */
  restartTemporal(): Promise<void>;
  /** Cluster only: restarts PostgreSQL and waits until it accepts connections. */
  restartPostgres?: () => Promise<void>;
  stop(): Promise<void>;
}

/** Why `kind` cannot run on this machine, or undefined when it can. */
export function topologyUnavailable(kind: TopologyKind): string | undefined {
  if (kind === 'dev') return undefined;
  const tools = findClusterTools();
  return typeof tools === 'string' ? tools : undefined;
}

export function parseTopologyKind(value: string): TopologyKind {
  if ((TOPOLOGY_KINDS as readonly string[]).includes(value)) return value as TopologyKind;
  throw new Error(`unknown topology "${value}" (known: ${TOPOLOGY_KINDS.join(', ')})`);
}

export async function startTopology(kind: TopologyKind, opts: TopologyOptions): Promise<RunningTopology> {
  return kind === 'dev' ? startDev(opts) : startClusterTopology(opts);
}

const local = (port: number) => `http://127.0.0.1:${port}`;

async function startDev(opts: TopologyOptions): Promise<RunningTopology> {
  const ports = await freePorts();
  const system = await startSystem({ dataDir: opts.dataDir, ports, env: opts.env, headless: !opts.webUi, onLine: opts.onLine });
  const k2Process = (name: string): 'worker' | 'api' => {
    if (name === 'worker' || name === 'api') return name;
    throw new Error(`no K2 process ${name} in the dev topology (worker, api)`);
  };
  return {
    kind: 'dev',
    dataDir: system.dataDir,
    env: system.env,
    apiUrl: local(ports.api),
    temporalAddress: `127.0.0.1:${ports.temporal}`,
    uiUrl: local(ports.ui),
    codecUrl: local(ports.codec),
    simUrls: { abs: local(ports.abs), gkb: local(ports.gkb), eko: local(ports.eko) },
    metricsUrls: { api: [`${local(ports.api)}/metrics`], worker: [`${local(ports.workerMetrics)}/metrics`] },
    readyUrls: { api: `${local(ports.api)}/ready`, worker: `${local(ports.workerHealth)}/ready` },
    workers: ['worker'],
    apis: ['api'],
    pids: () => system.pids(),
    kill: (name, signal) => system.kill(name, signal),
    start: (name) => system.start(k2Process(name)),
    restartTemporal: () => system.restartTemporal(),
    stop: () => system.stop(),
  };
}

async function startClusterTopology(opts: TopologyOptions): Promise<RunningTopology> {
  const ports = await freeClusterPorts();
  const cluster = await startCluster({ dataDir: opts.dataDir, ports, env: opts.env, onLine: opts.onLine });
  return {
    kind: 'cluster',
    dataDir: cluster.dataDir,
    env: cluster.env,
    apiUrl: cluster.apiUrl,
    temporalAddress: `127.0.0.1:${ports.temporal}`,
    uiUrl: local(ports.ui),
    codecUrl: local(ports.codec),
    simUrls: { abs: local(ports.abs), gkb: local(ports.gkb), eko: local(ports.eko) },
    metricsUrls: { api: ports.apiReplicas.map((p) => `${local(p)}/metrics`), worker: ports.workers.map((w) => `${local(w.metrics)}/metrics`) },
    readyUrls: Object.fromEntries([
      ...ports.apiReplicas.map((p, i) => [`api-${i + 1}`, `${local(p)}/ready`]),
      ...ports.workers.map((w, i) => [`worker-${i + 1}`, `${local(w.health)}/ready`]),
    ]),
    workers: ports.workers.map((_, i) => `worker-${i + 1}`),
    apis: ports.apiReplicas.map((_, i) => `api-${i + 1}`),
    pids: () => cluster.pids(),
    kill: (name, signal) => cluster.kill(name, signal),
    start: (name) => cluster.start(name as ClusterK2Process),
    restartTemporal: () => cluster.restartTemporal(),
    restartPostgres: () => cluster.restartPostgres(),
    stop: () => cluster.stop(),
  };
}

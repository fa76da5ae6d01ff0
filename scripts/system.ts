/**
 * Starts the whole system as separate processes — Temporal dev server (SQLite, Web UI), the ABS, GKB
 * and EKO simulators, the codec server (the Web UI decodes through it), the K2 API and the worker — waits until each is ready and stops them in
 * reverse order. Used by `npm run up` and by the end-to-end tests, so both run the same topology.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEMO_SECRETS } from '../config';
import { createLauncher, httpOk, logShows, logSize, waitFor, type Launcher } from './launcher';
import { WORKER_NODE_ARGS } from '../worker/heap';

export const SEARCH_ATTRIBUTES = [
  'K2Stage=Keyword',
  'K2NeedsAttention=Bool',
  'K2AttentionReason=Keyword',
  'K2BatchState=Keyword',
  'K2StageSince=Datetime',
  'K2AbsSystem=Keyword',
];

export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + __dirname);
    dir = up;
  }
  return dir;
}

export function temporalCliPath(): string {
  const p = path.join(repoRoot(), '.tools', 'bin', 'temporal');
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: run scripts/install-temporal.sh`);
  return p;
}

export function testServerPath(): string {
  const p = path.join(repoRoot(), '.tools', 'bin', 'temporal-test-server');
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: run scripts/install-temporal.sh`);
  return p;
}

export interface Ports {
  temporal: number;
  ui: number;
  api: number;
  abs: number;
  gkb: number;
  eko: number;
  workerMetrics: number;
  workerHealth: number;
  /** The codec server the Web UI calls to decode payloads. */
  codec: number;
}

export const DEFAULT_PORTS: Ports = {
  temporal: 7233,
  ui: 8233,
  api: 8080,
  abs: 8091,
  gkb: 8092,
  eko: 8093,
  workerMetrics: 9464,
  workerHealth: 9465,
  codec: 8094,
};

/**
 * Ports this process has handed out. The OS may hand a port it has just freed out again, and two
 * services of one system must never be given the same one.
 */
const handedOut = new Set<number>();

/** A port free now on 127.0.0.1, never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await portTheOsGives();
    if (claimPort(port)) return port;
  }
}

/** Marks a port as handed out; false when this process had handed it out already. */
export function claimPort(port: number): boolean {
  if (handedOut.has(port)) return false;
  handedOut.add(port);
  return true;
}

function portTheOsGives(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function freePorts(): Promise<Ports> {
  return {
    temporal: await freePort(),
    ui: await freePort(),
    api: await freePort(),
    abs: await freePort(),
    gkb: await freePort(),
    eko: await freePort(),
    workerMetrics: await freePort(),
    workerHealth: await freePort(),
    codec: await freePort(),
  };
}

/**
 * The environment every K2 process gets, pointing the services at each other. It is the demo
 * (K2_DEMO=true, the demo's secrets); the payload keys come from `extra` (K2_PAYLOAD_KEYS_FILE or
 * K2_PAYLOAD_KEYS) or else from the caller's own environment.
 */
export function systemEnv(dataDir: string, ports: Ports, extra: Record<string, string> = {}): Record<string, string> {
  const abs = `http://127.0.0.1:${ports.abs}/abs`;
  return {
    K2_DEMO: 'true',
    ...DEMO_SECRETS,
    ...payloadKeysOnlyOneWay(extra),
    K2_CODEC_PORT: String(ports.codec),
    // The Web UI of this system's dev server is the only origin that may call its codec server.
    K2_CODEC_CORS_ORIGINS: `http://127.0.0.1:${ports.ui},http://localhost:${ports.ui}`,
    K2_DATA_DIR: dataDir,
    TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
    TEMPORAL_UI_PORT: String(ports.ui),
    K2_WORKER_METRICS: `127.0.0.1:${ports.workerMetrics}`,
    K2_WORKER_HEALTH: `127.0.0.1:${ports.workerHealth}`,
    K2_API_PORT: String(ports.api),
    ABS_GET_CLI_URL: `${abs}/client`,
    ABS_GET_ACC_URL: `${abs}/accounts`,
    ABS_GET_ACC_STMT_DT_URL: `${abs}/statement`,
    ABS_GET_PDF_URL: `${abs}/dbz-scan`,
    EKO_DEMAND_URL: `http://127.0.0.1:${ports.eko}/eko/payment-demands`,
    GKB_URL: `http://127.0.0.1:${ports.gkb}/BatchProcessingService`,
    ABS_SIM_PORT: String(ports.abs),
    GKB_SIM_PORT: String(ports.gkb),
    EKO_SIM_PORT: String(ports.eko),
    ...extra,
  };
}

/**
 * When `extra` gives the payload keys one way, the other is blanked (an empty value counts as unset),
 * so a K2_PAYLOAD_KEYS in the caller's environment cannot clash with a K2_PAYLOAD_KEYS_FILE given here.
 */
function payloadKeysOnlyOneWay(extra: Record<string, string>): Record<string, string> {
  if (extra.K2_PAYLOAD_KEYS_FILE) return { K2_PAYLOAD_KEYS: '' };
  if (extra.K2_PAYLOAD_KEYS) return { K2_PAYLOAD_KEYS_FILE: '' };
  return {};
}

export interface RunningSystem {
  ports: Ports;
  dataDir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
  /** Stops and restarts one K2 process (not Temporal), e.g. to test a crash. */
  restart(name: 'worker' | 'api'): Promise<void>;
  /** Sends the signal (default SIGKILL) to the named process and waits until it exits. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped K2 process ('worker' or 'api') again and waits until it is ready. */
  start(name: 'worker' | 'api'): Promise<void>;
  /** Stops the dev server and starts it again on its SQLite file; waits until it answers. */
  restartTemporal(): Promise<void>;
  /** Process name → pid of every process that runs. */
  pids(): Record<string, number>;
}

export interface SystemOptions {
  dataDir: string;
  ports?: Ports;
  env?: Record<string, string>;
  headless?: boolean;
  /** Receives each process's output lines (default: into <dataDir>/logs/<name>.log only). */
  onLine?: (name: string, line: string) => void;
}

export async function startSystem(opts: SystemOptions): Promise<RunningSystem> {
  const root = repoRoot();
  const ports = opts.ports ?? DEFAULT_PORTS;
  const dataDir = path.resolve(opts.dataDir);
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const env = systemEnv(dataDir, ports, opts.env);
  const procs = createLauncher({ root, logDir, env, onLine: opts.onLine });

  const startK2 = async (name: 'worker' | 'api') => {
    if (name === 'api') {
      const api = procs.node('api', 'api/main.js');
      await waitFor('K2 API', httpOk(`http://127.0.0.1:${ports.api}/health`), 30_000, api);
    } else {
      const logFile = path.join(logDir, 'worker.log');
      const sizeBefore = logSize(logFile);
      const worker = procs.node('worker', 'worker/main.js', {}, WORKER_NODE_ARGS);
      await waitFor('worker', logShows(logFile, '"worker ready"', sizeBefore), 120_000, worker);
    }
  };
  const startTemporal = async () => {
    const temporal = procs.launch('temporal', temporalCliPath(), devServerArgs(dataDir, ports, opts.headless));
    await waitFor('Temporal dev server', () => tcpOpen(ports.temporal), 60_000, temporal);
    await waitFor("K2's search attributes", () => ensureSearchAttributes(ports.temporal), 60_000, temporal);
  };
  const stopNamed = async (name: string, signal: NodeJS.Signals = 'SIGINT') => {
    const proc = procs.running(name);
    if (proc) await procs.stop(proc, signal, 15_000);
  };

  const system: RunningSystem = {
    ports,
    dataDir,
    env,
    stop: () => procs.stopAll(15_000),
    async restart(name) {
      await stopNamed(name);
      await startK2(name);
    },
    kill: (name, signal = 'SIGKILL') => stopNamed(name, signal),
    start: startK2,
    async restartTemporal() {
      await stopNamed('temporal');
      await startTemporal();
    },
    pids: () => procs.pids(),
  };

  try {
    await startTemporal();
    await startSimulatorsAndCodec(procs, ports);
    await startK2('worker');
    await startK2('api');
  } catch (err) {
    await system.stop();
    throw err;
  }
  return system;
}

/** The ABS, GKB and EKO simulators and the codec server (the same on both topologies), each waited for. */
export async function startSimulatorsAndCodec(procs: Launcher, ports: Ports): Promise<void> {
  const abs = procs.node('abs-simulator', 'simulators/abs/main.js');
  const gkb = procs.node('gkb-sandbox', 'simulators/gkb/main.js');
  const eko = procs.node('eko-simulator', 'simulators/eko/main.js');
  await waitFor('ABS simulator', httpOk(`http://127.0.0.1:${ports.abs}/health`), 30_000, abs);
  await waitFor('GKB sandbox', () => tcpOpen(ports.gkb), 30_000, gkb);
  await waitFor('EKO simulator', httpOk(`http://127.0.0.1:${ports.eko}/health`), 30_000, eko);
  const codec = procs.node('codec', 'codec/main.js');
  await waitFor('codec server', httpOk(`${codecEndpoint(ports)}/health`), 30_000, codec);
}

/**
 * The dev server registers its --search-attribute list only when it creates its database: on a
 * data folder of an earlier start (the demo's .data/) an attribute added since (K2StageSince,
 * K2AbsSystem) would be missing, and every case's workflow task that sets it would fail. So the
 * missing ones are added here, with the Temporal CLI; true once all are there.
 */
async function ensureSearchAttributes(port: number): Promise<boolean> {
  const cli = temporalCliPath();
  const address = ['--address', `127.0.0.1:${port}`, '--namespace', 'default'];
  const { stdout } = await promisify(execFile)(cli, ['operator', 'search-attribute', 'list', '--output', 'json', ...address]);
  const missing = SEARCH_ATTRIBUTES.map((sa) => sa.split('=')).filter(([name]) => !stdout.includes(`"${name}"`));
  if (missing.length === 0) return true;
  await promisify(execFile)(cli, [
    'operator',
    'search-attribute',
    'create',
    ...address,
    ...missing.flatMap(([name, type]) => ['--name', name, '--type', type]),
  ]);
  return false;
}

/** `temporal server start-dev` on the system's SQLite file, with K2's search attributes. */
function devServerArgs(dataDir: string, ports: Ports, headless?: boolean): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(ports.temporal),
    '--ui-port',
    String(ports.ui),
    '--db-filename',
    path.join(dataDir, 'temporal.sqlite'),
    '--sqlite-pragma',
    'journal_mode=wal',
    '--log-level',
    'warn',
    // The Web UI decodes payloads through K2's codec server (operators sign in there: README, Web UI).
    ...(headless ? ['--headless'] : ['--ui-codec-endpoint', codecEndpoint(ports), '--ui-disable-news-fetch']),
    ...SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', sa]),
  ];
}

/** Where the Web UI (and `temporal --codec-endpoint`) reaches the codec server. */
export function codecEndpoint(ports: Ports): string {
  return `http://127.0.0.1:${ports.codec}`;
}

export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

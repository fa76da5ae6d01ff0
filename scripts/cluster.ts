/**
 * The production topology on one machine (`npm run up -- --cluster`; cluster/README.md): PostgreSQL (an
 * instance of its own from the machine's Debian binaries, in <dataDir>/postgres) with the databases
 * `temporal`, `temporal_visibility` and `k2`; a real Temporal server (all services in one process,
 * built by scripts/install-cluster-tools.sh) on them; its UI server decoding through K2's codec server;
 * the simulators; two workers; two API replicas behind nginx. Every port is on loopback. The processes
 * start in that order, each waited for, and stop in reverse order.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { createLauncher, httpOk, logShows, logSize, waitFor, type Launcher, type Proc } from './launcher';
import { claimPort, freePort, repoRoot, SEARCH_ATTRIBUTES, startSimulatorsAndCodec, systemEnv, tcpOpen, temporalCliPath, type Ports } from './system';
import { WORKER_NODE_ARGS } from '../worker/heap';

const run = promisify(execFile);

/** Versions the cluster runs (scripts/install-cluster-tools.sh builds them). */
export const CLUSTER_VERSIONS = { temporalServer: 'v1.32.0', uiServer: 'v2.54.1' } as const;
const DB_ROLE = 'k2cluster';
const DATABASES = ['temporal', 'temporal_visibility', 'k2'] as const;
const NAMESPACE = 'default';

/**
 * The topology startCluster runs, as data (no behaviour): each role, how many processes of it, what
 * it runs, the K2 configuration keys its processes get besides CLUSTER_K2_COMMON_KEYS, and its
 * listening ports (DEFAULT_CLUSTER_PORTS). test/unit/compose.test.ts checks docker-compose.yml against it.
 */
export interface ClusterRole {
  role: string;
  count: number;
  command: string;
  /** Node.js options before the script (the worker's heap bound, worker/heap.ts). */
  nodeArgs?: readonly string[];
  /** Whether it is one of K2's own processes (gets CLUSTER_K2_COMMON_KEYS). */
  k2: boolean;
  keys: string[];
  ports: number[];
}

/** Keys every K2 process of the cluster gets (the database, documents in it, Temporal, the payload keys). */
export const CLUSTER_K2_COMMON_KEYS = ['K2_DB_CLIENT', 'K2_DB_URL', 'K2_DOCUMENT_STORE', 'TEMPORAL_ADDRESS', 'K2_PAYLOAD_KEYS'] as const;

export interface ClusterPorts {
  postgres: number;
  /** Temporal frontend gRPC: what workers, APIs and clients dial. */
  temporal: number;
  temporalHttp: number;
  temporalMetrics: number;
  /** gRPC and membership ports of the server's internal services. */
  internal: {
    frontendMembership: number;
    history: number;
    historyMembership: number;
    matching: number;
    matchingMembership: number;
    worker: number;
    workerMembership: number;
  };
  ui: number;
  /** nginx, the one address of the K2 API. */
  api: number;
  apiReplicas: number[];
  workers: Array<{ metrics: number; health: number }>;
  abs: number;
  gkb: number;
  eko: number;
  codec: number;
}

export const DEFAULT_CLUSTER_PORTS: ClusterPorts = {
  postgres: 5442,
  temporal: 7233,
  temporalHttp: 7243,
  temporalMetrics: 9090,
  internal: {
    frontendMembership: 6933,
    history: 7234,
    historyMembership: 6934,
    matching: 7235,
    matchingMembership: 6935,
    worker: 7239,
    workerMembership: 6939,
  },
  ui: 8233,
  api: 8080,
  apiReplicas: [8081, 8082],
  workers: [
    { metrics: 9464, health: 9465 },
    { metrics: 9466, health: 9467 },
  ],
  abs: 8091,
  gkb: 8092,
  eko: 8093,
  codec: 8094,
};

const P = DEFAULT_CLUSTER_PORTS;
export const CLUSTER_TOPOLOGY: readonly ClusterRole[] = [
  { role: 'postgres', count: 1, command: 'postgres', k2: false, keys: [], ports: [P.postgres] },
  { role: 'temporal-schema', count: 1, command: 'temporal-sql-tool', k2: false, keys: [], ports: [] },
  { role: 'temporal-server', count: 1, command: 'temporal-server', k2: false, keys: [], ports: [P.temporal] },
  { role: 'temporal-namespace', count: 1, command: 'temporal operator', k2: false, keys: [], ports: [] },
  { role: 'abs-simulator', count: 1, command: 'dist/simulators/abs/main.js', k2: false, keys: ['ABS_SIM_PORT'], ports: [P.abs] },
  { role: 'gkb-sandbox', count: 1, command: 'dist/simulators/gkb/main.js', k2: false, keys: ['GKB_SIM_PORT'], ports: [P.gkb] },
  { role: 'eko-simulator', count: 1, command: 'dist/simulators/eko/main.js', k2: false, keys: ['EKO_SIM_PORT', 'EKO_SIM_K2_URL'], ports: [P.eko] },
  { role: 'codec', count: 1, command: 'dist/codec/main.js', k2: true, keys: ['K2_CODEC_PORT', 'K2_CODEC_CORS_ORIGINS'], ports: [P.codec] },
  { role: 'temporal-ui', count: 1, command: 'temporal-ui-server', k2: false, keys: [], ports: [P.ui] },
  {
    role: 'worker',
    count: P.workers.length,
    command: 'dist/worker/main.js',
    nodeArgs: WORKER_NODE_ARGS,
    k2: true,
    keys: [
      'K2_WORKER_METRICS',
      'K2_WORKER_HEALTH',
      'ABS_GET_CLI_URL',
      'ABS_GET_ACC_URL',
      'ABS_GET_ACC_STMT_DT_URL',
      'ABS_GET_PDF_URL',
      'EKO_DEMAND_URL',
      'GKB_URL',
    ],
    ports: P.workers.flatMap((w) => [w.metrics, w.health]),
  },
  { role: 'api', count: P.apiReplicas.length, command: 'dist/api/main.js', k2: true, keys: ['K2_API_PORT', 'K2_DISPATCH_HOLD_RATE'], ports: P.apiReplicas },
  { role: 'load-balancer', count: 1, command: 'nginx', k2: false, keys: [], ports: [P.api] },
];

/**
 * A free port below 32768: the server stores each service's membership port in a PostgreSQL smallint
 * (cluster_membership.rpc_port), and the ports the OS hands out (freePort) are above it.
 */
export async function freeMembershipPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + crypto.randomInt(12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free && claimPort(port)) return port;
  }
}

export async function freeClusterPorts(): Promise<ClusterPorts> {
  const p = freePort;
  const m = freeMembershipPort;
  return {
    postgres: await p(),
    temporal: await p(),
    temporalHttp: await p(),
    temporalMetrics: await p(),
    internal: {
      frontendMembership: await m(),
      history: await p(),
      historyMembership: await m(),
      matching: await p(),
      matchingMembership: await m(),
      worker: await p(),
      workerMembership: await m(),
    },
    ui: await p(),
    api: await p(),
    apiReplicas: [await p(), await p()],
    workers: [
      { metrics: await p(), health: await p() },
      { metrics: await p(), health: await p() },
    ],
    abs: await p(),
    gkb: await p(),
    eko: await p(),
    codec: await p(),
  };
}

export interface ClusterTools {
  server: string;
  sqlTool: string;
  uiServer: string;
  /** The server module's schema/postgresql folder. */
  schemaDir: string;
  postgresBin: string;
  nginx: string;
}

/** Where the cluster's binaries are, or why it cannot run (a sentence naming what is missing and how to get it). */
export function findClusterTools(): ClusterTools | string {
  const bin = path.join(repoRoot(), '.tools', 'bin');
  const tools = {
    server: path.join(bin, 'temporal-server'),
    sqlTool: path.join(bin, 'temporal-sql-tool'),
    uiServer: path.join(bin, 'temporal-ui-server'),
    schemaDir: path.join(repoRoot(), '.tools', 'temporal-schema', 'postgresql'),
  };
  const missing = Object.values(tools).filter((p) => !fs.existsSync(p));
  if (missing.length) return `${missing.join(', ')} missing: run scripts/install-cluster-tools.sh (builds them from Go, minutes)`;
  const pgVersion = fs.existsSync('/usr/lib/postgresql')
    ? fs
        .readdirSync('/usr/lib/postgresql')
        .sort((a, b) => Number(a) - Number(b))
        .pop()
    : undefined;
  const postgresBin = pgVersion ? path.join('/usr/lib/postgresql', pgVersion, 'bin') : '';
  if (!postgresBin || !fs.existsSync(path.join(postgresBin, 'initdb')))
    return "PostgreSQL server binaries missing under /usr/lib/postgresql: install Debian's postgresql (scripts/ci-postgres.sh does)";
  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
  if (!nginx) return 'nginx missing: run scripts/ensure-nginx.sh';
  return { ...tools, postgresBin, nginx };
}

export interface ClusterOptions {
  dataDir: string;
  ports?: ClusterPorts;
  /** Added to every K2 process's environment (payload keys, demo pace, …). */
  env?: Record<string, string>;
  /** Receives each process's output lines (besides <dataDir>/logs/<name>.log). */
  onLine?: (name: string, line: string) => void;
}

/** The K2 processes of the cluster, by name: worker-1, worker-2, api-1, api-2. */
export type ClusterK2Process = `worker-${number}` | `api-${number}`;

export interface RunningCluster {
  ports: ClusterPorts;
  dataDir: string;
  /** The K2 processes' common environment (TEMPORAL_ADDRESS, payload keys, K2_DB_URL, …): a client reads its config from it. */
  env: Record<string, string>;
  /** The API through nginx. */
  apiUrl: string;
  /** Sends the signal (default SIGKILL) to the named process and waits until it exits. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped worker or API replica again and waits until it is ready. */
  start(name: ClusterK2Process): Promise<void>;
  /** Stops the Temporal server and starts it again; waits until its frontend answers. */
  restartTemporal(): Promise<void>;
  /** Stops PostgreSQL (fast shutdown) and starts it again; waits until it accepts connections. */
  restartPostgres(): Promise<void>;
  /** Process name → pid of every process that runs. */
  pids(): Record<string, number>;
  stop(): Promise<void>;
}

/** Replaces each ${NAME} of a template; a placeholder without a value is an error (a typo must not reach a config). */
export function fillTemplate(template: string, values: Record<string, string | number>): string {
  return template.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`template placeholder \${${name}} has no value`);
    return String(values[name]);
  });
}

/** The OS user PostgreSQL runs as: initdb and postgres refuse root, so root runs them as `postgres`. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error("running as root and there is no `postgres` user to run PostgreSQL as (install Debian's postgresql)");
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** The role's password, made on the first start and kept (mode 0600) next to the databases it opens. */
function rolePassword(dataDir: string): string {
  const file = path.join(dataDir, 'postgres-password');
  if (!fs.existsSync(file)) fs.writeFileSync(file, crypto.randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const tools = findClusterTools();
  if (typeof tools === 'string') throw new Error(tools);
  const root = repoRoot();
  const ports = opts.ports ?? DEFAULT_CLUSTER_PORTS;
  const dataDir = path.resolve(opts.dataDir);
  const logDir = path.join(dataDir, 'logs');
  const runDir = path.join(dataDir, 'run');
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(runDir, { recursive: true });
  const pgUser = postgresUser();
  // PostgreSQL (as `postgres`) and nginx's workers must be able to pass through the data folder; its files keep their own modes.
  if (pgUser) fs.chmodSync(dataDir, 0o711);
  const password = rolePassword(dataDir);
  const pgUrl = (db: string) => `postgres://${DB_ROLE}:${encodeURIComponent(password)}@127.0.0.1:${ports.postgres}/${db}`;
  const apiUrl = `http://127.0.0.1:${ports.api}`;
  const systemPorts: Ports = {
    temporal: ports.temporal,
    ui: ports.ui,
    api: ports.api,
    abs: ports.abs,
    gkb: ports.gkb,
    eko: ports.eko,
    workerMetrics: ports.workers[0].metrics,
    workerHealth: ports.workers[0].health,
    codec: ports.codec,
  };
  const env = systemEnv(dataDir, systemPorts, {
    K2_DB_CLIENT: 'pg',
    K2_DB_URL: pgUrl('k2'),
    K2_DOCUMENT_STORE: 'pg',
    // EKO answers statuses through the load balancer, like every other caller.
    EKO_SIM_K2_URL: apiUrl,
    // No burst hold here: the replicas behind nginx answered about 180 single-item requests a second,
    // below the hold's 300, and the hold did not lower the p99 (bench/README.md, "topology").
    // Backlog narrowing keeps its embedded default: it raised a batch's case start rate from 0.59 to 0.83 of the floor.
    K2_DISPATCH_HOLD_RATE: '0',
    ...opts.env,
  });
  const procs = createLauncher({ root, logDir, env, onLine: opts.onLine });

  const startK2 = async (name: ClusterK2Process) => {
    const [, role, n] = /^(worker|api)-(\d+)$/.exec(name) ?? [];
    const index = Number(n) - 1;
    if (role === 'worker' && ports.workers[index]) {
      const w = ports.workers[index];
      const logFile = path.join(logDir, `${name}.log`);
      const sizeBefore = logSize(logFile);
      const worker = procs.node(
        name,
        'worker/main.js',
        { K2_WORKER_METRICS: `127.0.0.1:${w.metrics}`, K2_WORKER_HEALTH: `127.0.0.1:${w.health}` },
        WORKER_NODE_ARGS,
      );
      await waitFor(name, logShows(logFile, '"worker ready"', sizeBefore), 120_000, worker);
    } else if (role === 'api' && ports.apiReplicas[index]) {
      const port = ports.apiReplicas[index];
      const api = procs.node(name, 'api/main.js', { K2_API_PORT: String(port) });
      await waitFor(`K2 API replica ${index + 1}`, httpOk(`http://127.0.0.1:${port}/health`), 30_000, api);
    } else {
      throw new Error(`no K2 process ${name} in this cluster (workers 1..${ports.workers.length}, APIs 1..${ports.apiReplicas.length})`);
    }
  };
  const startTemporal = async () => {
    await forgetEarlierMembers(ports.postgres, password);
    const temporal = procs.launch('temporal-server', tools.server, ['--config-file', writeServerConfig(dataDir, ports, password), '--allow-no-auth', 'start']);
    await waitFor('Temporal server', () => tcpOpen(ports.temporal), 120_000, temporal);
    return temporal;
  };
  const stopNamed = async (name: string, signal: NodeJS.Signals = 'SIGINT') => {
    const proc = procs.running(name);
    if (proc) await procs.stop(proc, signal);
  };

  const cluster: RunningCluster = {
    ports,
    dataDir,
    env,
    apiUrl,
    kill: (name, signal = 'SIGKILL') => stopNamed(name, signal),
    start: startK2,
    async restartTemporal() {
      await stopNamed('temporal-server');
      const temporal = await startTemporal();
      await registerNamespace(ports.temporal, temporal); // idempotent: returns once the frontend answers for the namespace
    },
    async restartPostgres() {
      await stopNamed('postgres');
      await startPostgres(tools, dataDir, ports.postgres, password, pgUser, procs);
    },
    pids: () => procs.pids(),
    // SIGINT: K2's processes drain; PostgreSQL makes a fast shutdown; nginx and Temporal stop.
    stop: () => procs.stopAll(),
  };

  try {
    await startPostgres(tools, dataDir, ports.postgres, password, pgUser, procs);
    await setupDatabases(ports.postgres, password);
    await setupTemporalSchema(tools, ports.postgres, password);

    const temporal = await startTemporal();
    await registerNamespace(ports.temporal, temporal);

    await startSimulatorsAndCodec(procs, systemPorts);

    const ui = procs.launch('temporal-ui', tools.uiServer, ['--root', writeUiConfig(dataDir, ports), '--env', 'cluster', 'start']);
    await waitFor('Temporal UI server', () => tcpOpen(ports.ui), 60_000, ui);

    // One after the other: the first brings K2's schema up to date, so two migrations never race for knex's lock.
    for (const i of ports.workers.keys()) await startK2(`worker-${i + 1}`);
    for (const i of ports.apiReplicas.keys()) await startK2(`api-${i + 1}`);
    const nginx = procs.launch('nginx', tools.nginx, ['-p', runDir, '-c', writeNginxConfig(runDir, ports), '-e', 'stderr']);
    await waitFor('nginx', httpOk(`${apiUrl}/health`), 30_000, nginx);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** An instance of its own (initdb on the first start): the superuser and the role share the generated password; TCP on loopback only, with it. */
async function startPostgres(
  tools: ClusterTools,
  dataDir: string,
  port: number,
  password: string,
  as: { uid: number; gid: number } | undefined,
  procs: Launcher,
): Promise<void> {
  const pgData = path.join(dataDir, 'postgres');
  if (!fs.existsSync(path.join(pgData, 'PG_VERSION'))) {
    fs.mkdirSync(pgData, { recursive: true, mode: 0o700 });
    const pwFile = path.join(dataDir, 'run', 'initdb-password');
    fs.writeFileSync(pwFile, password + '\n', { mode: 0o600 });
    if (as) {
      fs.chownSync(pgData, as.uid, as.gid);
      fs.chownSync(pwFile, as.uid, as.gid);
    }
    try {
      await run(
        path.join(tools.postgresBin, 'initdb'),
        ['-D', pgData, '-U', 'postgres', `--pwfile=${pwFile}`, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8'],
        { cwd: '/', ...(as ?? {}) },
      );
    } finally {
      fs.rmSync(pwFile, { force: true });
    }
  }
  const pg = procs.launch(
    'postgres',
    path.join(tools.postgresBin, 'postgres'),
    ['-D', pgData, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${pgData}`, '-c', 'max_connections=200'],
    { as },
  );
  await waitFor('PostgreSQL', () => tcpOpen(port), 60_000, pg);
  await waitFor(
    'PostgreSQL',
    async () => {
      const c = new PgClient({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
      await c.connect();
      await c.end();
      return true;
    },
    60_000,
    pg,
  );
}

/**
 * Clears the server's membership table before it starts. The one server process is stopped, so every row is an earlier
 * run's; for 20 s after its last heartbeat a row is a bootstrap seed, and when the earlier run had other ports (a start on
 * the same data folder takes free ports) the services may not find each other for a minute ("Not enough hosts to serve the request").
 */
async function forgetEarlierMembers(port: number, password: string): Promise<void> {
  const c = new PgClient({ host: '127.0.0.1', port, user: DB_ROLE, password, database: 'temporal' });
  await c.connect();
  try {
    await c.query('DELETE FROM cluster_membership');
  } finally {
    await c.end();
  }
}

/** The role and the three databases it owns (idempotent). */
async function setupDatabases(port: number, password: string): Promise<void> {
  const c = new PgClient({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await c.connect();
  try {
    const role = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [DB_ROLE]);
    const quoted = c.escapeLiteral(password);
    await c.query(role.rowCount ? `ALTER ROLE ${DB_ROLE} LOGIN PASSWORD ${quoted}` : `CREATE ROLE ${DB_ROLE} LOGIN PASSWORD ${quoted}`);
    for (const db of DATABASES) {
      const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (!exists.rowCount) await c.query(`CREATE DATABASE ${db} OWNER ${DB_ROLE}`);
    }
  } finally {
    await c.end();
  }
}

/** setup-schema once per database (it has no schema_version table yet), then update-schema to the server version's latest (idempotent). */
async function setupTemporalSchema(tools: ClusterTools, port: number, password: string): Promise<void> {
  for (const [db, dir] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ] as const) {
    const base = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(port), '-u', DB_ROLE, '--db', db];
    // The password by its environment variable, not an argument everyone's `ps` shows.
    const toolOpts = { env: { ...process.env, SQL_PASSWORD: password } };
    const c = new PgClient({ host: '127.0.0.1', port, user: DB_ROLE, password, database: db });
    await c.connect();
    const hasSchema = (await c.query("SELECT to_regclass('schema_version') AS t")).rows[0].t !== null;
    await c.end();
    try {
      if (!hasSchema) await run(tools.sqlTool, [...base, 'setup-schema', '-v', '0.0'], toolOpts);
      await run(tools.sqlTool, [...base, 'update-schema', '-d', path.join(tools.schemaDir, 'v12', dir, 'versioned')], toolOpts);
    } catch (err: any) {
      // The tool's own output names the problem.
      throw new Error(`temporal-sql-tool on ${db} failed: ${String(err?.stderr || err?.stdout || 'no output').slice(-2000)}`);
    }
  }
}

const template = (name: string) => fs.readFileSync(path.join(repoRoot(), 'cluster', name), 'utf8');

/** cluster/temporal-server.yaml filled in for these ports. */
export function renderServerConfig(ports: ClusterPorts, password: string, dynamicConfigFile: string): string {
  const i = ports.internal;
  return fillTemplate(template('temporal-server.yaml'), {
    PG_PORT: ports.postgres,
    PG_USER: DB_ROLE,
    PG_PASSWORD: password,
    METRICS_PORT: ports.temporalMetrics,
    FRONTEND_PORT: ports.temporal,
    FRONTEND_HTTP_PORT: ports.temporalHttp,
    FRONTEND_MEMBERSHIP_PORT: i.frontendMembership,
    HISTORY_PORT: i.history,
    HISTORY_MEMBERSHIP_PORT: i.historyMembership,
    MATCHING_PORT: i.matching,
    MATCHING_MEMBERSHIP_PORT: i.matchingMembership,
    WORKER_PORT: i.worker,
    WORKER_MEMBERSHIP_PORT: i.workerMembership,
    DYNAMIC_CONFIG_FILE: dynamicConfigFile,
  });
}

/** cluster/ui-server.yaml filled in: the UI on its port, talking to the frontend, decoding through the codec server. */
export function renderUiConfig(ports: ClusterPorts): string {
  return fillTemplate(template('ui-server.yaml'), { TEMPORAL_PORT: ports.temporal, UI_PORT: ports.ui, CODEC_ENDPOINT: `http://127.0.0.1:${ports.codec}` });
}

/** cluster/nginx.conf filled in: one upstream server per API replica. */
export function renderNginxConfig(runDir: string, ports: ClusterPorts): string {
  return fillTemplate(template('nginx.conf'), {
    RUN_DIR: runDir,
    LISTEN_PORT: ports.api,
    API_SERVERS: ports.apiReplicas.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n'),
  });
}

function writeServerConfig(dataDir: string, ports: ClusterPorts, password: string): string {
  const dynamic = path.join(dataDir, 'run', 'temporal-dynamicconfig.yaml');
  fs.writeFileSync(dynamic, template('dynamicconfig.yaml'));
  const file = path.join(dataDir, 'run', 'temporal-server.yaml');
  fs.writeFileSync(file, renderServerConfig(ports, password, dynamic), { mode: 0o600 });
  return file;
}

/** The UI server reads <root>/config/<env>.yaml (env `cluster`); returns the root. */
function writeUiConfig(dataDir: string, ports: ClusterPorts): string {
  const uiRoot = path.join(dataDir, 'run', 'ui');
  fs.mkdirSync(path.join(uiRoot, 'config'), { recursive: true });
  fs.writeFileSync(path.join(uiRoot, 'config', 'cluster.yaml'), renderUiConfig(ports));
  return uiRoot;
}

function writeNginxConfig(runDir: string, ports: ClusterPorts): string {
  const file = path.join(runDir, 'nginx.conf');
  fs.writeFileSync(file, renderNginxConfig(runDir, ports));
  return file;
}

/** Namespace `default` and K2's search attributes, with the Temporal CLI; retried while the fresh server is still joining its services. */
async function registerNamespace(port: number, server: Proc): Promise<void> {
  const cli = temporalCliPath();
  const address = ['--address', `127.0.0.1:${port}`];
  await waitFor(
    'namespace default',
    async () => {
      const described = await run(cli, ['operator', 'namespace', 'describe', '--namespace', NAMESPACE, ...address]).then(
        () => true,
        () => false,
      );
      if (!described) await run(cli, ['operator', 'namespace', 'create', '--namespace', NAMESPACE, '--retention', '72h', ...address]);
      return true;
    },
    120_000,
    server,
  );
  await waitFor(
    'search attributes',
    async () => {
      const { stdout } = await run(cli, ['operator', 'search-attribute', 'list', '--namespace', NAMESPACE, '--output', 'json', ...address]);
      const missing = SEARCH_ATTRIBUTES.map((sa) => sa.split('=')).filter(([name]) => !stdout.includes(`"${name}"`));
      if (missing.length)
        await run(cli, [
          'operator',
          'search-attribute',
          'create',
          '--namespace',
          NAMESPACE,
          ...address,
          ...missing.flatMap(([name, type]) => ['--name', name, '--type', type]),
        ]);
      return missing.length === 0;
    },
    60_000,
    server,
  );
}

/** A temp data folder for a throwaway cluster (tests). */
export function tempClusterDir(prefix = 'k2-cluster-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

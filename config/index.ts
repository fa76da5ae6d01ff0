/**
 * The one place where configuration comes from: the environment, validated at start-up.
 * Every process calls loadConfig() once and fails fast with the full list of problems.
 * The README's configuration table and docker-compose.yml are checked against CONFIG_KEYS by tests.
 */
import fs from 'node:fs';
import path from 'node:path';

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Keys that were renamed: set, they stop the start-up with a problem naming the new key. Refused
 * rather than read: loadConfig has no channel for a warning that an operator would see, and a key
 * silently honoured under two names would never be cleaned out of deployments.
 */
export const RENAMED_KEYS: Record<string, string> = {
  K2_WORKER_INTAKE_BACKLOG: 'K2_WORKER_NARROW_BACKLOG',
  K2_WORKER_INTAKE_SLOTS: 'K2_WORKER_NARROW_SLOTS',
};

/** Every environment variable the system reads, with its default and meaning (the README table is generated from this). */
export const CONFIG_KEYS = {
  K2_DATA_DIR: { default: '.data', doc: 'Folder for the SQLite databases, the document store and logs.' },
  LOG_LEVEL: { default: 'info', doc: 'debug | info | warn | error.' },
  K2_DEMO: {
    default: 'false',
    doc: 'true | false. true for `npm run up` and the tests: secrets may be missing (the demo supplies its own). Outside the demo every secret is required and start-up lists each one that is missing.',
  },
  K2_PAYLOAD_KEYS: {
    default: '',
    doc: 'Keys of the payload codec (AES-256-GCM) as keyId:base64-of-32-bytes,…: the first encrypts, all decrypt (rotation: put the new key first). Key ids: 1 to 64 of A-Z a-z 0-9 . _ -. Required outside the demo (or K2_PAYLOAD_KEYS_FILE).',
  },
  K2_PAYLOAD_KEYS_FILE: { default: '', doc: 'File holding the K2_PAYLOAD_KEYS text instead of the environment (not both).' },
  K2_CODEC_HOST: { default: '127.0.0.1', doc: 'Interface the codec server (Temporal /encode and /decode for the Web UI) listens on.' },
  K2_CODEC_PORT: { default: '8094', doc: 'Port of the codec server.' },
  K2_CODEC_CORS_ORIGINS: {
    default: 'http://127.0.0.1:8233,http://localhost:8233',
    doc: 'Comma-separated origins (scheme://host:port) of the Web UI allowed to call the codec server.',
  },
  K2_CODEC_TOKEN: {
    default: '',
    doc: 'Bearer token operators (or the Web UI, forwarding it) present to the codec server; at least 16 characters; required outside the demo.',
  },

  TEMPORAL_ADDRESS: { default: '127.0.0.1:7233', doc: 'Temporal frontend gRPC address.' },
  TEMPORAL_NAMESPACE: { default: 'default', doc: 'Temporal namespace.' },
  TEMPORAL_TASK_QUEUE: { default: 'k2-cases', doc: 'Task queue of the case and batch workflows.' },
  TEMPORAL_UI_PORT: { default: '8233', doc: 'Port of the Temporal Web UI (dev server only).' },
  TEMPORAL_TLS: { default: 'false', doc: 'true | false: connect to Temporal over TLS.' },
  TEMPORAL_TLS_CA_FILE: { default: '', doc: "PEM file of the CA that signed Temporal's server certificate (default: the system CAs)." },
  TEMPORAL_TLS_CERT_FILE: { default: '', doc: 'PEM client certificate for mutual TLS to Temporal (with TEMPORAL_TLS_KEY_FILE).' },
  TEMPORAL_TLS_KEY_FILE: { default: '', doc: 'PEM private key of TEMPORAL_TLS_CERT_FILE.' },
  TEMPORAL_TLS_SERVER_NAME: { default: '', doc: "Server name to verify in Temporal's certificate (default: the host of TEMPORAL_ADDRESS)." },
  K2_WORKER_METRICS: {
    default: '127.0.0.1:9464',
    doc: 'host:port where the worker serves its Prometheus metrics at /metrics: the Temporal SDK\'s and K2\'s ABS/EKO/GKB call metrics (README "Metrics and alerts").',
  },
  K2_WORKER_WORKFLOW_SLOTS: { default: '40', doc: 'Workflow tasks the worker runs at once (the Temporal SDK default).' },
  K2_WORKER_NARROW_BACKLOG: {
    default: '200',
    doc: 'Backlog narrowing (worker/backlog-narrowing.ts): while at least this many accepted loans wait in the outbox for their case to start, the worker runs only K2_WORKER_NARROW_SLOTS workflow tasks at once (0: never). Formerly K2_WORKER_INTAKE_BACKLOG, now refused.',
  },
  K2_WORKER_NARROW_SLOTS: {
    default: '4',
    doc: 'Workflow tasks the worker runs at once while the outbox holds that backlog (2 to K2_WORKER_WORKFLOW_SLOTS). Formerly K2_WORKER_INTAKE_SLOTS, now refused.',
  },
  K2_WORKER_MAX_CACHED_WORKFLOWS: {
    default: '500',
    doc: 'Workflows the worker keeps in memory between their tasks (0 to 1000000). A case waits for statuses for days, so most cases are idle: an evicted one is replayed from its history (about 20 events) on its next task. A cached case holds about 0.35 MiB; the worker V8 heap must hold the cache (worker/heap.ts: 96 MiB + 0.5 MiB per cached case, or the worker refuses to start; every launch gives it 384 MiB, enough for 500). With 500 a worker stays well under 600 MiB with 10,000 open cases (bench/README.md, topology).',
  },
  K2_WORKER_SHUTDOWN_GRACE: {
    default: '30s',
    doc: 'On SIGTERM the worker stops polling and gives running activities this long to finish before it cancels them (a cancelled activity is retried on another worker).',
  },
  K2_WORKER_HEALTH: {
    default: '127.0.0.1:9465',
    doc: "host:port of the worker's health endpoint: GET /health (200 while it runs and polls, 503 while it shuts down), GET /ready (ok when Temporal and the database answer, else failed with 503).",
  },

  K2_DB_CLIENT: { default: 'sqlite', doc: 'sqlite | pg.' },
  K2_DB_URL: { default: '', doc: 'PostgreSQL connection string (pg) or SQLite file (sqlite; default <data>/k2.sqlite).' },

  K2_API_HOST: { default: '127.0.0.1', doc: 'Interface the K2 HTTP API listens on.' },
  K2_API_PORT: { default: '8080', doc: 'Port of the K2 HTTP API.' },
  K2_API_AUTH: { default: 'basic', doc: 'basic | bearer | none: how EKO authenticates to K2.' },
  K2_API_USER: { default: 'eko', doc: 'HTTP Basic user for EKO (K2_API_AUTH=basic).' },
  K2_API_PASSWORD: { default: '', doc: 'HTTP Basic password (required when K2_API_AUTH=basic).' },
  K2_API_TOKEN: { default: '', doc: 'Bearer token (required when K2_API_AUTH=bearer).' },
  K2_API_MAX_CONCURRENT: { default: '256', doc: 'Requests the API serves at once; more are refused as too many requests (1 to 100000).' },
  K2_API_RATE_PER_CLIENT: { default: '1000', doc: 'Requests per second one client may send; more are refused as too many requests (0: unlimited).' },
  K2_API_OPS_AUTH: {
    default: 'loopback',
    doc: 'loopback | token | open: who may read /metrics and /ready (loopback: only from 127.0.0.1/::1; token: Bearer K2_API_OPS_TOKEN from anywhere; open: anyone).',
  },
  K2_API_OPS_TOKEN: { default: '', doc: 'Bearer token for /metrics and /ready (required when K2_API_OPS_AUTH=token; at least 16 characters).' },
  K2_API_BODY_LIMIT: { default: '40mb', doc: 'Largest accepted request body (50,000 loans are about 17 MB).' },
  K2_ABS_SYSTEMS: { default: 'way4,colvir', doc: 'Comma-separated ABS system codes accepted in loans.' },
  K2_DISPATCH_BATCH: { default: '200', doc: 'Outbox rows the dispatcher hands to Temporal per round.' },
  K2_DISPATCH_CONCURRENCY: { default: '32', doc: 'Parallel workflow starts/signals of the dispatcher.' },
  K2_DISPATCH_HOLD_RATE: {
    default: '300',
    doc: 'Burst hold (api/burst-hold.ts): the dispatcher starts no case while EKO requests arrive at this many per second or more (0: never holds). The cluster topology sets 0 (scripts/cluster.ts, docker-compose.yml): measured, it did not help there (bench/README.md, "topology").',
  },
  K2_DISPATCH_HOLD_MAX: { default: '5s', doc: 'The longest the dispatcher holds back in a row; then it hands over one batch before holding again.' },
  K2_OUTBOX_MAX_ATTEMPTS: {
    default: '10',
    doc: 'Failed hand-overs to Temporal of one outbox item before it moves to the dead letters (an integer, at least 1).',
  },
  K2_OUTBOX_LEASE: {
    default: '30s',
    doc: "How long an API replica's claim on outbox rows lasts; rows claimed by a replica that died are taken over by another after it.",
  },
  K2_API_SHUTDOWN_GRACE: {
    default: '10s',
    doc: 'On SIGTERM the API stops accepting connections and waits this long for open requests before it closes them; then it stops the dispatcher and closes the database.',
  },
  K2_METRICS_INTERVAL: {
    default: '30s',
    doc: 'How often the API recounts the state gauges of its /metrics (at least 1s): cases by stage and by attention reason and the oldest case per stage (Temporal visibility), the outbox\'s oldest item, GKB packages in flight, demands by status (K2\'s database). README "Metrics and alerts".',
  },
  K2_DOCUMENT_STORE: {
    default: 'fs',
    doc: "fs | pg: where documents and GKB files are kept (fs: the folder under K2_DATA_DIR, one machine only; pg: K2's PostgreSQL database, reachable from every worker).",
  },

  ABS_GET_CLI_URL: { default: 'http://127.0.0.1:8091/abs/client', doc: 'ABS client-info service (abs_get_cli_url).' },
  ABS_GET_ACC_URL: { default: 'http://127.0.0.1:8091/abs/accounts', doc: 'ABS account-list service (abs_get_acc_url).' },
  ABS_GET_ACC_STMT_DT_URL: { default: 'http://127.0.0.1:8091/abs/statement', doc: 'ABS statement-at-date service (abs_get_acc_stmt_dt_url).' },
  ABS_GET_PDF_URL: { default: 'http://127.0.0.1:8091/abs/dbz-scan', doc: 'ABS loan-agreement scan service (abs_get_pdf_url).' },
  ABS_AUTH: { default: 'none', doc: 'none | basic | bearer: how K2 authenticates to ABS.' },
  ABS_USER: { default: '', doc: 'HTTP Basic user towards ABS (ABS_AUTH=basic).' },
  ABS_PASSWORD: { default: '', doc: 'HTTP Basic password towards ABS (required when ABS_AUTH=basic).' },
  ABS_TOKEN: { default: '', doc: 'Bearer token towards ABS (required when ABS_AUTH=bearer; at least 16 characters).' },
  ABS_TLS_CA_FILE: { default: '', doc: "PEM CA bundle trusted for ABS's HTTPS (default: the system CAs)." },
  ABS_TLS_CERT_FILE: { default: '', doc: 'PEM client certificate towards ABS (with ABS_TLS_KEY_FILE).' },
  ABS_TLS_KEY_FILE: { default: '', doc: 'PEM private key of ABS_TLS_CERT_FILE.' },
  ABS_TIMEOUT_MS: { default: '10000', doc: 'Timeout of one ABS HTTP call.' },
  ABS_DATE_FORMAT: { default: 'YYYY-MM-DD', doc: 'How dates are sent to ABS (dt of the statement, dbz_dt of the scan): YYYY-MM-DD | YYYY.MM.DD.' },
  CASE_LOCAL_ATTEMPT_TIMEOUT: {
    default: '3s',
    doc: "Timeout of one quick local attempt of a case's call (ABS, EKO, K2's database); below ABS_TIMEOUT_MS and EKO_TIMEOUT_MS. A timed-out attempt aborts its HTTP call; when the quick attempts fail, the call goes on as a regular activity.",
  },
  ABS_TRANSIENT_HORIZON: { default: '6h', doc: 'How long transient ABS trouble is retried before the case needs attention.' },
  CASE_SCAN_RECHECK: { default: '24h', doc: 'How often a case waiting for a missing scan asks ABS again.' },

  EKO_DEMAND_URL: { default: 'http://127.0.0.1:8093/eko/payment-demands', doc: 'EKO port receiving payment demands (gap G2).' },
  EKO_TIMEOUT_MS: { default: '10000', doc: 'Timeout of one call to EKO.' },
  EKO_AUTH: { default: 'none', doc: 'none | basic | bearer: how K2 authenticates to EKO.' },
  EKO_USER: { default: '', doc: 'HTTP Basic user towards EKO (EKO_AUTH=basic).' },
  EKO_PASSWORD: { default: '', doc: 'HTTP Basic password towards EKO (required when EKO_AUTH=basic).' },
  EKO_TOKEN: { default: '', doc: 'Bearer token towards EKO (required when EKO_AUTH=bearer; at least 16 characters).' },
  EKO_TLS_CA_FILE: { default: '', doc: "PEM CA bundle trusted for EKO's HTTPS (default: the system CAs)." },
  EKO_TLS_CERT_FILE: { default: '', doc: 'PEM client certificate towards EKO (with EKO_TLS_KEY_FILE).' },
  EKO_TLS_KEY_FILE: { default: '', doc: 'PEM private key of EKO_TLS_CERT_FILE.' },

  GKB_URL: { default: 'http://127.0.0.1:8092/BatchProcessingService', doc: 'GKB BatchProcessingService endpoint.' },
  GKB_CLIENT_ID: { default: 'k2-demo', doc: 'GKB HTTP Basic client id.' },
  GKB_PASSWORD: { default: '', doc: 'GKB HTTP Basic password; required outside the demo.' },
  GKB_USER_ID: { default: 'k2-operator', doc: 'GKB SOAP header userId.' },
  GKB_TLS_CA_FILE: { default: '', doc: "PEM CA bundle trusted for GKB's HTTPS (default: the system CAs)." },
  GKB_TLS_CERT_FILE: { default: '', doc: 'PEM client certificate towards GKB (with GKB_TLS_KEY_FILE).' },
  GKB_TLS_KEY_FILE: { default: '', doc: 'PEM private key of GKB_TLS_CERT_FILE.' },
  GKB_TIMEOUT_MS: { default: '60000', doc: 'Timeout of one GKB SOAP call.' },
  GKB_BATCH_INTERVAL: { default: '1h', doc: 'A GKB batch is started at least this often while records wait.' },
  GKB_BATCH_MIN_RECORDS: {
    default: '10000',
    doc: 'A GKB batch starts early, before GKB_BATCH_INTERVAL, once this many records wait: at least a full package (GKB_MAX_RECORDS_PER_FILE; GKB takes 10,000 to 50,000 contracts per upload) and at most GKB_BATCH_MAX_RECORDS.',
  },
  GKB_MAX_RECORDS_PER_FILE: { default: '10000', doc: 'Records per GKB file (GKB limit: 10,000 per package).' },
  GKB_BATCH_MAX_RECORDS: { default: '50000', doc: 'Records one batch claims (split into files of GKB_MAX_RECORDS_PER_FILE).' },
  GKB_POLL_INITIAL: { default: '1m', doc: "First wait before asking GKB for a package's import status; doubles up to GKB_POLL_MAX." },
  GKB_POLL_MAX: { default: '1h', doc: 'Longest wait between two status polls of one package.' },
  GKB_RESULT_HORIZON: { default: '3d', doc: "How long a case waits for GKB's result of its record before it needs attention (gkb-waiting); it keeps waiting." },
  GKB_DICTIONARY_JSON: {
    default: '',
    doc: 'JSON object overriding GKB dictionary ids (domain/gkb/dossier.ts DEFAULT_GKB_DICTIONARY), e.g. {"fundingType":"2","creditPurpose2":"1","creditObject":"03","branchLocationKatoId":"750000000"}. Required outside the demo with the bank\'s own fundingType, creditPurpose2, creditObject and branchLocationKatoId (the defaults are the GKB document\'s example values).',
  },

  SIM_HOST: { default: '127.0.0.1', doc: 'Interface the simulators listen on (0.0.0.0 in containers).' },
  EKO_SIM_K2_URL: { default: '', doc: 'EKO simulator: base URL of K2 for statuses (default http://127.0.0.1:K2_API_PORT).' },
  ABS_SIM_PORT: { default: '8091', doc: 'Port of the ABS simulator.' },
  GKB_SIM_PORT: { default: '8092', doc: 'Port of the GKB sandbox.' },
  EKO_SIM_PORT: { default: '8093', doc: 'Port of the EKO simulator.' },
  GKB_SIM_STEP: { default: '2s', doc: 'GKB sandbox: how long each of the first status texts lasts.' },
  GKB_SIM_PROCESSING: { default: '5s', doc: 'GKB sandbox: how long «Файл находится в процессе обработки» lasts.' },
  EKO_SIM_STATUS_DELAY: { default: '5s', doc: 'EKO simulator: delay before it answers PC1 (PC3 follows after the same delay).' },
  SIM_FAULTS: { default: '', doc: 'Fault injection for the simulators, e.g. "abs.http5xx=0.3,abs.latencyMs=200,gkb.systemFault=0.1".' },
} as const;

export type ConfigKey = keyof typeof CONFIG_KEYS;

export const ABS_DATE_FORMATS = ['YYYY-MM-DD', 'YYYY.MM.DD'] as const;
export type AbsDateFormat = (typeof ABS_DATE_FORMATS)[number];

export const OUTBOUND_AUTH_MODES = ['none', 'basic', 'bearer'] as const;
/** How K2 authenticates to ABS or EKO. */
export interface OutboundAuth {
  mode: (typeof OUTBOUND_AUTH_MODES)[number];
  user: string;
  password: string;
  token: string;
}
/** PEM files for an outbound HTTPS connection: a CA bundle to trust, a client certificate and its key. */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}
/** One key of the payload codec: AES-256-GCM, 32 bytes. */
export interface PayloadKey {
  id: string;
  key: Buffer;
}
export const OPS_AUTH_MODES = ['loopback', 'token', 'open'] as const;
/** Where documents and GKB files live: fs (one machine) or pg (every worker reaches it). */
export const DOCUMENT_STORES = ['fs', 'pg'] as const;

export interface Config {
  dataDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** K2_DEMO=true: the demo and the tests; secrets may be missing. */
  demo: boolean;
  /** The payload codec's keys, the first encrypts; empty only in the demo. */
  payloadKeys: PayloadKey[];
  codec: { host: string; port: number; corsOrigins: string[]; token: string };
  temporal: {
    address: string;
    namespace: string;
    taskQueue: string;
    uiPort: number;
    workerMetrics: string;
    /** Undefined when TEMPORAL_TLS is false. */
    tls?: TlsFiles & { serverName?: string };
  };
  db: { client: 'sqlite' | 'pg'; url: string };
  worker: {
    workflowSlots: number;
    narrowBacklog: number;
    narrowSlots: number;
    /** Workflows kept in the worker's cache (maxCachedWorkflows). */
    maxCachedWorkflows: number;
    /** How long running activities may go on after SIGTERM. */
    shutdownGraceMs: number;
    /** host:port of GET /health and /ready. */
    health: string;
  };
  documents: { store: (typeof DOCUMENT_STORES)[number] };
  api: {
    host: string;
    port: number;
    auth: { mode: 'basic' | 'bearer' | 'none'; user: string; password: string; token: string };
    /** Requests served at once. */
    maxConcurrent: number;
    /** Requests per second per client; 0 = unlimited. */
    ratePerClient: number;
    /** Who may read /metrics and /ready. */
    ops: { mode: (typeof OPS_AUTH_MODES)[number]; token: string };
    bodyLimit: string;
    absSystems: string[];
    dispatchBatch: number;
    dispatchConcurrency: number;
    dispatchHoldRate: number;
    dispatchHoldMaxMs: number;
    /** Failed hand-overs to Temporal of one outbox item before it moves to the dead letters. */
    outboxMaxAttempts: number;
    /** How long a replica's claim on outbox rows lasts. */
    outboxLeaseMs: number;
    /** How long open requests may go on after SIGTERM. */
    shutdownGraceMs: number;
    /** How often the state gauges of /metrics are recounted (observability/state-metrics.ts). */
    metricsIntervalMs: number;
  };
  abs: {
    clientUrl: string;
    accountsUrl: string;
    statementUrl: string;
    scanUrl: string;
    auth: OutboundAuth;
    tls: TlsFiles;
    timeoutMs: number;
    /** The date format ABS expects in dt and dbz_dt. */
    dateFormat: AbsDateFormat;
    /** Timeout of one local attempt of a case's call (ABS, EKO, database); below abs.timeoutMs and eko.timeoutMs. */
    localAttemptMs: number;
    transientHorizonMs: number;
    scanRecheckMs: number;
  };
  eko: { demandUrl: string; timeoutMs: number; auth: OutboundAuth; tls: TlsFiles };
  gkb: {
    url: string;
    clientId: string;
    password: string;
    tls: TlsFiles;
    userId: string;
    timeoutMs: number;
    batchIntervalMs: number;
    batchMinRecords: number;
    maxRecordsPerFile: number;
    batchMaxRecords: number;
    pollInitialMs: number;
    pollMaxMs: number;
    /** How long a case waits for GKB's result before it needs attention (gkb-waiting). */
    resultHorizonMs: number;
    /** Partial override of the GKB dictionary (validated as a JSON object here, applied in domain/gkb). */
    dictionaryOverride: Record<string, unknown>;
  };
  simulators: {
    host: string;
    ekoK2Url: string;
    absPort: number;
    gkbPort: number;
    ekoPort: number;
    ekoStatusDelayMs: number;
    gkbStepMs: number;
    gkbProcessingMs: number;
    faults: string;
  };
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '500ms', '30s', '15m', '6h', '2d' → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
}

const PAYLOAD_KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * 'keyId:base64-of-32-bytes,…' → the keys in order (the first encrypts) and the problems, each naming
 * `source` and the entry (by position, or by id once the id is valid). Never quotes key material: a
 * problem text ends up in logs.
 */
export function parsePayloadKeys(text: string, source: string): { keys: PayloadKey[]; problems: string[] } {
  const keys: PayloadKey[] = [];
  const problems: string[] = [];
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0) problems.push(`${source}: no key given (expected keyId:base64-of-32-bytes,…)`);
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    const material = colon < 0 ? '' : entry.slice(colon + 1);
    if (!PAYLOAD_KEY_ID.test(id)) {
      problems.push(`${source}: entry ${i + 1} has no valid key id (expected keyId:base64-of-32-bytes; a key id is 1 to 64 of A-Z a-z 0-9 . _ -)`);
      return;
    }
    const key = Buffer.from(material, 'base64');
    if (!BASE64.test(material) || key.toString('base64') !== material || key.length !== 32) {
      problems.push(`${source}: key "${id}" is not the base64 of exactly 32 bytes (AES-256)`);
      return;
    }
    if (keys.some((k) => k.id === id)) {
      problems.push(`${source}: key id "${id}" appears more than once`);
      return;
    }
    keys.push({ id, key });
  });
  return { keys, problems };
}

/** The problem with a PEM file option, or undefined when the file exists and is readable. */
function unreadableFile(key: string, file: string): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) return `${key}="${file}": not a file`;
    fs.accessSync(file, fs.constants.R_OK);
    return undefined;
  } catch {
    return `${key}="${file}": the file does not exist or cannot be read`;
  }
}

/** The payload keys from K2_PAYLOAD_KEYS or the K2_PAYLOAD_KEYS_FILE (one of them); `given` is false when neither is set. */
function readPayloadKeys(inline: string, file: string): { keys: PayloadKey[]; problems: string[]; given: boolean } {
  if (inline && file) return { keys: [], problems: ['K2_PAYLOAD_KEYS_FILE: set together with K2_PAYLOAD_KEYS; give the keys one way only'], given: true };
  if (inline) return { ...parsePayloadKeys(inline, 'K2_PAYLOAD_KEYS'), given: true };
  if (!file) return { keys: [], problems: [], given: false };
  const unreadable = unreadableFile('K2_PAYLOAD_KEYS_FILE', file);
  if (unreadable) return { keys: [], problems: [unreadable], given: true };
  return { ...parsePayloadKeys(fs.readFileSync(file, 'utf8'), `K2_PAYLOAD_KEYS_FILE ("${file}")`), given: true };
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = Object.entries(RENAMED_KEYS)
    .filter(([old]) => env[old] !== undefined && env[old] !== '')
    .map(([old, now]) => `${old}: renamed to ${now} (backlog narrowing, worker/backlog-narrowing.ts); set ${now} instead`);
  const get = (key: ConfigKey): string => {
    const v = env[key];
    return v === undefined || v === '' ? CONFIG_KEYS[key].default : v;
  };
  const int = (key: ConfigKey, min: number, max: number): number => {
    const raw = get(key);
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) problems.push(`${key}="${raw}": expected an integer in ${min}..${max}`);
    return n;
  };
  const port = (key: ConfigKey) => int(key, 1, 65535);
  const duration = (key: ConfigKey): number => {
    const raw = get(key);
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) problems.push(`${key}="${raw}": expected a duration such as 500ms, 30s, 15m, 6h or 2d`);
    return ms ?? 0;
  };
  const oneOf = <T extends string>(key: ConfigKey, allowed: readonly T[]): T => {
    const raw = get(key);
    if (!allowed.includes(raw as T)) problems.push(`${key}="${raw}": expected one of ${allowed.join(', ')}`);
    return raw as T;
  };
  const url = (key: ConfigKey): string => {
    const raw = get(key);
    try {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      problems.push(`${key}="${raw}": expected an http(s) URL`);
    }
    return raw;
  };

  const jsonObject = (key: ConfigKey): Record<string, unknown> => {
    const raw = get(key);
    if (!raw) return {};
    try {
      const v = JSON.parse(raw);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v;
    } catch {
      /* reported below */
    }
    problems.push(`${key}: expected a JSON object`);
    return {};
  };

  const tlsFiles = (prefix: 'TEMPORAL' | 'ABS' | 'EKO' | 'GKB'): TlsFiles => {
    const files: TlsFiles = {};
    for (const [field, key] of [
      ['caFile', `${prefix}_TLS_CA_FILE`],
      ['certFile', `${prefix}_TLS_CERT_FILE`],
      ['keyFile', `${prefix}_TLS_KEY_FILE`],
    ] as const) {
      const file = get(key);
      if (!file) continue;
      const problem = unreadableFile(key, file);
      if (problem) problems.push(problem);
      files[field] = path.resolve(file);
    }
    // A certificate without its key (or a key alone) cannot make a client certificate; a CA alone is fine.
    if (Boolean(files.certFile) !== Boolean(files.keyFile)) {
      const [given, missing] = files.certFile ? [`${prefix}_TLS_CERT_FILE`, `${prefix}_TLS_KEY_FILE`] : [`${prefix}_TLS_KEY_FILE`, `${prefix}_TLS_CERT_FILE`];
      problems.push(`${missing}: required together with ${given} (a client certificate needs its key)`);
    }
    return files;
  };
  const outboundAuth = (prefix: 'ABS' | 'EKO'): OutboundAuth => {
    const mode = oneOf(`${prefix}_AUTH`, OUTBOUND_AUTH_MODES);
    const auth = { mode, user: get(`${prefix}_USER`), password: get(`${prefix}_PASSWORD`), token: get(`${prefix}_TOKEN`) };
    if (mode === 'basic' && !auth.user) problems.push(`${prefix}_USER: required when ${prefix}_AUTH=basic`);
    if (mode === 'basic' && !auth.password) problems.push(`${prefix}_PASSWORD: required when ${prefix}_AUTH=basic`);
    if (mode === 'bearer' && auth.token.length < 16) problems.push(`${prefix}_TOKEN: at least 16 characters are required when ${prefix}_AUTH=bearer`);
    return auth;
  };

  const demo = oneOf('K2_DEMO', ['false', 'true'] as const) === 'true';
  /** A secret has no default: outside the demo a missing one is a problem (all are listed together). */
  const secret = (key: ConfigKey, what: string): string => {
    const value = get(key);
    if (!value && !demo) problems.push(`${key}: required outside the demo (${what}; K2_DEMO=true only for the demo and the tests)`);
    return value;
  };

  const keysGiven = readPayloadKeys(get('K2_PAYLOAD_KEYS'), get('K2_PAYLOAD_KEYS_FILE'));
  problems.push(...keysGiven.problems);
  if (!keysGiven.given) secret('K2_PAYLOAD_KEYS', "the payload codec's keys, or K2_PAYLOAD_KEYS_FILE");
  const payloadKeys = keysGiven.keys;

  const codecToken = secret('K2_CODEC_TOKEN', 'the bearer token of the codec server');
  if (codecToken && codecToken.length < 16) problems.push('K2_CODEC_TOKEN: at least 16 characters are required');
  const corsOrigins = get('K2_CODEC_CORS_ORIGINS')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (corsOrigins.length === 0) problems.push('K2_CODEC_CORS_ORIGINS: at least one origin of the Web UI is required');
  for (const origin of corsOrigins) {
    if (!isHttpOrigin(origin))
      problems.push(`K2_CODEC_CORS_ORIGINS: "${origin}" is not an origin such as http://127.0.0.1:8233 (http(s)://host[:port], no path)`);
  }

  const temporalTls = oneOf('TEMPORAL_TLS', ['false', 'true'] as const) === 'true';
  const temporalTlsKeys = ['TEMPORAL_TLS_CA_FILE', 'TEMPORAL_TLS_CERT_FILE', 'TEMPORAL_TLS_KEY_FILE', 'TEMPORAL_TLS_SERVER_NAME'] as const;
  // TLS settings without TEMPORAL_TLS=true would be silently ignored and the connection stay in clear.
  if (!temporalTls)
    for (const key of temporalTlsKeys) if (get(key)) problems.push(`${key}: set, but TEMPORAL_TLS is not true (the connection would not use it)`);
  const serverName = get('TEMPORAL_TLS_SERVER_NAME');
  if (serverName && !/^[A-Za-z0-9.-]+$/.test(serverName)) problems.push(`TEMPORAL_TLS_SERVER_NAME="${serverName}": expected a host name`);
  const tls = temporalTls ? { ...tlsFiles('TEMPORAL'), ...(serverName ? { serverName } : {}) } : undefined;

  const opsMode = oneOf('K2_API_OPS_AUTH', OPS_AUTH_MODES);
  const ops = { mode: opsMode, token: get('K2_API_OPS_TOKEN') };
  if (opsMode === 'token' && ops.token.length < 16) problems.push('K2_API_OPS_TOKEN: at least 16 characters are required when K2_API_OPS_AUTH=token');

  const dataDir = path.resolve(get('K2_DATA_DIR'));
  const dbClient = oneOf('K2_DB_CLIENT', ['sqlite', 'pg'] as const);
  const dbUrl = get('K2_DB_URL') || (dbClient === 'sqlite' ? path.join(dataDir, 'k2.sqlite') : '');
  if (dbClient === 'pg' && !/^postgres(ql)?:\/\//.test(dbUrl)) problems.push('K2_DB_URL: a postgres:// connection string is required when K2_DB_CLIENT=pg');

  const authMode = oneOf('K2_API_AUTH', ['basic', 'bearer', 'none'] as const);
  const auth = { mode: authMode, user: get('K2_API_USER'), password: get('K2_API_PASSWORD'), token: get('K2_API_TOKEN') };
  if (authMode === 'basic' && auth.password.length < 8) problems.push('K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic');
  if (authMode === 'bearer' && auth.token.length < 16) problems.push('K2_API_TOKEN: at least 16 characters are required when K2_API_AUTH=bearer');
  if (!/^\d+(b|kb|mb)$/i.test(get('K2_API_BODY_LIMIT'))) problems.push(`K2_API_BODY_LIMIT="${get('K2_API_BODY_LIMIT')}": expected a size such as 40mb`);

  const absSystems = get('K2_ABS_SYSTEMS')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (absSystems.length === 0) problems.push('K2_ABS_SYSTEMS: at least one ABS system code is required');

  const config: Config = {
    dataDir,
    logLevel: oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const),
    demo,
    payloadKeys,
    codec: { host: get('K2_CODEC_HOST'), port: port('K2_CODEC_PORT'), corsOrigins, token: codecToken },
    temporal: {
      address: get('TEMPORAL_ADDRESS'),
      namespace: get('TEMPORAL_NAMESPACE'),
      taskQueue: get('TEMPORAL_TASK_QUEUE'),
      uiPort: port('TEMPORAL_UI_PORT'),
      workerMetrics: get('K2_WORKER_METRICS'),
      ...(tls ? { tls } : {}),
    },
    db: { client: dbClient, url: dbUrl },
    worker: {
      workflowSlots: int('K2_WORKER_WORKFLOW_SLOTS', 2, 10_000),
      narrowBacklog: int('K2_WORKER_NARROW_BACKLOG', 0, 10_000_000),
      narrowSlots: int('K2_WORKER_NARROW_SLOTS', 2, 10_000),
      maxCachedWorkflows: int('K2_WORKER_MAX_CACHED_WORKFLOWS', 0, 1_000_000),
      shutdownGraceMs: duration('K2_WORKER_SHUTDOWN_GRACE'),
      health: get('K2_WORKER_HEALTH'),
    },
    documents: { store: oneOf('K2_DOCUMENT_STORE', DOCUMENT_STORES) },
    api: {
      host: get('K2_API_HOST'),
      port: port('K2_API_PORT'),
      auth,
      maxConcurrent: int('K2_API_MAX_CONCURRENT', 1, 100_000),
      ratePerClient: int('K2_API_RATE_PER_CLIENT', 0, 1_000_000),
      ops,
      bodyLimit: get('K2_API_BODY_LIMIT'),
      absSystems,
      dispatchBatch: int('K2_DISPATCH_BATCH', 1, 10_000),
      dispatchConcurrency: int('K2_DISPATCH_CONCURRENCY', 1, 1_000),
      dispatchHoldRate: int('K2_DISPATCH_HOLD_RATE', 0, 1_000_000),
      dispatchHoldMaxMs: duration('K2_DISPATCH_HOLD_MAX'),
      outboxMaxAttempts: int('K2_OUTBOX_MAX_ATTEMPTS', 1, 1_000_000),
      outboxLeaseMs: duration('K2_OUTBOX_LEASE'),
      shutdownGraceMs: duration('K2_API_SHUTDOWN_GRACE'),
      metricsIntervalMs: duration('K2_METRICS_INTERVAL'),
    },
    abs: {
      clientUrl: url('ABS_GET_CLI_URL'),
      accountsUrl: url('ABS_GET_ACC_URL'),
      statementUrl: url('ABS_GET_ACC_STMT_DT_URL'),
      scanUrl: url('ABS_GET_PDF_URL'),
      auth: outboundAuth('ABS'),
      tls: tlsFiles('ABS'),
      timeoutMs: int('ABS_TIMEOUT_MS', 100, 600_000),
      dateFormat: oneOf('ABS_DATE_FORMAT', ABS_DATE_FORMATS),
      localAttemptMs: duration('CASE_LOCAL_ATTEMPT_TIMEOUT'),
      transientHorizonMs: duration('ABS_TRANSIENT_HORIZON'),
      scanRecheckMs: duration('CASE_SCAN_RECHECK'),
    },
    eko: { demandUrl: url('EKO_DEMAND_URL'), timeoutMs: int('EKO_TIMEOUT_MS', 100, 600_000), auth: outboundAuth('EKO'), tls: tlsFiles('EKO') },
    gkb: {
      url: url('GKB_URL'),
      clientId: get('GKB_CLIENT_ID'),
      password: secret('GKB_PASSWORD', 'the GKB HTTP Basic password'),
      tls: tlsFiles('GKB'),
      userId: get('GKB_USER_ID'),
      timeoutMs: int('GKB_TIMEOUT_MS', 100, 3_600_000),
      batchIntervalMs: duration('GKB_BATCH_INTERVAL'),
      batchMinRecords: int('GKB_BATCH_MIN_RECORDS', 1, 1_000_000),
      maxRecordsPerFile: int('GKB_MAX_RECORDS_PER_FILE', 1, 10_000),
      batchMaxRecords: int('GKB_BATCH_MAX_RECORDS', 1, 1_000_000),
      pollInitialMs: duration('GKB_POLL_INITIAL'),
      pollMaxMs: duration('GKB_POLL_MAX'),
      resultHorizonMs: duration('GKB_RESULT_HORIZON'),
      dictionaryOverride: gkbDictionaryOverride(jsonObject('GKB_DICTIONARY_JSON'), demo, problems),
    },
    simulators: {
      host: get('SIM_HOST'),
      ekoK2Url: get('EKO_SIM_K2_URL') ? url('EKO_SIM_K2_URL') : `http://127.0.0.1:${get('K2_API_PORT')}`,
      absPort: port('ABS_SIM_PORT'),
      gkbPort: port('GKB_SIM_PORT'),
      ekoPort: port('EKO_SIM_PORT'),
      ekoStatusDelayMs: duration('EKO_SIM_STATUS_DELAY'),
      gkbStepMs: duration('GKB_SIM_STEP'),
      gkbProcessingMs: duration('GKB_SIM_PROCESSING'),
      faults: get('SIM_FAULTS'),
    },
  };
  if (!/^[\w.-]+:\d+$/.test(config.temporal.address)) problems.push(`TEMPORAL_ADDRESS="${config.temporal.address}": expected host:port`);
  if (!/^[\w.-]+:\d+$/.test(config.temporal.workerMetrics)) problems.push(`K2_WORKER_METRICS="${config.temporal.workerMetrics}": expected host:port`);
  // Each refresh costs a few dozen visibility counts: more often than every second would load Temporal for no reader.
  if (isValid('K2_METRICS_INTERVAL', problems) && config.api.metricsIntervalMs < 1000)
    problems.push(`K2_METRICS_INTERVAL="${get('K2_METRICS_INTERVAL')}": at least 1s`);
  if (!/^[\w.-]+:\d+$/.test(config.worker.health)) problems.push(`K2_WORKER_HEALTH="${config.worker.health}": expected host:port`);
  // The pg store keeps documents in K2's database: there is none with SQLite to share between machines.
  if (config.documents.store === 'pg' && config.db.client !== 'pg')
    problems.push('K2_DOCUMENT_STORE="pg": requires K2_DB_CLIENT=pg (documents are kept in K2\'s PostgreSQL database)');
  const { workflowSlots, narrowSlots } = config.worker;
  if (workflowSlots >= 2 && narrowSlots > workflowSlots)
    problems.push(`K2_WORKER_NARROW_SLOTS="${narrowSlots}": at most K2_WORKER_WORKFLOW_SLOTS (${workflowSlots})`);
  problems.push(...crossProblems(config, problems, get));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** True for 'http(s)://host[:port]' exactly as a browser sends it in its Origin header. */
function isHttpOrigin(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === text;
  } catch {
    return false;
  }
}

/** True when no problem names this key yet (a cross-check of a malformed value would only repeat it). */
function isValid(key: ConfigKey, problems: readonly string[]): boolean {
  return !problems.some((p) => p.startsWith(`${key}=`) || p.startsWith(`${key}:`));
}

/** Rules between keys, checked only when each key alone is valid. */
function crossProblems(config: Config, problems: readonly string[], get: (key: ConfigKey) => string): string[] {
  const found: string[] = [];
  const local = config.abs.localAttemptMs;
  // A local attempt that outlasts the HTTP timeout would never be cut short by its own timeout: the
  // quick attempts would each wait for the full HTTP timeout inside one workflow task.
  for (const [key, timeoutMs] of [
    ['ABS_TIMEOUT_MS', config.abs.timeoutMs],
    ['EKO_TIMEOUT_MS', config.eko.timeoutMs],
  ] as const) {
    if (isValid('CASE_LOCAL_ATTEMPT_TIMEOUT', problems) && isValid(key, problems) && local >= timeoutMs) {
      found.push(`CASE_LOCAL_ATTEMPT_TIMEOUT="${get('CASE_LOCAL_ATTEMPT_TIMEOUT')}": must be below ${key} (${timeoutMs} ms)`);
    }
  }
  // An early batch starts once a full package waits (DOMAIN.md G7): GKB wants 10,000 to 50,000
  // contracts per upload, fewer only when fewer wait in all (the scheduled batch sends those). So
  // the threshold is at least one package, and at most what one batch claims.
  const { batchMinRecords, maxRecordsPerFile, batchMaxRecords } = config.gkb;
  if (isValid('GKB_BATCH_MIN_RECORDS', problems) && isValid('GKB_MAX_RECORDS_PER_FILE', problems) && batchMinRecords < maxRecordsPerFile) {
    found.push(
      `GKB_BATCH_MIN_RECORDS="${batchMinRecords}": at least GKB_MAX_RECORDS_PER_FILE (${maxRecordsPerFile}): an early batch starts once a full package waits (GKB takes no smaller upload while more wait)`,
    );
  }
  if (isValid('GKB_BATCH_MIN_RECORDS', problems) && isValid('GKB_BATCH_MAX_RECORDS', problems) && batchMinRecords > batchMaxRecords) {
    found.push(`GKB_BATCH_MIN_RECORDS="${batchMinRecords}": at most GKB_BATCH_MAX_RECORDS (${batchMaxRecords}), the records one batch claims`);
  }
  return found;
}

/** The demo's own secrets: known to everyone, so only ever used with K2_DEMO=true. */
export const DEMO_SECRETS = { GKB_PASSWORD: 'k2-demo-secret', K2_CODEC_TOKEN: 'k2-demo-codec-token' } as const;

/**
 * Environment for the demo and tests: K2_DEMO=true, no API credential, the demo's secrets, everything
 * on loopback. The payload key is not here: the demo's key lives in .data/ (K2_PAYLOAD_KEYS_FILE).
 */
export const DEMO_ENV: Env = { K2_DEMO: 'true', K2_API_AUTH: 'none', ...DEMO_SECRETS };

/** The ids only a deployment knows (DOMAIN.md §7): the defaults are the GKB document's example values, wrong for any real bank. */
export const GKB_DEPLOYMENT_IDS = ['fundingType', 'creditPurpose2', 'creditObject', 'branchLocationKatoId'] as const;
const GKB_DICTIONARY_KEYS = ['contractPhase', 'contractStatus', 'subjectRole', 'residency', 'identification', ...GKB_DEPLOYMENT_IDS];

/** GKB_DICTIONARY_JSON checked: known keys only, the deployment ids as strings (the branch a 9-digit KATO code), all of them outside the demo. */
function gkbDictionaryOverride(override: Record<string, unknown>, demo: boolean, problems: string[]): Record<string, unknown> {
  const unknown = Object.keys(override).filter((k) => !GKB_DICTIONARY_KEYS.includes(k));
  if (unknown.length) problems.push(`GKB_DICTIONARY_JSON: unknown key(s) ${unknown.join(', ')} (known: ${GKB_DICTIONARY_KEYS.join(', ')})`);
  const missing = GKB_DEPLOYMENT_IDS.filter((key) => override[key] === undefined);
  if (missing.length && !demo)
    problems.push(
      `GKB_DICTIONARY_JSON: required outside the demo with the bank's GKB dictionary ids; missing ${missing.join(', ')} (the defaults are the GKB document's examples)`,
    );
  for (const key of GKB_DEPLOYMENT_IDS) {
    const value = override[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) {
      problems.push(`GKB_DICTIONARY_JSON: "${key}" must be a GKB dictionary id as a string of digits`);
    } else if (key === 'branchLocationKatoId' && value.length !== 9) {
      problems.push('GKB_DICTIONARY_JSON: "branchLocationKatoId" must be a 9-digit KATO code');
    }
  }
  return override;
}

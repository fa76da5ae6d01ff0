/**
 * The one place where configuration comes from: the environment, validated at start-up.
 * Every process calls loadConfig() once and fails fast with the full list of problems.
 * The README's configuration table and docker-compose.yml are checked against CONFIG_KEYS by tests.
 */
import path from 'node:path';

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Every environment variable the system reads, with its default and meaning (the README table is generated from this). */
export const CONFIG_KEYS = {
  K2_DATA_DIR: { default: '.data', doc: 'Folder for the SQLite databases, the document store and logs.' },
  LOG_LEVEL: { default: 'info', doc: 'debug | info | warn | error.' },

  TEMPORAL_ADDRESS: { default: '127.0.0.1:7233', doc: 'Temporal frontend gRPC address.' },
  TEMPORAL_NAMESPACE: { default: 'default', doc: 'Temporal namespace.' },
  TEMPORAL_TASK_QUEUE: { default: 'k2-cases', doc: 'Task queue of the case and batch workflows.' },
  TEMPORAL_UI_PORT: { default: '8233', doc: 'Port of the Temporal Web UI (dev server only).' },
  K2_WORKER_METRICS: { default: '127.0.0.1:9464', doc: 'host:port where the worker serves its Prometheus metrics (Temporal SDK metrics at /metrics).' },
  K2_WORKER_WORKFLOW_SLOTS: { default: '40', doc: 'Workflow tasks the worker runs at once (the Temporal SDK default).' },
  K2_WORKER_INTAKE_BACKLOG: { default: '200', doc: 'Intake first, worker side: while at least this many accepted loans wait in the outbox for their case to start, the worker runs only K2_WORKER_INTAKE_SLOTS workflow tasks at once (0: never).' },
  K2_WORKER_INTAKE_SLOTS: { default: '4', doc: 'Workflow tasks the worker runs at once while the outbox holds that backlog (2 to K2_WORKER_WORKFLOW_SLOTS).' },

  K2_DB_CLIENT: { default: 'sqlite', doc: 'sqlite | pg.' },
  K2_DB_URL: { default: '', doc: 'PostgreSQL connection string (pg) or SQLite file (sqlite; default <data>/k2.sqlite).' },

  K2_API_HOST: { default: '127.0.0.1', doc: 'Interface the K2 HTTP API listens on.' },
  K2_API_PORT: { default: '8080', doc: 'Port of the K2 HTTP API.' },
  K2_API_AUTH: { default: 'basic', doc: 'basic | bearer | none: how EKO authenticates to K2.' },
  K2_API_USER: { default: 'eko', doc: 'HTTP Basic user for EKO (K2_API_AUTH=basic).' },
  K2_API_PASSWORD: { default: '', doc: 'HTTP Basic password (required when K2_API_AUTH=basic).' },
  K2_API_TOKEN: { default: '', doc: 'Bearer token (required when K2_API_AUTH=bearer).' },
  K2_API_BODY_LIMIT: { default: '40mb', doc: 'Largest accepted request body (50,000 loans are about 17 MB).' },
  K2_ABS_SYSTEMS: { default: 'way4,colvir', doc: 'Comma-separated ABS system codes accepted in loans.' },
  K2_DISPATCH_BATCH: { default: '200', doc: 'Outbox rows the dispatcher hands to Temporal per round.' },
  K2_DISPATCH_CONCURRENCY: { default: '32', doc: 'Parallel workflow starts/signals of the dispatcher.' },
  K2_DISPATCH_HOLD_RATE: { default: '300', doc: 'Intake first: the dispatcher starts no case while EKO requests arrive at this many per second or more (0: never holds).' },
  K2_DISPATCH_HOLD_MAX: { default: '5s', doc: 'The longest the dispatcher holds back in a row; then it hands over one batch before holding again.' },
  K2_OUTBOX_MAX_ATTEMPTS: { default: '10', doc: 'Failed hand-overs to Temporal of one outbox item before it moves to the dead letters (an integer, at least 1).' },

  ABS_GET_CLI_URL: { default: 'http://127.0.0.1:8091/abs/client', doc: 'ABS client-info service (abs_get_cli_url).' },
  ABS_GET_ACC_URL: { default: 'http://127.0.0.1:8091/abs/accounts', doc: 'ABS account-list service (abs_get_acc_url).' },
  ABS_GET_ACC_STMT_DT_URL: { default: 'http://127.0.0.1:8091/abs/statement', doc: 'ABS statement-at-date service (abs_get_acc_stmt_dt_url).' },
  ABS_GET_PDF_URL: { default: 'http://127.0.0.1:8091/abs/dbz-scan', doc: 'ABS loan-agreement scan service (abs_get_pdf_url).' },
  ABS_TIMEOUT_MS: { default: '10000', doc: 'Timeout of one ABS HTTP call.' },
  ABS_DATE_FORMAT: { default: 'YYYY-MM-DD', doc: 'How dates are sent to ABS (dt of the statement, dbz_dt of the scan): YYYY-MM-DD | YYYY.MM.DD.' },
  CASE_LOCAL_ATTEMPT_TIMEOUT: { default: '3s', doc: 'Timeout of one quick local attempt of a case\'s call (ABS, EKO, K2\'s database); below ABS_TIMEOUT_MS and EKO_TIMEOUT_MS. A timed-out attempt aborts its HTTP call; when the quick attempts fail, the call goes on as a regular activity.' },
  ABS_TRANSIENT_HORIZON: { default: '6h', doc: 'How long transient ABS trouble is retried before the case needs attention.' },
  CASE_SCAN_RECHECK: { default: '24h', doc: 'How often a case waiting for a missing scan asks ABS again.' },

  EKO_DEMAND_URL: { default: 'http://127.0.0.1:8093/eko/payment-demands', doc: 'EKO port receiving payment demands (gap G2).' },
  EKO_TIMEOUT_MS: { default: '10000', doc: 'Timeout of one call to EKO.' },

  GKB_URL: { default: 'http://127.0.0.1:8092/BatchProcessingService', doc: 'GKB BatchProcessingService endpoint.' },
  GKB_CLIENT_ID: { default: 'k2-demo', doc: 'GKB HTTP Basic client id.' },
  GKB_PASSWORD: { default: 'k2-demo-secret', doc: 'GKB HTTP Basic password.' },
  GKB_USER_ID: { default: 'k2-operator', doc: 'GKB SOAP header userId.' },
  GKB_TIMEOUT_MS: { default: '60000', doc: 'Timeout of one GKB SOAP call.' },
  GKB_BATCH_INTERVAL: { default: '1h', doc: 'A GKB batch is started at least this often while records wait.' },
  GKB_BATCH_MIN_RECORDS: { default: '10000', doc: 'A GKB batch starts early, before GKB_BATCH_INTERVAL, once this many records wait: at least a full package (GKB_MAX_RECORDS_PER_FILE; GKB takes 10,000 to 50,000 contracts per upload) and at most GKB_BATCH_MAX_RECORDS.' },
  GKB_MAX_RECORDS_PER_FILE: { default: '10000', doc: 'Records per GKB file (GKB limit: 10,000 per package).' },
  GKB_BATCH_MAX_RECORDS: { default: '50000', doc: 'Records one batch claims (split into files of GKB_MAX_RECORDS_PER_FILE).' },
  GKB_POLL_INITIAL: { default: '1m', doc: 'First wait before asking GKB for a package\'s import status; doubles up to GKB_POLL_MAX.' },
  GKB_POLL_MAX: { default: '1h', doc: 'Longest wait between two status polls of one package.' },
  GKB_RESULT_HORIZON: { default: '3d', doc: 'How long a case waits for GKB\'s result of its record before it needs attention (gkb-waiting); it keeps waiting.' },
  GKB_DICTIONARY_JSON: { default: '', doc: 'JSON object overriding GKB dictionary ids (domain/gkb/dossier.ts DEFAULT_GKB_DICTIONARY), e.g. {"fundingType":"2","branchLocationKatoId":"750000000"}.' },

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

export interface Config {
  dataDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  temporal: { address: string; namespace: string; taskQueue: string; uiPort: number; workerMetrics: string };
  db: { client: 'sqlite' | 'pg'; url: string };
  worker: { workflowSlots: number; intakeBacklog: number; intakeSlots: number };
  api: {
    host: string;
    port: number;
    auth: { mode: 'basic' | 'bearer' | 'none'; user: string; password: string; token: string };
    bodyLimit: string;
    absSystems: string[];
    dispatchBatch: number;
    dispatchConcurrency: number;
    dispatchHoldRate: number;
    dispatchHoldMaxMs: number;
    /** Failed hand-overs to Temporal of one outbox item before it moves to the dead letters. */
    outboxMaxAttempts: number;
  };
  abs: {
    clientUrl: string;
    accountsUrl: string;
    statementUrl: string;
    scanUrl: string;
    timeoutMs: number;
    /** The date format ABS expects in dt and dbz_dt. */
    dateFormat: AbsDateFormat;
    /** Timeout of one local attempt of a case's call (ABS, EKO, database); below abs.timeoutMs and eko.timeoutMs. */
    localAttemptMs: number;
    transientHorizonMs: number;
    scanRecheckMs: number;
  };
  eko: { demandUrl: string; timeoutMs: number };
  gkb: {
    url: string;
    clientId: string;
    password: string;
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
  simulators: { host: string; ekoK2Url: string; absPort: number; gkbPort: number; ekoPort: number; ekoStatusDelayMs: number; gkbStepMs: number; gkbProcessingMs: number; faults: string };
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '500ms', '30s', '15m', '6h', '2d' → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
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

  const dataDir = path.resolve(get('K2_DATA_DIR'));
  const dbClient = oneOf('K2_DB_CLIENT', ['sqlite', 'pg'] as const);
  const dbUrl = get('K2_DB_URL') || (dbClient === 'sqlite' ? path.join(dataDir, 'k2.sqlite') : '');
  if (dbClient === 'pg' && !/^postgres(ql)?:\/\//.test(dbUrl)) problems.push('K2_DB_URL: a postgres:// connection string is required when K2_DB_CLIENT=pg');

  const authMode = oneOf('K2_API_AUTH', ['basic', 'bearer', 'none'] as const);
  const auth = { mode: authMode, user: get('K2_API_USER'), password: get('K2_API_PASSWORD'), token: get('K2_API_TOKEN') };
  if (authMode === 'basic' && auth.password.length < 8) problems.push('K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic');
  if (authMode === 'bearer' && auth.token.length < 16) problems.push('K2_API_TOKEN: at least 16 characters are required when K2_API_AUTH=bearer');
  if (!/^\d+(b|kb|mb)$/i.test(get('K2_API_BODY_LIMIT'))) problems.push(`K2_API_BODY_LIMIT="${get('K2_API_BODY_LIMIT')}": expected a size such as 40mb`);

  const absSystems = get('K2_ABS_SYSTEMS').split(',').map((s) => s.trim()).filter(Boolean);
  if (absSystems.length === 0) problems.push('K2_ABS_SYSTEMS: at least one ABS system code is required');

  const config: Config = {
    dataDir,
    logLevel: oneOf('LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const),
    temporal: {
      address: get('TEMPORAL_ADDRESS'),
      namespace: get('TEMPORAL_NAMESPACE'),
      taskQueue: get('TEMPORAL_TASK_QUEUE'),
      uiPort: port('TEMPORAL_UI_PORT'),
      workerMetrics: get('K2_WORKER_METRICS'),
    },
    db: { client: dbClient, url: dbUrl },
    worker: {
      workflowSlots: int('K2_WORKER_WORKFLOW_SLOTS', 2, 10_000),
      intakeBacklog: int('K2_WORKER_INTAKE_BACKLOG', 0, 10_000_000),
      intakeSlots: int('K2_WORKER_INTAKE_SLOTS', 2, 10_000),
    },
    api: {
      host: get('K2_API_HOST'),
      port: port('K2_API_PORT'),
      auth,
      bodyLimit: get('K2_API_BODY_LIMIT'),
      absSystems,
      dispatchBatch: int('K2_DISPATCH_BATCH', 1, 10_000),
      dispatchConcurrency: int('K2_DISPATCH_CONCURRENCY', 1, 1_000),
      dispatchHoldRate: int('K2_DISPATCH_HOLD_RATE', 0, 1_000_000),
      dispatchHoldMaxMs: duration('K2_DISPATCH_HOLD_MAX'),
      outboxMaxAttempts: int('K2_OUTBOX_MAX_ATTEMPTS', 1, 1_000_000),
    },
    abs: {
      clientUrl: url('ABS_GET_CLI_URL'),
      accountsUrl: url('ABS_GET_ACC_URL'),
      statementUrl: url('ABS_GET_ACC_STMT_DT_URL'),
      scanUrl: url('ABS_GET_PDF_URL'),
      timeoutMs: int('ABS_TIMEOUT_MS', 100, 600_000),
      dateFormat: oneOf('ABS_DATE_FORMAT', ABS_DATE_FORMATS),
      localAttemptMs: duration('CASE_LOCAL_ATTEMPT_TIMEOUT'),
      transientHorizonMs: duration('ABS_TRANSIENT_HORIZON'),
      scanRecheckMs: duration('CASE_SCAN_RECHECK'),
    },
    eko: { demandUrl: url('EKO_DEMAND_URL'), timeoutMs: int('EKO_TIMEOUT_MS', 100, 600_000) },
    gkb: {
      url: url('GKB_URL'),
      clientId: get('GKB_CLIENT_ID'),
      password: get('GKB_PASSWORD'),
      userId: get('GKB_USER_ID'),
      timeoutMs: int('GKB_TIMEOUT_MS', 100, 3_600_000),
      batchIntervalMs: duration('GKB_BATCH_INTERVAL'),
      batchMinRecords: int('GKB_BATCH_MIN_RECORDS', 1, 1_000_000),
      maxRecordsPerFile: int('GKB_MAX_RECORDS_PER_FILE', 1, 10_000),
      batchMaxRecords: int('GKB_BATCH_MAX_RECORDS', 1, 1_000_000),
      pollInitialMs: duration('GKB_POLL_INITIAL'),
      pollMaxMs: duration('GKB_POLL_MAX'),
      resultHorizonMs: duration('GKB_RESULT_HORIZON'),
      dictionaryOverride: jsonObject('GKB_DICTIONARY_JSON'),
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
  const { workflowSlots, intakeSlots } = config.worker;
  if (workflowSlots >= 2 && intakeSlots > workflowSlots) problems.push(`K2_WORKER_INTAKE_SLOTS="${intakeSlots}": at most K2_WORKER_WORKFLOW_SLOTS (${workflowSlots})`);
  problems.push(...crossProblems(config, problems, get));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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
  for (const [key, timeoutMs] of [['ABS_TIMEOUT_MS', config.abs.timeoutMs], ['EKO_TIMEOUT_MS', config.eko.timeoutMs]] as const) {
    if (isValid('CASE_LOCAL_ATTEMPT_TIMEOUT', problems) && isValid(key, problems) && local >= timeoutMs) {
      found.push(`CASE_LOCAL_ATTEMPT_TIMEOUT="${get('CASE_LOCAL_ATTEMPT_TIMEOUT')}": must be below ${key} (${timeoutMs} ms)`);
    }
  }
  // An early batch starts once a full package waits (DOMAIN.md G7): GKB wants 10,000 to 50,000
  // contracts per upload, fewer only when fewer wait in all (the scheduled batch sends those). So
  // the threshold is at least one package, and at most what one batch claims.
  const { batchMinRecords, maxRecordsPerFile, batchMaxRecords } = config.gkb;
  if (isValid('GKB_BATCH_MIN_RECORDS', problems) && isValid('GKB_MAX_RECORDS_PER_FILE', problems) && batchMinRecords < maxRecordsPerFile) {
    found.push(`GKB_BATCH_MIN_RECORDS="${batchMinRecords}": at least GKB_MAX_RECORDS_PER_FILE (${maxRecordsPerFile}): an early batch starts once a full package waits (GKB takes no smaller upload while more wait)`);
  }
  if (isValid('GKB_BATCH_MIN_RECORDS', problems) && isValid('GKB_BATCH_MAX_RECORDS', problems) && batchMinRecords > batchMaxRecords) {
    found.push(`GKB_BATCH_MIN_RECORDS="${batchMinRecords}": at most GKB_BATCH_MAX_RECORDS (${batchMaxRecords}), the records one batch claims`);
  }
  return found;
}

/** Environment for the demo and tests: no API credential, everything on loopback. */
export const DEMO_ENV: Env = { K2_API_AUTH: 'none' };

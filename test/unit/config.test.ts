/** loadConfig: defaults, validation (every problem at once, each naming its key), parseDuration. */
import path from 'node:path';
import { CONFIG_KEYS, ConfigError, DEMO_ENV, loadConfig, parseDuration } from '../../config';

/** Runs loadConfig and returns its problems (fails the test when it does not throw a ConfigError). */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('loads the defaults with K2_API_AUTH=none', () => {
    const c = loadConfig({ K2_API_AUTH: 'none' });
    expect(c.dataDir).toBe(path.resolve('.data'));
    expect(c.logLevel).toBe('info');
    expect(c.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'k2-cases', uiPort: 8233 });
    expect(c.db).toMatchObject({ client: 'sqlite', url: path.join(path.resolve('.data'), 'k2.sqlite') });
    expect(c.api.host).toBe('127.0.0.1');
    expect(c.api.port).toBe(8080);
    expect(c.api.auth).toEqual({ mode: 'none', user: 'eko', password: '', token: '' });
    expect(c.api.bodyLimit).toBe('40mb');
    expect(c.api.absSystems).toEqual(['way4', 'colvir']);
    expect(c.api.dispatchBatch).toBe(200);
    expect(c.api.dispatchConcurrency).toBe(32);
    expect(c.api.outboxMaxAttempts).toBe(10);
    expect(c.worker).toEqual({ workflowSlots: 40, intakeBacklog: 200, intakeSlots: 4 });
    expect(c.abs).toMatchObject({
      clientUrl: 'http://127.0.0.1:8091/abs/client',
      accountsUrl: 'http://127.0.0.1:8091/abs/accounts',
      statementUrl: 'http://127.0.0.1:8091/abs/statement',
      scanUrl: 'http://127.0.0.1:8091/abs/dbz-scan',
      timeoutMs: 10_000,
      dateFormat: 'YYYY-MM-DD',
      localAttemptMs: 3000,
      transientHorizonMs: 6 * 3_600_000,
      scanRecheckMs: 24 * 3_600_000,
    });
    expect(c.eko).toMatchObject({ demandUrl: 'http://127.0.0.1:8093/eko/payment-demands', timeoutMs: 10_000 });
    expect(c.gkb).toMatchObject({
      url: 'http://127.0.0.1:8092/BatchProcessingService',
      clientId: 'k2-demo',
      password: 'k2-demo-secret',
      userId: 'k2-operator',
      timeoutMs: 60_000,
      batchIntervalMs: 3_600_000,
      batchMinRecords: 10_000,
      maxRecordsPerFile: 10_000,
      resultHorizonMs: 3 * 86_400_000,
    });
    expect(c.simulators).toMatchObject({ absPort: 8091, gkbPort: 8092, ekoPort: 8093, ekoStatusDelayMs: 5000, faults: '' });
  });

  it('loads the defaults with a Basic password', () => {
    const c = loadConfig({ K2_API_PASSWORD: 'correct-horse' });
    expect(c.api.auth).toEqual({ mode: 'basic', user: 'eko', password: 'correct-horse', token: '' });
  });

  it('loads DEMO_ENV', () => {
    expect(loadConfig(DEMO_ENV).api.auth.mode).toBe('none');
  });

  it('treats an empty value as unset', () => {
    const c = loadConfig({ K2_API_AUTH: 'none', K2_API_PORT: '', LOG_LEVEL: '', GKB_BATCH_INTERVAL: '' });
    expect(c.api.port).toBe(8080);
    expect(c.logLevel).toBe('info');
    expect(c.gkb.batchIntervalMs).toBe(3_600_000);
  });

  it('does not read process.env when an environment is given', () => {
    const saved = process.env.K2_API_PORT;
    process.env.K2_API_PORT = '9999';
    try {
      expect(loadConfig({ K2_API_AUTH: 'none' }).api.port).toBe(8080);
    } finally {
      if (saved === undefined) delete process.env.K2_API_PORT;
      else process.env.K2_API_PORT = saved;
    }
  });

  it('takes overrides', () => {
    const c = loadConfig({
      K2_API_AUTH: 'bearer',
      K2_API_TOKEN: 'a-token-of-16-chars',
      K2_DB_CLIENT: 'pg',
      K2_DB_URL: 'postgresql://k2:pw@db:5432/k2',
      K2_API_PORT: '18080',
      TEMPORAL_ADDRESS: 'temporal:7233',
      GKB_BATCH_INTERVAL: '15m',
      K2_ABS_SYSTEMS: ' way4 , ,colvir,x ',
      ABS_GET_CLI_URL: 'https://abs.bank.local/cli',
    });
    expect(c.api.auth.mode).toBe('bearer');
    expect(c.db).toMatchObject({ client: 'pg', url: 'postgresql://k2:pw@db:5432/k2' });
    expect(c.api.port).toBe(18080);
    expect(c.temporal.address).toBe('temporal:7233');
    expect(c.gkb.batchIntervalMs).toBe(15 * 60_000);
    expect(c.api.absSystems).toEqual(['way4', 'colvir', 'x']);
    expect(c.abs.clientUrl).toBe('https://abs.bank.local/cli');
  });

  it('documents every key with a string default and a meaning', () => {
    for (const [key, { default: d, doc }] of Object.entries(CONFIG_KEYS)) {
      expect({ key, d: typeof d, doc: doc.length > 3 }).toEqual({ key, d: 'string', doc: true });
    }
  });
});

describe('loadConfig validation', () => {
  it('reports every problem at once, each with its key', () => {
    const bad: Record<string, string> = {
      K2_API_PORT: '99999', // port out of range
      ABS_SIM_PORT: 'eighty', // port not a number
      GKB_BATCH_INTERVAL: '1 hour', // bad duration
      CASE_SCAN_RECHECK: '0s', // zero duration
      ABS_GET_CLI_URL: 'not a url', // not a URL
      EKO_DEMAND_URL: 'ftp://eko.local/demands', // not http(s)
      K2_DB_CLIENT: 'pg', // pg without URL
      K2_API_AUTH: 'basic', // basic without password
      LOG_LEVEL: 'verbose',
      GKB_MAX_RECORDS_PER_FILE: '10001',
      K2_API_BODY_LIMIT: 'lots',
      K2_ABS_SYSTEMS: ' , ',
      TEMPORAL_ADDRESS: 'temporal',
    };
    // The key a problem names: the one that is missing for the two conditional requirements.
    const reportedAs: Record<string, string> = { K2_DB_CLIENT: 'K2_DB_URL', K2_API_AUTH: 'K2_API_PASSWORD' };
    const problems = problemsOf(bad);
    expect(problems).toHaveLength(Object.keys(bad).length);
    for (const key of Object.keys(bad).map((k) => reportedAs[k] ?? k)) {
      expect({ key, reported: problems.some((p) => p.startsWith(key)) }).toEqual({ key, reported: true });
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        'K2_API_PORT="99999": expected an integer in 1..65535',
        'ABS_SIM_PORT="eighty": expected an integer in 1..65535',
        'GKB_BATCH_INTERVAL="1 hour": expected a duration such as 500ms, 30s, 15m, 6h or 2d',
        'ABS_GET_CLI_URL="not a url": expected an http(s) URL',
        'EKO_DEMAND_URL="ftp://eko.local/demands": expected an http(s) URL',
        'K2_DB_URL: a postgres:// connection string is required when K2_DB_CLIENT=pg',
        'K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic',
      ]),
    );
  });

  it('puts every problem in the error message', () => {
    try {
      loadConfig({ K2_API_PORT: '0', GKB_BATCH_INTERVAL: 'soon' });
      throw new Error('loadConfig accepted a bad configuration');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.name).toBe('ConfigError');
      expect(e.problems).toHaveLength(3);
      for (const p of e.problems) expect(e.message).toContain(p);
      expect(e.message).toMatch(/^Invalid configuration:/);
      expect(e.message).toContain('K2_API_PORT="0"');
      expect(e.message).toContain('GKB_BATCH_INTERVAL="soon"');
      expect(e.message).toContain('K2_API_PASSWORD');
    }
  });

  it('requires a password for basic auth (default mode)', () => {
    expect(problemsOf({})).toEqual(['K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic']);
    expect(problemsOf({ K2_API_PASSWORD: 'short' })).toEqual(['K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic']);
  });

  it('requires a token for bearer auth', () => {
    expect(problemsOf({ K2_API_AUTH: 'bearer' })).toEqual(['K2_API_TOKEN: at least 16 characters are required when K2_API_AUTH=bearer']);
    expect(problemsOf({ K2_API_AUTH: 'bearer', K2_API_TOKEN: 'too-short' })).toHaveLength(1);
  });

  it('rejects an unknown auth mode and DB client', () => {
    const problems = problemsOf({ K2_API_AUTH: 'digest', K2_DB_CLIENT: 'mysql' });
    expect(problems).toEqual(
      expect.arrayContaining(['K2_API_AUTH="digest": expected one of basic, bearer, none', 'K2_DB_CLIENT="mysql": expected one of sqlite, pg']),
    );
  });

  it('requires a postgres:// URL with pg', () => {
    expect(problemsOf({ K2_API_AUTH: 'none', K2_DB_CLIENT: 'pg' })).toEqual(['K2_DB_URL: a postgres:// connection string is required when K2_DB_CLIENT=pg']);
    expect(problemsOf({ K2_API_AUTH: 'none', K2_DB_CLIENT: 'pg', K2_DB_URL: 'mysql://db/k2' })).toHaveLength(1);
    expect(loadConfig({ K2_API_AUTH: 'none', K2_DB_CLIENT: 'pg', K2_DB_URL: 'postgres://db/k2' }).db.url).toBe('postgres://db/k2');
  });

  it.each([
    ['K2_API_PORT', '0'],
    ['K2_API_PORT', '65536'],
    ['K2_API_PORT', '80.5'],
    ['K2_API_PORT', '-1'],
    ['TEMPORAL_UI_PORT', 'x'],
    ['GKB_SIM_PORT', '1e3'],
    ['EKO_SIM_PORT', ' 8093'],
    ['K2_DISPATCH_BATCH', '0'],
    ['K2_DISPATCH_CONCURRENCY', '1001'],
    ['K2_WORKER_INTAKE_SLOTS', '1'],
    ['K2_WORKER_INTAKE_SLOTS', '41'],
    ['K2_WORKER_WORKFLOW_SLOTS', '1'],
    ['ABS_TIMEOUT_MS', '99'],
    ['ABS_TRANSIENT_HORIZON', '6'],
    ['EKO_SIM_STATUS_DELAY', '5 s'],
    ['GKB_BATCH_INTERVAL', '1.5h'],
    ['GKB_URL', 'gkb.local/BatchProcessingService'],
    ['ABS_GET_PDF_URL', 'file:///etc/passwd'],
    ['TEMPORAL_ADDRESS', 'http://temporal:7233'],
    ['ABS_DATE_FORMAT', 'DD.MM.YYYY'],
    ['ABS_DATE_FORMAT', 'yyyy-mm-dd'],
    ['CASE_LOCAL_ATTEMPT_TIMEOUT', '3'],
    ['CASE_LOCAL_ATTEMPT_TIMEOUT', '0s'],
    ['K2_OUTBOX_MAX_ATTEMPTS', '0'],
    ['K2_OUTBOX_MAX_ATTEMPTS', '2.5'],
    ['K2_OUTBOX_MAX_ATTEMPTS', 'ten'],
    ['GKB_RESULT_HORIZON', '3 days'],
    ['GKB_RESULT_HORIZON', '0d'],
    ['GKB_BATCH_MIN_RECORDS', '0'],
  ])('reports %s=%j', (key, value) => {
    const problems = problemsOf({ K2_API_AUTH: 'none', [key]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${key}="`));
  });
});

describe('loadConfig: the keys of issue 12', () => {
  const base = { K2_API_AUTH: 'none' };

  it('takes the ABS date format, the local attempt timeout, the outbox attempts and the GKB result horizon', () => {
    const c = loadConfig({ ...base, ABS_DATE_FORMAT: 'YYYY.MM.DD', CASE_LOCAL_ATTEMPT_TIMEOUT: '1500ms', K2_OUTBOX_MAX_ATTEMPTS: '1', GKB_RESULT_HORIZON: '12h' });
    expect(c.abs.dateFormat).toBe('YYYY.MM.DD');
    expect(c.abs.localAttemptMs).toBe(1500);
    expect(c.api.outboxMaxAttempts).toBe(1);
    expect(c.gkb.resultHorizonMs).toBe(12 * 3_600_000);
  });

  it('requires the local attempt timeout below the ABS timeout', () => {
    expect(problemsOf({ ...base, ABS_TIMEOUT_MS: '3000' })).toEqual(['CASE_LOCAL_ATTEMPT_TIMEOUT="3s": must be below ABS_TIMEOUT_MS (3000 ms)']);
    expect(problemsOf({ ...base, CASE_LOCAL_ATTEMPT_TIMEOUT: '20s' })).toEqual([
      'CASE_LOCAL_ATTEMPT_TIMEOUT="20s": must be below ABS_TIMEOUT_MS (10000 ms)',
      'CASE_LOCAL_ATTEMPT_TIMEOUT="20s": must be below EKO_TIMEOUT_MS (10000 ms)',
    ]);
    expect(loadConfig({ ...base, ABS_TIMEOUT_MS: '3001' }).abs.localAttemptMs).toBe(3000);
  });

  it('requires the local attempt timeout below the EKO timeout', () => {
    expect(problemsOf({ ...base, EKO_TIMEOUT_MS: '2000' })).toEqual(['CASE_LOCAL_ATTEMPT_TIMEOUT="3s": must be below EKO_TIMEOUT_MS (2000 ms)']);
    expect(loadConfig({ ...base, EKO_TIMEOUT_MS: '2000', CASE_LOCAL_ATTEMPT_TIMEOUT: '1s' }).abs.localAttemptMs).toBe(1000);
  });

  it('does not repeat a malformed timeout as a cross-check problem', () => {
    expect(problemsOf({ ...base, ABS_TIMEOUT_MS: '99', CASE_LOCAL_ATTEMPT_TIMEOUT: 'soon' })).toEqual([
      'ABS_TIMEOUT_MS="99": expected an integer in 100..600000',
      'CASE_LOCAL_ATTEMPT_TIMEOUT="soon": expected a duration such as 500ms, 30s, 15m, 6h or 2d',
    ]);
  });

  it('starts an early GKB batch once a full package waits: at least GKB_MAX_RECORDS_PER_FILE, at most GKB_BATCH_MAX_RECORDS', () => {
    expect(loadConfig({ ...base, GKB_BATCH_MIN_RECORDS: '10000', GKB_MAX_RECORDS_PER_FILE: '10000' }).gkb.batchMinRecords).toBe(10_000);
    expect(loadConfig({ ...base, GKB_BATCH_MIN_RECORDS: '20000' }).gkb.batchMinRecords).toBe(20_000);
    expect(loadConfig({ ...base, GKB_BATCH_MIN_RECORDS: '500', GKB_MAX_RECORDS_PER_FILE: '500' }).gkb.batchMinRecords).toBe(500);
    expect(problemsOf({ ...base, GKB_BATCH_MIN_RECORDS: '5000' })).toEqual([
      'GKB_BATCH_MIN_RECORDS="5000": at least GKB_MAX_RECORDS_PER_FILE (10000): an early batch starts once a full package waits (GKB takes no smaller upload while more wait)',
    ]);
    expect(problemsOf({ ...base, GKB_BATCH_MIN_RECORDS: '60000' })).toEqual(['GKB_BATCH_MIN_RECORDS="60000": at most GKB_BATCH_MAX_RECORDS (50000), the records one batch claims']);
    // A malformed limit is reported once, not again as a cross-check.
    expect(problemsOf({ ...base, GKB_MAX_RECORDS_PER_FILE: '10001' })).toHaveLength(1);
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['6h', 21_600_000],
    ['2d', 172_800_000],
    ['0s', 0],
    [' 5s ', 5000],
    ['1000ms', 1000],
  ])('%j → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '10', 'h', '1.5h', '-1s', '5 s', '5S', '1w', '1h30m', 's5', 'PT5S'])('%j is malformed', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

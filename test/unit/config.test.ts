/** loadConfig: defaults, validation (every problem at once, each naming its key), parseDuration. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_KEYS, ConfigError, DEMO_ENV, DEMO_SECRETS, loadConfig, parseDuration, parsePayloadKeys } from '../../config';

/** The demo (secrets may be missing): the rules of one key are tested without the missing-secret problems. */
const DEMO = { K2_DEMO: 'true' };
/** The demo without API credentials. */
const NONE = { ...DEMO, K2_API_AUTH: 'none' };

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
  it('loads the defaults in the demo with K2_API_AUTH=none', () => {
    const c = loadConfig({ ...NONE });
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
    expect(c.worker).toEqual({
      workflowSlots: 40,
      narrowBacklog: 200,
      narrowSlots: 4,
      maxCachedWorkflows: 500,
      shutdownGraceMs: 30_000,
      health: '127.0.0.1:9465',
    });
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
      password: '',
      userId: 'k2-operator',
      timeoutMs: 60_000,
      batchIntervalMs: 3_600_000,
      batchMinRecords: 10_000,
      maxRecordsPerFile: 10_000,
      resultHorizonMs: 3 * 86_400_000,
    });
    expect(c.simulators).toMatchObject({ absPort: 8091, gkbPort: 8092, ekoPort: 8093, ekoStatusDelayMs: 5000, faults: '' });
    expect(c.demo).toBe(true);
    expect(c.payloadKeys).toEqual([]);
    expect(c.codec).toEqual({ host: '127.0.0.1', port: 8094, corsOrigins: ['http://127.0.0.1:8233', 'http://localhost:8233'], token: '' });
    expect(c.temporal.tls).toBeUndefined();
    expect('tls' in c.temporal).toBe(false);
    for (const auth of [c.abs.auth, c.eko.auth]) expect(auth).toEqual({ mode: 'none', user: '', password: '', token: '' });
    for (const tls of [c.abs.tls, c.eko.tls, c.gkb.tls]) expect(tls).toEqual({});
    expect(c.api).toMatchObject({ maxConcurrent: 256, ratePerClient: 1000, ops: { mode: 'loopback', token: '' } });
  });

  it('loads the defaults with a Basic password', () => {
    const c = loadConfig({ ...DEMO, K2_API_PASSWORD: 'correct-horse' });
    expect(c.api.auth).toEqual({ mode: 'basic', user: 'eko', password: 'correct-horse', token: '' });
  });

  it('loads DEMO_ENV: the demo, with its own secrets', () => {
    const c = loadConfig(DEMO_ENV);
    expect(c.api.auth.mode).toBe('none');
    expect(c.demo).toBe(true);
    expect(c.gkb.password).toBe(DEMO_SECRETS.GKB_PASSWORD);
    expect(c.codec.token).toBe(DEMO_SECRETS.K2_CODEC_TOKEN);
  });

  it('treats an empty value as unset', () => {
    const c = loadConfig({ ...NONE, K2_API_PORT: '', LOG_LEVEL: '', GKB_BATCH_INTERVAL: '' });
    expect(c.api.port).toBe(8080);
    expect(c.logLevel).toBe('info');
    expect(c.gkb.batchIntervalMs).toBe(3_600_000);
  });

  it('does not read process.env when an environment is given', () => {
    const saved = process.env.K2_API_PORT;
    process.env.K2_API_PORT = '9999';
    try {
      expect(loadConfig({ ...NONE }).api.port).toBe(8080);
    } finally {
      if (saved === undefined) delete process.env.K2_API_PORT;
      else process.env.K2_API_PORT = saved;
    }
  });

  it('takes overrides', () => {
    const c = loadConfig({
      ...DEMO,
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
    const problems = problemsOf({ ...DEMO, ...bad });
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
      loadConfig({ ...DEMO, K2_API_PORT: '0', GKB_BATCH_INTERVAL: 'soon' });
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
    expect(problemsOf(DEMO)).toEqual(['K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic']);
    expect(problemsOf({ ...DEMO, K2_API_PASSWORD: 'short' })).toEqual(['K2_API_PASSWORD: at least 8 characters are required when K2_API_AUTH=basic']);
  });

  it('requires a token for bearer auth', () => {
    expect(problemsOf({ ...DEMO, K2_API_AUTH: 'bearer' })).toEqual(['K2_API_TOKEN: at least 16 characters are required when K2_API_AUTH=bearer']);
    expect(problemsOf({ ...DEMO, K2_API_AUTH: 'bearer', K2_API_TOKEN: 'too-short' })).toHaveLength(1);
  });

  it('rejects an unknown auth mode and DB client', () => {
    const problems = problemsOf({ ...DEMO, K2_API_AUTH: 'digest', K2_DB_CLIENT: 'mysql' });
    expect(problems).toEqual(
      expect.arrayContaining(['K2_API_AUTH="digest": expected one of basic, bearer, none', 'K2_DB_CLIENT="mysql": expected one of sqlite, pg']),
    );
  });

  it('requires a postgres:// URL with pg', () => {
    expect(problemsOf({ ...NONE, K2_DB_CLIENT: 'pg' })).toEqual(['K2_DB_URL: a postgres:// connection string is required when K2_DB_CLIENT=pg']);
    expect(problemsOf({ ...NONE, K2_DB_CLIENT: 'pg', K2_DB_URL: 'mysql://db/k2' })).toHaveLength(1);
    expect(loadConfig({ ...NONE, K2_DB_CLIENT: 'pg', K2_DB_URL: 'postgres://db/k2' }).db.url).toBe('postgres://db/k2');
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
    ['K2_WORKER_NARROW_SLOTS', '1'],
    ['K2_WORKER_NARROW_SLOTS', '41'],
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
    const problems = problemsOf({ ...NONE, [key]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${key}="`));
  });

  it.each([
    ['K2_WORKER_INTAKE_BACKLOG', 'K2_WORKER_NARROW_BACKLOG'],
    ['K2_WORKER_INTAKE_SLOTS', 'K2_WORKER_NARROW_SLOTS'],
  ])('refuses the renamed key %s, naming %s', (old, now) => {
    expect(problemsOf({ ...NONE, [old]: '4' })).toEqual([`${old}: renamed to ${now} (backlog narrowing, worker/backlog-narrowing.ts); set ${now} instead`]);
    expect(() => loadConfig({ ...NONE, [old]: '' })).not.toThrow(); // an empty value counts as unset, as for every key
  });
});

describe('loadConfig: the keys of issue 12', () => {
  const base = NONE;

  it('takes the ABS date format, the local attempt timeout, the outbox attempts and the GKB result horizon', () => {
    const c = loadConfig({
      ...base,
      ABS_DATE_FORMAT: 'YYYY.MM.DD',
      CASE_LOCAL_ATTEMPT_TIMEOUT: '1500ms',
      K2_OUTBOX_MAX_ATTEMPTS: '1',
      GKB_RESULT_HORIZON: '12h',
    });
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
    expect(problemsOf({ ...base, GKB_BATCH_MIN_RECORDS: '60000' })).toEqual([
      'GKB_BATCH_MIN_RECORDS="60000": at most GKB_BATCH_MAX_RECORDS (50000), the records one batch claims',
    ]);
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

describe('loadConfig: the keys of issue 13', () => {
  const KEY_A = Buffer.alloc(32, 1).toString('base64');
  const KEY_B = Buffer.alloc(32, 2).toString('base64');
  /** Everything a production start needs (outside the demo). */
  const BANK_DICTIONARY = JSON.stringify({ fundingType: '2', creditPurpose2: '1', creditObject: '03', branchLocationKatoId: '750000000' });
  const PRODUCTION = {
    K2_API_PASSWORD: 'correct-horse',
    K2_PAYLOAD_KEYS: `k1:${KEY_A}`,
    GKB_PASSWORD: 'gkb-secret',
    K2_CODEC_TOKEN: 'a-codec-token-of-24-chars',
    GKB_DICTIONARY_JSON: BANK_DICTIONARY,
  };
  let tmp: string;
  const file = (name: string, text = 'pem'): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return f;
  };

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-config-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('outside the demo', () => {
    it('is not the demo unless K2_DEMO=true', () => {
      expect(loadConfig(PRODUCTION).demo).toBe(false);
      expect(loadConfig({ ...PRODUCTION, K2_DEMO: 'false' }).demo).toBe(false);
      expect(problemsOf({ ...PRODUCTION, K2_DEMO: 'yes' })).toEqual(['K2_DEMO="yes": expected one of false, true']);
    });

    it('loads with every secret given', () => {
      const c = loadConfig(PRODUCTION);
      expect(c.payloadKeys).toEqual([{ id: 'k1', key: Buffer.alloc(32, 1) }]);
      expect(c.gkb.password).toBe('gkb-secret');
      expect(c.codec.token).toBe('a-codec-token-of-24-chars');
    });

    it('lists every missing secret together', () => {
      expect(problemsOf({ K2_API_AUTH: 'none' })).toEqual([
        "K2_PAYLOAD_KEYS: required outside the demo (the payload codec's keys, or K2_PAYLOAD_KEYS_FILE; K2_DEMO=true only for the demo and the tests)",
        'K2_CODEC_TOKEN: required outside the demo (the bearer token of the codec server; K2_DEMO=true only for the demo and the tests)',
        'GKB_PASSWORD: required outside the demo (the GKB HTTP Basic password; K2_DEMO=true only for the demo and the tests)',
        "GKB_DICTIONARY_JSON: required outside the demo with the bank's GKB dictionary ids; missing fundingType, creditPurpose2, creditObject, branchLocationKatoId (the defaults are the GKB document's examples)",
      ]);
      const all = problemsOf({ ABS_AUTH: 'basic', EKO_AUTH: 'bearer' }).map((p) => p.split(':')[0]);
      expect(all.sort()).toEqual([
        'ABS_PASSWORD',
        'ABS_USER',
        'EKO_TOKEN',
        'GKB_DICTIONARY_JSON',
        'GKB_PASSWORD',
        'K2_API_PASSWORD',
        'K2_CODEC_TOKEN',
        'K2_PAYLOAD_KEYS',
      ]);
    });

    it('gives no secret a working default', () => {
      for (const key of [
        'K2_PAYLOAD_KEYS',
        'K2_PAYLOAD_KEYS_FILE',
        'K2_CODEC_TOKEN',
        'GKB_PASSWORD',
        'K2_API_PASSWORD',
        'K2_API_TOKEN',
        'K2_API_OPS_TOKEN',
        'ABS_PASSWORD',
        'ABS_TOKEN',
        'EKO_PASSWORD',
        'EKO_TOKEN',
      ] as const) {
        expect({ key, default: CONFIG_KEYS[key].default }).toEqual({ key, default: '' });
      }
    });

    it("wants the bank's own GKB dictionary ids, not the document's examples", () => {
      expect(loadConfig(PRODUCTION).gkb.dictionaryOverride).toMatchObject({ branchLocationKatoId: '750000000' });
      expect(problemsOf({ ...PRODUCTION, GKB_DICTIONARY_JSON: JSON.stringify({ fundingType: '2', creditPurpose2: '1' }) })).toEqual([
        "GKB_DICTIONARY_JSON: required outside the demo with the bank's GKB dictionary ids; missing creditObject, branchLocationKatoId (the defaults are the GKB document's examples)",
      ]);
      const wrong = { fundingType: 2, creditPurpose2: '1', creditObject: '03', branchLocationKatoId: '7500', fundingTyp: '2' };
      expect(problemsOf({ ...PRODUCTION, GKB_DICTIONARY_JSON: JSON.stringify(wrong) })).toEqual([
        'GKB_DICTIONARY_JSON: unknown key(s) fundingTyp (known: contractPhase, contractStatus, subjectRole, residency, identification, fundingType, creditPurpose2, creditObject, branchLocationKatoId)',
        'GKB_DICTIONARY_JSON: "fundingType" must be a GKB dictionary id as a string of digits',
        'GKB_DICTIONARY_JSON: "branchLocationKatoId" must be a 9-digit KATO code',
      ]);
      // The demo runs on the document's examples.
      expect(loadConfig({ K2_DEMO: 'true', K2_API_AUTH: 'none' }).gkb.dictionaryOverride).toEqual({});
    });

    it('takes the keys from K2_PAYLOAD_KEYS_FILE instead', () => {
      const c = loadConfig({ ...PRODUCTION, K2_PAYLOAD_KEYS: '', K2_PAYLOAD_KEYS_FILE: file('keys', `new:${KEY_B}\nold:${KEY_A}\n`) });
      expect(c.payloadKeys.map((k) => k.id)).toEqual(['new', 'old']);
    });
  });

  describe('payload keys', () => {
    it('keeps their order: the first encrypts', () => {
      const c = loadConfig({ ...NONE, K2_PAYLOAD_KEYS: ` 2026-12:${KEY_B} , 2026-01.a_b-c:${KEY_A}` });
      expect(c.payloadKeys).toEqual([
        { id: '2026-12', key: Buffer.alloc(32, 2) },
        { id: '2026-01.a_b-c', key: Buffer.alloc(32, 1) },
      ]);
    });

    it.each([
      ['a key of 31 bytes', `k1:${Buffer.alloc(31, 1).toString('base64')}`, 'K2_PAYLOAD_KEYS: key "k1" is not the base64 of exactly 32 bytes (AES-256)'],
      ['a key of 33 bytes', `k1:${Buffer.alloc(33, 1).toString('base64')}`, 'K2_PAYLOAD_KEYS: key "k1" is not the base64 of exactly 32 bytes (AES-256)'],
      ['a key not in base64', `k1:${'!'.repeat(44)}`, 'K2_PAYLOAD_KEYS: key "k1" is not the base64 of exactly 32 bytes (AES-256)'],
      ['a key without its padding', `k1:${KEY_A.replace(/=+$/, '')}`, 'K2_PAYLOAD_KEYS: key "k1" is not the base64 of exactly 32 bytes (AES-256)'],
      ['no key id', KEY_A, 'K2_PAYLOAD_KEYS: entry 1 has no valid key id (expected keyId:base64-of-32-bytes; a key id is 1 to 64 of A-Z a-z 0-9 . _ -)'],
      [
        'an empty key id',
        `k1:${KEY_A},:${KEY_B}`,
        'K2_PAYLOAD_KEYS: entry 2 has no valid key id (expected keyId:base64-of-32-bytes; a key id is 1 to 64 of A-Z a-z 0-9 . _ -)',
      ],
      [
        'a key id with a space',
        `my key:${KEY_A}`,
        'K2_PAYLOAD_KEYS: entry 1 has no valid key id (expected keyId:base64-of-32-bytes; a key id is 1 to 64 of A-Z a-z 0-9 . _ -)',
      ],
      [
        'a key id of 65 characters',
        `${'k'.repeat(65)}:${KEY_A}`,
        'K2_PAYLOAD_KEYS: entry 1 has no valid key id (expected keyId:base64-of-32-bytes; a key id is 1 to 64 of A-Z a-z 0-9 . _ -)',
      ],
      ['a key id twice', `k1:${KEY_A},k1:${KEY_B}`, 'K2_PAYLOAD_KEYS: key id "k1" appears more than once'],
      ['only separators', ' , ,', 'K2_PAYLOAD_KEYS: no key given (expected keyId:base64-of-32-bytes,…)'],
    ])('reports %s, naming the key and never its material', (_what, value, problem) => {
      const problems = problemsOf({ ...NONE, K2_PAYLOAD_KEYS: value });
      expect(problems).toEqual([problem]);
      for (const material of [KEY_A, KEY_B, KEY_A.slice(0, 20), KEY_B.slice(0, 20)]) expect(problems[0]).not.toContain(material);
    });

    it('accepts a key id of 64 characters', () => {
      expect(loadConfig({ ...NONE, K2_PAYLOAD_KEYS: `${'k'.repeat(64)}:${KEY_A}` }).payloadKeys).toHaveLength(1);
    });

    it('refuses both K2_PAYLOAD_KEYS and K2_PAYLOAD_KEYS_FILE', () => {
      expect(problemsOf({ ...PRODUCTION, K2_PAYLOAD_KEYS_FILE: file('keys', `k2:${KEY_B}`) })).toEqual([
        'K2_PAYLOAD_KEYS_FILE: set together with K2_PAYLOAD_KEYS; give the keys one way only',
      ]);
    });

    it('reports a missing key file and a wrong key in the file, naming the file', () => {
      const missing = path.join(tmp, 'nope');
      expect(problemsOf({ ...NONE, K2_PAYLOAD_KEYS_FILE: missing })).toEqual([`K2_PAYLOAD_KEYS_FILE="${missing}": the file does not exist or cannot be read`]);
      const bad = file('bad', `k1:${KEY_A}\nk2:short\n`);
      expect(problemsOf({ ...NONE, K2_PAYLOAD_KEYS_FILE: bad })).toEqual([
        `K2_PAYLOAD_KEYS_FILE ("${bad}"): key "k2" is not the base64 of exactly 32 bytes (AES-256)`,
      ]);
    });

    it('parsePayloadKeys reports every wrong entry and keeps the good ones', () => {
      const { keys, problems } = parsePayloadKeys(`a:${KEY_A},b:x,c:${KEY_B},a:${KEY_B}`, 'SOURCE');
      expect(keys.map((k) => k.id)).toEqual(['a', 'c']);
      expect(problems).toEqual(['SOURCE: key "b" is not the base64 of exactly 32 bytes (AES-256)', 'SOURCE: key id "a" appears more than once']);
    });
  });

  describe('TLS files', () => {
    it('connects to Temporal in clear unless TEMPORAL_TLS=true', () => {
      expect(loadConfig(NONE).temporal.tls).toBeUndefined();
      expect(loadConfig({ ...NONE, TEMPORAL_TLS: 'true' }).temporal.tls).toEqual({});
      expect(problemsOf({ ...NONE, TEMPORAL_TLS: 'yes' })).toEqual(['TEMPORAL_TLS="yes": expected one of false, true']);
    });

    it('takes a CA alone, or a client certificate with its key, and a server name', () => {
      const ca = file('ca.pem');
      const cert = file('cert.pem');
      const key = file('key.pem');
      expect(loadConfig({ ...NONE, TEMPORAL_TLS: 'true', TEMPORAL_TLS_CA_FILE: ca }).temporal.tls).toEqual({ caFile: ca });
      const full = {
        ...NONE,
        TEMPORAL_TLS: 'true',
        TEMPORAL_TLS_CA_FILE: ca,
        TEMPORAL_TLS_CERT_FILE: cert,
        TEMPORAL_TLS_KEY_FILE: key,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.bank.local',
      };
      expect(loadConfig(full).temporal.tls).toEqual({ caFile: ca, certFile: cert, keyFile: key, serverName: 'temporal.bank.local' });
    });

    it('refuses TLS settings while TEMPORAL_TLS is not true (they would be ignored)', () => {
      expect(problemsOf({ ...NONE, TEMPORAL_TLS_CA_FILE: file('ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'temporal' })).toEqual([
        'TEMPORAL_TLS_CA_FILE: set, but TEMPORAL_TLS is not true (the connection would not use it)',
        'TEMPORAL_TLS_SERVER_NAME: set, but TEMPORAL_TLS is not true (the connection would not use it)',
      ]);
    });

    it('refuses a server name that is not a host name', () => {
      expect(problemsOf({ ...NONE, TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_NAME: 'https://temporal' })).toEqual([
        'TEMPORAL_TLS_SERVER_NAME="https://temporal": expected a host name',
      ]);
    });

    it.each(['TEMPORAL', 'ABS', 'EKO', 'GKB'])('%s: files must exist and be files; certificate and key go together', (prefix) => {
      const on: Record<string, string> = prefix === 'TEMPORAL' ? { TEMPORAL_TLS: 'true' } : {};
      const missing = path.join(tmp, 'missing.pem');
      expect(problemsOf({ ...NONE, ...on, [`${prefix}_TLS_CA_FILE`]: missing })).toEqual([
        `${prefix}_TLS_CA_FILE="${missing}": the file does not exist or cannot be read`,
      ]);
      expect(problemsOf({ ...NONE, ...on, [`${prefix}_TLS_CA_FILE`]: tmp })).toEqual([`${prefix}_TLS_CA_FILE="${tmp}": not a file`]);
      expect(problemsOf({ ...NONE, ...on, [`${prefix}_TLS_CERT_FILE`]: file('cert.pem') })).toEqual([
        `${prefix}_TLS_KEY_FILE: required together with ${prefix}_TLS_CERT_FILE (a client certificate needs its key)`,
      ]);
      expect(problemsOf({ ...NONE, ...on, [`${prefix}_TLS_KEY_FILE`]: file('key.pem') })).toEqual([
        `${prefix}_TLS_CERT_FILE: required together with ${prefix}_TLS_KEY_FILE (a client certificate needs its key)`,
      ]);
    });

    it('gives ABS, EKO and GKB their files (relative paths resolved)', () => {
      const ca = file('ca.pem');
      const cert = file('cert.pem');
      const key = file('key.pem');
      const relativeCa = path.relative(process.cwd(), ca);
      const c = loadConfig({
        ...NONE,
        ABS_TLS_CA_FILE: relativeCa,
        EKO_TLS_CERT_FILE: cert,
        EKO_TLS_KEY_FILE: key,
        GKB_TLS_CA_FILE: ca,
        GKB_TLS_CERT_FILE: cert,
        GKB_TLS_KEY_FILE: key,
      });
      expect(c.abs.tls).toEqual({ caFile: ca });
      expect(c.eko.tls).toEqual({ certFile: cert, keyFile: key });
      expect(c.gkb.tls).toEqual({ caFile: ca, certFile: cert, keyFile: key });
    });
  });

  describe('credentials towards ABS and EKO', () => {
    it.each(['ABS', 'EKO'])('%s: basic needs user and password, bearer a token of 16 characters', (prefix) => {
      const field = prefix === 'ABS' ? 'abs' : 'eko';
      expect(loadConfig({ ...NONE, [`${prefix}_AUTH`]: 'basic', [`${prefix}_USER`]: 'k2', [`${prefix}_PASSWORD`]: 'pw' })[field].auth).toEqual({
        mode: 'basic',
        user: 'k2',
        password: 'pw',
        token: '',
      });
      expect(loadConfig({ ...NONE, [`${prefix}_AUTH`]: 'bearer', [`${prefix}_TOKEN`]: 't'.repeat(16) })[field].auth).toEqual({
        mode: 'bearer',
        user: '',
        password: '',
        token: 't'.repeat(16),
      });
      expect(problemsOf({ ...NONE, [`${prefix}_AUTH`]: 'basic' })).toEqual([
        `${prefix}_USER: required when ${prefix}_AUTH=basic`,
        `${prefix}_PASSWORD: required when ${prefix}_AUTH=basic`,
      ]);
      expect(problemsOf({ ...NONE, [`${prefix}_AUTH`]: 'basic', [`${prefix}_USER`]: 'k2' })).toEqual([
        `${prefix}_PASSWORD: required when ${prefix}_AUTH=basic`,
      ]);
      expect(problemsOf({ ...NONE, [`${prefix}_AUTH`]: 'bearer', [`${prefix}_TOKEN`]: 't'.repeat(15) })).toEqual([
        `${prefix}_TOKEN: at least 16 characters are required when ${prefix}_AUTH=bearer`,
      ]);
      expect(problemsOf({ ...NONE, [`${prefix}_AUTH`]: 'digest' })).toEqual([`${prefix}_AUTH="digest": expected one of none, basic, bearer`]);
    });
  });

  describe('codec server', () => {
    it('takes host, port, origins and token', () => {
      const c = loadConfig({
        ...NONE,
        K2_CODEC_HOST: '0.0.0.0',
        K2_CODEC_PORT: '18094',
        K2_CODEC_CORS_ORIGINS: 'https://temporal-ui.bank.local, http://127.0.0.1:18233',
        K2_CODEC_TOKEN: 'x'.repeat(16),
      });
      expect(c.codec).toEqual({
        host: '0.0.0.0',
        port: 18094,
        corsOrigins: ['https://temporal-ui.bank.local', 'http://127.0.0.1:18233'],
        token: 'x'.repeat(16),
      });
    });

    it.each([
      [
        'http://127.0.0.1:8233/',
        'K2_CODEC_CORS_ORIGINS: "http://127.0.0.1:8233/" is not an origin such as http://127.0.0.1:8233 (http(s)://host[:port], no path)',
      ],
      [
        'https://ui.bank.local/namespaces',
        'K2_CODEC_CORS_ORIGINS: "https://ui.bank.local/namespaces" is not an origin such as http://127.0.0.1:8233 (http(s)://host[:port], no path)',
      ],
      ['localhost:8233', 'K2_CODEC_CORS_ORIGINS: "localhost:8233" is not an origin such as http://127.0.0.1:8233 (http(s)://host[:port], no path)'],
      ['*', 'K2_CODEC_CORS_ORIGINS: "*" is not an origin such as http://127.0.0.1:8233 (http(s)://host[:port], no path)'],
      [' , ', 'K2_CODEC_CORS_ORIGINS: at least one origin of the Web UI is required'],
    ])('refuses the origins %j', (origins, problem) => {
      expect(problemsOf({ ...NONE, K2_CODEC_CORS_ORIGINS: origins })).toEqual([problem]);
    });

    it('refuses a short token and a bad port', () => {
      expect(problemsOf({ ...NONE, K2_CODEC_TOKEN: 'short' })).toEqual(['K2_CODEC_TOKEN: at least 16 characters are required']);
      expect(problemsOf({ ...NONE, K2_CODEC_PORT: '0' })).toEqual(['K2_CODEC_PORT="0": expected an integer in 1..65535']);
    });
  });

  describe('API limits and the operations endpoints', () => {
    it('takes the limits; a rate of 0 is unlimited', () => {
      const c = loadConfig({ ...NONE, K2_API_MAX_CONCURRENT: '1', K2_API_RATE_PER_CLIENT: '0' });
      expect(c.api).toMatchObject({ maxConcurrent: 1, ratePerClient: 0 });
    });

    it.each([
      ['K2_API_MAX_CONCURRENT', '0'],
      ['K2_API_MAX_CONCURRENT', '100001'],
      ['K2_API_MAX_CONCURRENT', 'many'],
      ['K2_API_RATE_PER_CLIENT', '-1'],
      ['K2_API_RATE_PER_CLIENT', '2.5'],
      ['K2_API_OPS_AUTH', 'basic'],
    ])('reports %s=%j', (key, value) => {
      const problems = problemsOf({ ...NONE, [key]: value });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${key}="${value}": expected`));
    });

    it('guards /metrics and /ready with a token of 16 characters when K2_API_OPS_AUTH=token', () => {
      expect(loadConfig({ ...NONE, K2_API_OPS_AUTH: 'open' }).api.ops).toEqual({ mode: 'open', token: '' });
      expect(loadConfig({ ...NONE, K2_API_OPS_AUTH: 'token', K2_API_OPS_TOKEN: 'o'.repeat(16) }).api.ops).toEqual({ mode: 'token', token: 'o'.repeat(16) });
      expect(problemsOf({ ...NONE, K2_API_OPS_AUTH: 'token' })).toEqual(['K2_API_OPS_TOKEN: at least 16 characters are required when K2_API_OPS_AUTH=token']);
      expect(problemsOf({ ...NONE, K2_API_OPS_AUTH: 'token', K2_API_OPS_TOKEN: 'o'.repeat(15) })).toHaveLength(1);
    });
  });
});

describe('loadConfig: the keys of issue 14', () => {
  it('has the production defaults: outbox lease, document store, worker cache, grace times, health endpoint', () => {
    const c = loadConfig({ ...NONE });
    expect(c.api).toMatchObject({ outboxLeaseMs: 30_000, shutdownGraceMs: 10_000 });
    expect(c.documents).toEqual({ store: 'fs' });
    expect(c.worker).toMatchObject({ maxCachedWorkflows: 500, shutdownGraceMs: 30_000, health: '127.0.0.1:9465' });
  });

  it('takes overrides', () => {
    const c = loadConfig({
      ...NONE,
      K2_DB_CLIENT: 'pg',
      K2_DB_URL: 'postgres://k2:k2@db:5432/k2',
      K2_OUTBOX_LEASE: '1m',
      K2_DOCUMENT_STORE: 'pg',
      K2_WORKER_MAX_CACHED_WORKFLOWS: '0',
      K2_WORKER_SHUTDOWN_GRACE: '2m',
      K2_WORKER_HEALTH: '0.0.0.0:9000',
      K2_API_SHUTDOWN_GRACE: '500ms',
    });
    expect(c.api).toMatchObject({ outboxLeaseMs: 60_000, shutdownGraceMs: 500 });
    expect(c.documents.store).toBe('pg');
    expect(c.worker).toMatchObject({ maxCachedWorkflows: 0, shutdownGraceMs: 120_000, health: '0.0.0.0:9000' });
  });

  it.each([
    ['K2_OUTBOX_LEASE', 'soon'],
    ['K2_OUTBOX_LEASE', '0s'],
    ['K2_WORKER_SHUTDOWN_GRACE', '30'],
    ['K2_API_SHUTDOWN_GRACE', '-1s'],
    ['K2_WORKER_MAX_CACHED_WORKFLOWS', '-1'],
    ['K2_WORKER_MAX_CACHED_WORKFLOWS', '1.5'],
    ['K2_WORKER_HEALTH', '9465'],
    ['K2_WORKER_HEALTH', 'http://127.0.0.1:9465'],
    ['K2_DOCUMENT_STORE', 's3'],
  ])('refuses %s="%s"', (key, value) => {
    const problems = problemsOf({ ...NONE, [key]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${key}="${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": expected`));
  });

  it('keeps documents in PostgreSQL only when K2 runs on PostgreSQL', () => {
    expect(problemsOf({ ...NONE, K2_DOCUMENT_STORE: 'pg' })).toEqual([
      'K2_DOCUMENT_STORE="pg": requires K2_DB_CLIENT=pg (documents are kept in K2\'s PostgreSQL database)',
    ]);
  });
});

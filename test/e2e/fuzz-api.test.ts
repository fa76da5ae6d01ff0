/**
 * Bad input, from an independent reading (issue 15): schemathesis (PyPI, pinned by
 * scripts/ensure-schemathesis.sh) reads the OpenAPI document the real K2 API serves and fuzzes both
 * services with HTTP Basic credentials (K2's default K2_API_AUTH), so its requests reach the handlers.
 * The whole system runs as processes (scripts/system.ts); a few demo loans go first, so that real
 * demands exist and statuses for them can be fuzzed too.
 *
 * schemathesis checks each answer: no 5xx, the documented status codes and answer schema (each HTTP
 * status with its own error codes), no answer without credentials, no schema-invalid body accepted,
 * and the hooks' checks (test/fixtures/fuzz/hooks.py): every answer a code of the README's table at
 * its HTTP status, and no excerpt of a body that is not JSON in error_text. Afterwards this test reads
 * the cassette (every request and answer) against K2's database and Temporal: nothing accepted from
 * a rejected request (no outbox row, no case, no status change), nothing lost from an accepted one.
 * A contract named by both accepted and rejected requests is allowed exactly the accepted requests'
 * rows (test/helpers/fuzz-cassette.ts). Violations name the cassette entries (schemathesis test case ids).
 *
 * Bounded and seeded for CI (a few hundred requests); `npm run fuzz -- --max-examples 5000 --seed 7`
 * runs it longer (extra arguments go to `st run` after the defaults). The cassette and schemathesis's
 * output stay in artifacts/fuzz-api/ (git-ignored). Needs dist/ (scripts/test.sh builds it first).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../../config';
import { caseWorkflowId } from '../../domain/case';
import { generateBin, generateIin, generateKzIban, mulberry32 } from '../../domain/generate';
import { repoRoot } from '../../scripts/system';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { e2eSystem } from '../helpers/e2e-system';
import {
  caseViolations,
  contractTrails,
  demandStatusViolations,
  failedCheckLines,
  isAccepted,
  LOANS_PATH,
  outboxViolations,
  readCassette,
  readmeErrorCodes,
  STATUS_PATH,
  type Exchange,
} from '../helpers/fuzz-cassette';

/** Extra `st run` arguments from `npm run fuzz -- …` (scripts/fuzz.sh), as a JSON array. */
const EXTRA_ARGS: string[] = process.env.K2_FUZZ_ST_ARGS ? JSON.parse(process.env.K2_FUZZ_ST_ARGS) : [];
jest.setTimeout(EXTRA_ARGS.length ? 24 * 3600_000 : 600_000);

const ROOT = repoRoot();
const OUT = path.join(ROOT, 'artifacts', 'fuzz-api');
const HOOKS = path.join(ROOT, 'test', 'fixtures', 'fuzz', 'hooks.py');
const PASSWORD = 'fuzz-api-password';
const SEED = 20261201;
/** Examples per operation and phase: with the coverage phase a few hundred requests in all. */
const MAX_EXAMPLES = 100;
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'ignored_auth',
  'k2_documented_answer',
  'k2_error_text_quotes_no_body',
];

/** Runs scripts/ensure-schemathesis.sh: the st binary, or why it cannot be had here (PyPI unreachable). A broken install fails the test. */
function ensureSchemathesis(): { st: string } | { unavailable: string } {
  const run = spawnSync('bash', [path.join(ROOT, 'scripts', 'ensure-schemathesis.sh')], { encoding: 'utf8', timeout: 20 * 60_000 });
  if (run.status !== 0) throw new Error(`scripts/ensure-schemathesis.sh failed (exit ${run.status}): ${run.stderr}`);
  const st = run.stdout.trim();
  if (st) return { st };
  return { unavailable: run.stderr.trim().split('\n').pop() || 'scripts/ensure-schemathesis.sh printed no path' };
}

const schemathesis = ensureSchemathesis();
if ('unavailable' in schemathesis) console.warn(`fuzz-api.test: skipped: ${schemathesis.unavailable}`);
const fuzzTest = 'unavailable' in schemathesis ? test.skip : test;

const e2e = e2eSystem('k2-fuzz-');

function runSt(st: string, args: string[], env: Record<string, string>, logFile: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'w');
    const child = spawn(st, args, { cwd: e2e.dataDir, env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
    child.on('error', reject);
    child.on('exit', (code) => {
      fs.closeSync(log);
      resolve(code);
    });
  });
}

/** The part of schemathesis's output that names each failure (test case id, check, message), without its curl lines. */
function failuresSection(output: string): string {
  const start = output.indexOf('FAILURES');
  const end = output.indexOf('SUMMARY');
  return start < 0
    ? output.slice(-4000)
    : output
        .slice(start, end > start ? end : undefined)
        .split('\n')
        .filter((l) => !/^\s*curl /.test(l))
        .join('\n')
        .slice(0, 8000);
}

async function poll<T>(what: string, read: () => Promise<T> | T, done: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) {
      if (!done(value)) throw new Error(`${what}: not there after ${timeoutMs} ms (last: ${JSON.stringify(value).slice(0, 500)})`);
      return value;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** K2's SQLite database, read-only beside the running API. */
function readDb<T>(dbFile: string, read: (db: Database.Database) => T): T {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

const demandStatuses = (dbFile: string, references: readonly string[]) =>
  readDb(
    dbFile,
    (db) =>
      new Map(
        references.map((r) => [
          r,
          (db.prepare('select status from payment_demands where reference = ?').get(r) as { status: string } | undefined)?.status ?? 'missing',
        ]),
      ),
  );

async function caseContracts(client: Client): Promise<Set<string>> {
  const contracts = new Set<string>();
  const prefix = caseWorkflowId('');
  for await (const wf of client.workflow.list({ query: 'WorkflowType="caseWorkflow"' }))
    if (wf.workflowId.startsWith(prefix)) contracts.add(wf.workflowId.slice(prefix.length));
  return contracts;
}

/** The values hooks.py steers generated items to, by field: valid identifiers, shared contract numbers (the demo loans' too), plain names, amounts and dates; the issued references. */
function fuzzPool(absSystems: readonly string[], setupContracts: readonly string[], references: readonly string[]) {
  const rand = mulberry32(SEED);
  return {
    iban: Array.from({ length: 8 }, () => generateKzIban(rand)),
    iinbin: [...Array.from({ length: 6 }, () => generateIin(rand)), generateBin(rand), generateBin(rand)],
    cur: ['KZT', 'USD', 'EUR'],
    system: absSystems,
    contract_number: ['FZ-1', 'FZ-2', 'FZ-3', 'ФЗ/4', ...setupContracts],
    fullname: ['Иванов Иван Иванович', '  Сапарова   Айгуль ', 'ТОО «Ромашка»', "O'Brien John"],
    debt: ['1500.50', 2_000_000, '0', 0, 0.5, '999999999999999.99'],
    overdue_days: [1, 30, 365, 36_500],
    dbz_date: ['2019-05-14', '2021.12.01', null],
    references,
  };
}

/** `st run`'s arguments: bounded, seeded, one worker, every request and answer into the cassette; `npm run fuzz`'s come last and win. */
function stRunArgs(documentUrl: string, cassetteFile: string): string[] {
  return [
    'run',
    documentUrl,
    '--auth',
    `eko:${PASSWORD}`,
    '--checks',
    CHECKS.join(','),
    '--phases',
    'examples,coverage,fuzzing',
    '--max-examples',
    String(MAX_EXAMPLES),
    '--seed',
    String(SEED),
    '--workers',
    '1',
    '--generation-database',
    'none',
    '--generation-unique-inputs',
    // The credentials are --auth's: a generated (negative) Authorization header would be replaced by them, and an example counted negative for nothing.
    '--generation-with-security-parameters',
    'false',
    '--no-shrink',
    // Hypothesis's health checks judge the data generation (e.g. too slow on a loaded machine), not K2: the run's own floor is asserted in the test.
    '--suppress-health-check',
    'all',
    '--request-timeout',
    '30',
    '--report',
    'vcr',
    '--report-preserve-bytes',
    '--report-vcr-path',
    cassetteFile,
    '--no-color',
    ...EXTRA_ARGS,
  ];
}

/** The seed the run used: the last --seed of the arguments. */
const seedOf = (extra: readonly string[]): string => {
  const i = extra.lastIndexOf('--seed');
  return i >= 0 && extra[i + 1] ? extra[i + 1] : String(SEED);
};

fuzzTest("schemathesis finds no 5xx, no undocumented answer, and nothing of a rejected request in K2's database or Temporal", async () => {
  const { st } = schemathesis as { st: string };
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const { client, ports, system } = await e2e.start({ K2_API_AUTH: 'basic', K2_API_PASSWORD: PASSWORD, EKO_SIM_STATUS_DELAY: '1h' });
  const api = `http://127.0.0.1:${ports.api}`;
  const dbFile = path.join(e2e.dataDir, 'k2.sqlite');
  const config = loadConfig({ ...process.env, ...system.env });
  expect(config.db.client).toBe('sqlite');

  // Real demands first (EKO's statuses held back an hour), so that the fuzzed statuses can name them.
  const setup = await feedDemoLoans({
    k2BaseUrl: api,
    k2AuthHeader: `Basic ${Buffer.from(`eko:${PASSWORD}`).toString('base64')}`,
    absSimUrl: `http://127.0.0.1:${ports.abs}`,
    count: 3,
    seed: 1515,
  });
  const sent = await poll(
    "the demo loans' demands",
    () =>
      readDb(
        dbFile,
        (db) =>
          db.prepare(`select reference, status from payment_demands where contract_number in (${setup.map(() => '?').join(',')})`).all(...setup) as Array<{
            reference: string;
            status: string;
          }>,
      ),
    (rows) => rows.length === setup.length && rows.every((r) => r.status === 'sent'),
    120_000,
  );
  const references = sent.map((r) => r.reference);
  const statusesBefore = demandStatuses(dbFile, references);

  // What the hooks steer part of the generated items to (hooks.py), and the README's table for their check.
  const pool = fuzzPool(config.api.absSystems, setup, references);
  const poolFile = path.join(e2e.dataDir, 'fuzz-pool.json');
  const codesFile = path.join(e2e.dataDir, 'fuzz-error-codes.json');
  fs.writeFileSync(poolFile, JSON.stringify(pool));
  fs.writeFileSync(codesFile, JSON.stringify(readmeErrorCodes(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))));

  const cassetteFile = path.join(OUT, 'cassette.yaml');
  const logFile = path.join(OUT, 'schemathesis.log');
  const exit = await runSt(
    st,
    stRunArgs(`${api}/openapi.json`, cassetteFile),
    { SCHEMATHESIS_HOOKS: HOOKS, K2_FUZZ_POOL: poolFile, K2_FUZZ_ERROR_CODES: codesFile },
    logFile,
  );
  const output = fs.readFileSync(logFile, 'utf8');
  expect(fs.existsSync(cassetteFile)).toBe(true);
  const exchanges: Exchange[] = readCassette(fs.readFileSync(cassetteFile, 'utf8'));

  // schemathesis's own verdict, each failure named by its test case id (the cassette entry).
  const failed = failedCheckLines(exchanges);
  if (exit !== 0 || failed.length)
    throw new Error(
      `schemathesis (exit ${exit}, ${exchanges.length} requests, seed ${seedOf(EXTRA_ARGS)}; ${cassetteFile}):\n${failed.join('\n')}\n\n${failuresSection(output)}`,
    );
  expect(exchanges.filter((e) => e.status === undefined).map((e) => e.id)).toEqual([]);

  // The run reached both sides of both services: else the checks below would hold for nothing.
  const loans = exchanges.filter((e) => e.method === 'POST' && e.path === LOANS_PATH);
  const statuses = exchanges.filter((e) => e.method === 'POST' && e.path === STATUS_PATH);
  const trails = contractTrails(exchanges, setup);
  expect(loans.filter(isAccepted).length).toBeGreaterThanOrEqual(10);
  expect(loans.filter((e) => !isAccepted(e)).length).toBeGreaterThanOrEqual(10);
  expect([...trails.values()].filter((t) => t.accepted.length && t.rejected.length).length).toBeGreaterThanOrEqual(1);
  expect(statuses.filter((e) => isAccepted(e)).length).toBeGreaterThanOrEqual(1);
  expect(statuses.filter((e) => !isAccepted(e) && references.some((r) => e.body?.includes(r))).length).toBeGreaterThanOrEqual(1);

  // Every accepted item has reached Temporal (or was stale); none is a dead letter.
  const outbox = await poll(
    'the outbox drained',
    () =>
      readDb(
        dbFile,
        (db) =>
          db.prepare('select contract_number, dispatched_at, dead_at from loan_outbox').all() as Array<{
            contract_number: string;
            dispatched_at: string | null;
            dead_at: string | null;
          }>,
      ),
    (rows) => rows.every((r) => r.dispatched_at !== null || r.dead_at !== null),
    180_000,
  );
  expect(outbox.filter((r) => r.dead_at !== null).map((r) => r.contract_number)).toEqual([]);
  const rowsByContract = new Map<string, number>();
  for (const r of outbox) rowsByContract.set(r.contract_number, (rowsByContract.get(r.contract_number) ?? 0) + 1);

  const overdue = [...trails].filter(([, t]) => t.overdue.length).map(([c]) => c);
  const cases = await poll(
    "the overdue contracts' cases in visibility",
    () => caseContracts(client),
    (found) => overdue.every((c) => found.has(c)),
    60_000,
  ).catch(() => caseContracts(client));
  const violations = [
    ...outboxViolations(trails, rowsByContract),
    ...caseViolations(trails, cases),
    ...demandStatusViolations(exchanges, statusesBefore, demandStatuses(dbFile, references)),
  ];
  const count = (list: Exchange[]) => ({ accepted: list.filter(isAccepted).length, rejected: list.filter((e) => !isAccepted(e)).length });
  const summary = {
    requests: exchanges.length,
    loans: count(loans),
    statuses: count(statuses),
    contracts: {
      accepted: [...trails.values()].filter((t) => t.accepted.length).length,
      onlyRejected: [...trails.values()].filter((t) => !t.accepted.length).length,
      both: [...trails.values()].filter((t) => t.accepted.length && t.rejected.length).length,
    },
    cases: cases.size,
    violations,
  };
  fs.writeFileSync(path.join(OUT, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  expect(violations).toEqual([]);
});

/**
 * The operator CLI's case read commands (cli/case.ts, cli/replay.ts, cli/scan.ts) against the real
 * system (scripts/system.ts, processes from dist/), each run as the operator runs it: a process
 * `node dist/cli/main.js …` with the system's configuration. The cases are put in the states the
 * commands report on: one through to its demand, EKO's statuses and GKB's answer; one parked on a
 * missing scan; one parked without its agreement date; one whose ABS calls keep failing (retrying,
 * shown by the Web UI only as "running"); one as a case from before K2StageSince (started on a
 * task queue no worker polls, without the attribute). Needs dist/ (`npx tsc -p tsconfig.json`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { caseWorkflowId, type CaseStatus } from '../../domain/case';
import { generateLoans } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import { repoRoot } from '../../scripts/system';
import { caseStatusQuery } from '../../workflows/definitions';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { e2eSystem } from '../helpers/e2e-system';
import { QUICK_ANSWERS_ENV } from '../helpers/e2e-system';

jest.setTimeout(10 * 60_000);

const e2e = e2eSystem('k2-e2e-cli-case-');

const ENV: Record<string, string> = { ...QUICK_ANSWERS_ENV };

const [through, scanMissing, noDate, retrying] = generateLoans(20_261_601, 4) as EkoLoanItem[];
through.iinbin = '900101300007'; // ABS scenario: ordinary, a PDF scan (simulators/abs/README.md)
scanMissing.iinbin = '900101300057'; // ABS scenario: the scan is always missing
delete (noDate as Partial<EkoLoanItem>).dbz_date;
const LEGACY = 'KDLEGACY0001';

let client: Client;
let env: NodeJS.ProcessEnv;
let outDir: string;
let absUrl: string;

/** One CLI run, as a process (cwd outside the repository, as an operator's shell may be). */
function k2(...argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string; json: () => any }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'cli', 'main.js'), ...argv], { cwd: outDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, json: () => JSON.parse(stdout) });
    });
  });
}

async function post(url: string, body: unknown, method = 'POST'): Promise<number> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  await res.text();
  return res.status;
}

async function statusOf(contract: string): Promise<CaseStatus | undefined> {
  return client.workflow
    .getHandle(caseWorkflowId(contract))
    .query(caseStatusQuery)
    .catch(() => undefined);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not there in time`);
}

beforeAll(async () => {
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-e2e-cli-out-'));
  const started = await e2e.start(ENV);
  client = started.client;
  env = { ...process.env, ...started.system.env };
  absUrl = `http://127.0.0.1:${started.ports.abs}`;
  const apiUrl = `http://127.0.0.1:${started.ports.api}/restapi/services/k2loan_from_eko`;
  expect(await post(`${absUrl}/_sim/loans`, [through, scanMissing, noDate, retrying])).toBe(200);
  expect(await post(apiUrl, [through, scanMissing, noDate])).toBe(200);
  await until('the case through to GKB', async () => ((await statusOf(through.contract_number))?.gkb.state === 'accepted' ? true : undefined));
  await until("EKO's last status", async () => ((await statusOf(through.contract_number))?.demand?.status === 'PC3' ? true : undefined));
  await until('the scan missing', async () => ((await statusOf(scanMissing.contract_number))?.attention?.code === 'scan-missing' ? true : undefined));
  await until('the date missing', async () => ((await statusOf(noDate.contract_number))?.attention?.code === 'agreement-date-missing' ? true : undefined));
  // ABS answers every call with 5xx from now on: the next case's quick attempts fail, its regular activity retries.
  expect(await post(`${absUrl}/_sim/faults`, { http5xx: 1 })).toBe(200);
  expect(await post(apiUrl, [retrying])).toBe(200);
  await until('the retrying case', async () => {
    const described = await client.workflow
      .getHandle(caseWorkflowId(retrying.contract_number))
      .describe()
      .catch(() => undefined);
    return (described?.raw.pendingActivities ?? []).some((a) => (a.attempt ?? 0) >= 2) ? true : undefined;
  });
  // A case as the code before K2StageSince left it: its stage, no moment. No worker polls its queue.
  await client.workflow.start('caseWorkflow', {
    workflowId: caseWorkflowId(LEGACY),
    taskQueue: 'no-worker-polls-this',
    args: [{}],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    ],
  });
  // --stuck-for 2s below: every case has been in its stage longer than that.
  await new Promise((r) => setTimeout(r, 2500));
}, 8 * 60_000);

afterAll(async () => {
  await fetch(`${absUrl}/_sim/faults`, { method: 'DELETE' }).catch(() => undefined);
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

const contracts = (rows: Array<{ contract: string }>) => rows.map((r) => r.contract).sort();

test('case list: running cases, by stage and reason, by ABS system; tables for people, JSON for scripts', async () => {
  const all = await k2('case', 'list', '--json');
  expect(all.code).toBe(0);
  expect(contracts(all.json())).toEqual(
    [through, scanMissing, noDate, retrying]
      .map((l) => l.contract_number)
      .concat(LEGACY)
      .sort(),
  );

  const parked = await k2('case', 'list', '--stage', 'account-checked', '--attention', 'scan-missing', '--json');
  expect(parked.json()).toEqual([
    expect.objectContaining({
      contract: scanMissing.contract_number,
      stage: 'account-checked',
      attention: 'scan-missing',
      absSystem: scanMissing.system,
      stageSinceSource: 'K2StageSince',
    }),
  ]);

  const bySystem = await k2('case', 'list', '--abs-system', through.system, '--json');
  expect(contracts(bySystem.json())).toContain(through.contract_number);
  expect(contracts(bySystem.json())).not.toContain(LEGACY);

  const table = await k2('case', 'list', '--attention', 'agreement-date-missing');
  expect(table.code).toBe(0);
  expect(table.stdout.split('\n')[0]).toMatch(/^contract +stage +inStage +attention +absSystem$/);
  expect(table.stdout).toMatch(new RegExp(`${noDate.contract_number} +account-checked +\\d+[sm].* +agreement-date-missing +${noDate.system}`));
  expect(table.stdout).toContain('1 shown of 1');

  const wrong = await k2('case', 'list', '--stage', 'recieved');
  expect(wrong.code).toBe(2);
  expect(wrong.stderr).toContain('--stage "recieved": not a stage');
});

test('case list --stuck-for: no progress for that long, the resting stage left out, a case without K2StageSince found by its last event', async () => {
  const stuck = await k2('case', 'list', '--stuck-for', '2s', '--json');
  expect(stuck.code).toBe(0);
  const rows = stuck.json() as Array<{ contract: string; stageSinceSource: string }>;
  expect(contracts(rows)).toEqual(
    [scanMissing, noDate, retrying]
      .map((l) => l.contract_number)
      .concat(LEGACY)
      .sort(),
  );
  expect(rows.find((r) => r.contract === LEGACY)).toMatchObject({ stageSinceSource: 'last-event' });
  expect(stuck.stderr).toContain('1 case(s) from before K2StageSince');
  // Nothing has been in its stage for a day.
  expect((await k2('case', 'list', '--stuck-for', '1d', '--json')).json()).toEqual([]);
  // The resting stage when asked for.
  expect(contracts((await k2('case', 'list', '--stuck-for', '2s', '--stage', 'reported-to-gkb', '--json')).json())).toEqual([through.contract_number]);
});

test('case list --retrying: the case whose activity keeps failing, with its attempt and last error', async () => {
  const found = await k2('case', 'list', '--retrying', '--json');
  expect(found.code).toBe(0);
  expect(found.json()).toEqual([
    expect.objectContaining({
      contract: retrying.contract_number,
      stage: 'received',
      retrying: { activity: 'checkClient', attempt: expect.any(Number), lastError: expect.stringContaining('AbsUnavailable') },
    }),
  ]);
  const table = await k2('case', 'list', '--retrying');
  expect(table.stdout).toMatch(new RegExp(`${retrying.contract_number} .* checkClient attempt \\d+: AbsUnavailable`));
});

test("case show: stage and its history, the demand and EKO's statuses, the GKB report with its package, the scan, the decoded loan", async () => {
  const shown = await k2('case', 'show', through.contract_number, '--json');
  expect(shown.code).toBe(0);
  const view = shown.json();
  expect(view).toMatchObject({
    contract: through.contract_number,
    execution: 'running',
    status: { stage: 'reported-to-gkb', gkb: { state: 'accepted' }, demand: { status: 'PC3' } },
    stageSince: { source: 'K2StageSince' },
  });
  expect(view.stages[0]).toMatchObject({ stage: 'received' });
  expect(view.stages.at(-1)).toMatchObject({ stage: 'reported-to-gkb' });
  expect(view.demandStatuses.map((d: { status: string }) => d.status)).toEqual(expect.arrayContaining(['PC1', 'PC3']));
  expect(view.gkbReports).toEqual([
    expect.objectContaining({ kind: 'overdue', state: 'accepted', batchId: expect.any(String), package: expect.any(String), packageId: expect.any(String) }),
  ]);
  expect(view.status.scan.sha256).toMatch(/^[0-9a-f]{64}$/);
  // The loan decoded through the codec (Temporal holds only its ciphertext).
  expect(view.loan.value).toMatchObject({ iinbin: through.iinbin, fullname: through.fullname, iban: through.iban });

  const people = await k2('case', 'show', through.contract_number);
  expect(people.stdout).toContain(`stage      reported-to-gkb   since `);
  expect(people.stdout).toContain('stage history:');
  expect(people.stdout).toMatch(/PTP\d{11} {2}PC3 {2}accepted by the bank: yes/);
  expect(people.stdout).toMatch(/record \d+ {2}overdue {2}op \d {2}accepted {2}package /);
  expect(people.stdout).toContain(`iinbin               ${through.iinbin}`);
});

test("case show: why a case needs attention and since when; the retrying one's pending activity with attempt and last error, and its failed local calls", async () => {
  const parked = (await k2('case', 'show', noDate.contract_number, '--json')).json();
  expect(parked.status.attention).toMatchObject({ code: 'agreement-date-missing', stage: 'account-checked', since: expect.any(String) });
  const shown = await k2('case', 'show', retrying.contract_number);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toMatch(/pending activities:\n {2}checkClient {2}\w+ {2}attempt \d+/);
  expect(shown.stdout).toMatch(/last error: AbsUnavailable: .*HTTP 5\d\d/);
  expect(shown.stdout).toMatch(/local calls that failed their quick attempts.*\n.*checkClient {2}after 3 attempt\(s\): AbsUnavailable/);
  const missing = await k2('case', 'show', 'KDNOSUCHCASE');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('no case for contract KDNOSUCHCASE');
});

test('case history: the decoded history to a private file outside the repository, with the warning; refused inside it', async () => {
  const file = path.join(outDir, 'through.json');
  const written = await k2('case', 'history', through.contract_number, '--out', file);
  expect(written.code).toBe(0);
  expect(written.stderr).toContain(`warning: ${file} holds personal data`);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(saved).toMatchObject({ format: 'k2-case-history/1', workflowId: caseWorkflowId(through.contract_number), history: { events: expect.any(Array) } });
  expect(JSON.stringify(saved.values)).toContain(through.fullname);

  const inRepo = path.join(repoRoot(), 'test', 'replay', 'histories', `case-${through.contract_number}.json`);
  const refused = await k2('case', 'history', through.contract_number, '--out', inRepo);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('is inside the repository');
  expect(fs.existsSync(inRepo)).toBe(false);
});

test("case replay: live, saved (its own file and Temporal's export) and by query replay against this build; a non-deterministic change is named at its event; a hang is cut off", async () => {
  const live = await k2('case', 'replay', through.contract_number);
  expect(live.code).toBe(0);
  expect(live.stdout).toContain('1 replayed, 0 did not');

  const own = path.join(outDir, 'own.json');
  expect((await k2('case', 'history', scanMissing.contract_number, '--out', own)).code).toBe(0);
  // Temporal's own export, as `temporal workflow show --output json` writes it: payloads still encrypted.
  const exported = path.join(outDir, `${caseWorkflowId(through.contract_number)}.json`);
  fs.writeFileSync(exported, historyToJSON(await client.workflow.getHandle(caseWorkflowId(through.contract_number)).fetchHistory()), { mode: 0o600 });
  const saved = await k2('case', 'replay', '--file', own, '--file', exported, '--json');
  expect(saved.code).toBe(0);
  expect(saved.json()).toEqual([
    expect.objectContaining({ source: own, result: 'replayed' }),
    expect.objectContaining({ source: exported, result: 'replayed' }),
  ]);

  const byQuery = await k2('case', 'replay', '--query', `WorkflowType="caseWorkflow" AND K2Stage="account-checked"`, '--json');
  expect(byQuery.code).toBe(0);
  expect(
    byQuery
      .json()
      .map((o: { workflowId: string }) => o.workflowId)
      .sort(),
  ).toEqual([scanMissing, noDate].map((l) => caseWorkflowId(l.contract_number)).sort());

  // A change no patched() guards (test/fixtures/cli/nondeterministic-workflows.ts: a timer before today's code).
  const changed = path.join(repoRoot(), 'dist', 'test', 'fixtures', 'cli', 'nondeterministic-workflows.js');
  const broken = await k2('case', 'replay', through.contract_number, '--workflows', changed, '--json');
  expect(broken.code).toBe(1);
  const [outcome] = broken.json();
  expect(outcome).toMatchObject({
    result: 'nondeterministic',
    eventId: expect.any(Number),
    eventType: 'MarkerRecorded',
    error: expect.stringContaining('Nondeterminism'),
  });
  const people = await k2('case', 'replay', '--file', own, '--workflows', changed);
  expect(people.stdout).toMatch(/NON-DETERMINISTIC at event \d+ \(MarkerRecorded\)/);

  const hanging = path.join(repoRoot(), 'dist', 'test', 'fixtures', 'cli', 'hanging-workflows.js');
  const hung = await k2('case', 'replay', '--file', own, '--file', exported, '--workflows', hanging, '--timeout', '5s', '--json');
  expect(hung.code).toBe(1);
  expect(hung.json().map((o: { result: string }) => o.result)).toEqual(['timed-out', 'timed-out']);
});

test("scan get: the agreement scan from the document store to a private file, its sha256 the case's reference; a case without one says so", async () => {
  const status = (await statusOf(through.contract_number))!;
  const file = path.join(outDir, 'scan.pdf');
  const got = await k2('scan', 'get', through.contract_number, '--out', file, '--json');
  expect(got.code).toBe(0);
  expect(got.stderr).toContain('holds personal data');
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const bytes = fs.readFileSync(file);
  expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(status.scan!.sha256);
  expect(got.json()).toMatchObject({ sha256: status.scan!.sha256, file });

  const none = await k2('scan', 'get', scanMissing.contract_number, '--out', path.join(outDir, 'none.pdf'));
  expect(none.code).toBe(1);
  expect(none.stderr).toContain(`case ${scanMissing.contract_number} has no scan yet`);
  expect(fs.existsSync(path.join(outDir, 'none.pdf'))).toBe(false);
});

/**
 * The operator CLI's actions (cli/actions.ts) against the real system (scripts/system.ts, processes
 * from dist/): a few hundred cases that need attention (loans of a client ABS does not know:
 * client-unknown, a non-retryable business answer) and a few loans without their agreement date
 * (agreement-date-missing). One case and every case of a visibility query; --dry-run and a missing
 * --yes change nothing; a value refused here sends nothing; a refusal by the case's validator changes
 * nothing and says why. The commands run in this process through the CLI's own entry (runCli) with
 * the system's configuration; one runs as the real `node dist/cli/main.js`. Needs dist/.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { loadConfig, type Config } from '../../config';
import { openDb, type Db } from '../../db';
import { caseWorkflowId, type CaseStatus } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import { repoRoot } from '../../scripts/system';
import { ABS_SCENARIO_IINS, deriveLoanAccount } from '../../simulators/abs/server';
import { caseStatusQuery } from '../../workflows/definitions';
import { e2eSystem } from '../helpers/e2e-system';
import { inProcessCli } from '../helpers/cli-in-process';
import { eventually } from '../helpers/eventually';

jest.setTimeout(15 * 60_000);

const e2e = e2eSystem('k2-e2e-cli-actions-');

const UNKNOWN_CLIENTS = 300;
const rand = mulberry32(20_260_316);
/** Loans of a client ABS does not know: each case parks at once with client-unknown. */
const unknownClient: EkoLoanItem[] = Array.from({ length: UNKNOWN_CLIENTS }, (_, i) =>
  generateLoan(rand, { iinbin: ABS_SCENARIO_IINS.clientUnknown, contract_number: `CLI-UNK-${String(i).padStart(4, '0')}` }),
);
/** Loans of an ordinary client without dbz_date (gap G1): each parks with agreement-date-missing. */
const undated: EkoLoanItem[] = Array.from({ length: 3 }, (_, i) => {
  const account = deriveLoanAccount(ABS_SCENARIO_IINS.ordinary);
  const { dbz_date: _none, ...loan } = generateLoan(rand, {
    iinbin: ABS_SCENARIO_IINS.ordinary,
    iban: account.iban,
    cur: account.cur,
    contract_number: `CLI-G1-${i}`,
  });
  return loan as EkoLoanItem;
});

let client: Client;
let config: Config;
let db: Db;
let env: Record<string, string>;

/** One CLI run in this process, on the system's configuration, its client and database. */
const k2 = inProcessCli(() => ({ env, config, client, db }));

const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5 * 60_000) => eventually(what, probe, timeoutMs, 1000);

const count = async (query: string) => (await client.workflow.count(query)).count;
const running = (q: string) => `WorkflowType = "caseWorkflow" AND ExecutionStatus = "Running" AND ${q}`;
const status = (contract: string): Promise<CaseStatus> => client.workflow.getHandle(caseWorkflowId(contract)).query(caseStatusQuery);
const updateEvents = async (contract: string) => {
  const history = await client.workflow.getHandle(caseWorkflowId(contract)).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes).length;
};

beforeAll(async () => {
  const started = await e2e.start({ K2_API_AUTH: 'none', EKO_SIM_STATUS_DELAY: '300ms' });
  client = started.client;
  env = { ...process.env, ...started.system.env } as Record<string, string>;
  config = loadConfig(env);
  db = await openDb(config.db);
  const res = await fetch(`http://127.0.0.1:${started.ports.api}/restapi/services/k2loan_from_eko`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([...unknownClient, ...undated]),
    signal: AbortSignal.timeout(60_000),
  });
  expect(await res.json()).toMatchObject({ error_code: 0 });
  await until("every unknown client's case in attention", async () => (await count(running('K2AttentionReason = "client-unknown"'))) === UNKNOWN_CLIENTS);
  await until('every undated case in attention', async () => (await count(running('K2AttentionReason = "agreement-date-missing"'))) === undated.length);
});

afterAll(async () => {
  await db?.destroy();
});

test('supply-agreement-date on one case: a date in the future is refused here and sends nothing; a right one moves the case on', async () => {
  const [first] = undated;
  const before = await status(first.contract_number);
  const future = await k2('case', 'supply-agreement-date', first.contract_number, '--date', '2099-01-01');
  expect(future.code).toBe(2);
  expect(future.err[0]).toMatch(/^k2 case supply-agreement-date: not sent: dbzDate 2099-01-01 is in the future \(today is \d{4}-\d{2}-\d{2}\)$/);
  expect(await updateEvents(first.contract_number)).toBe(0);
  expect(await status(first.contract_number)).toEqual(before);

  const done = await k2('case', 'supply-agreement-date', first.contract_number, '--date', '2020-01-15', '--note', 'from the paper file', '--json');
  expect(done.code).toBe(0);
  expect(done.json()).toEqual([{ contract: first.contract_number, outcome: 'done', stage: 'account-checked', attention: 'agreement-date-missing' }]);
  const moved = await until('the case past its evidence', async () => {
    const s = await status(first.contract_number);
    return s.demand !== undefined && s.attention === undefined ? s : undefined;
  });
  expect(moved).toMatchObject({ stage: 'demand-issued', dbzDate: '2020-01-15' });
});

test("acknowledge a notice a case does not show: the case's validator refuses, says why, and nothing changes (one case, then every case of a query)", async () => {
  const contract = undated[1].contract_number;
  const before = await status(contract);
  const one = await k2('case', 'acknowledge', contract, '--notice', 'gkb-new-contract');
  expect(one.code).toBe(1);
  expect(one.out[0]).toMatch(/^contract\s+outcome\s+stage\s+attention\s+message$/);
  expect(one.out[1]).toMatch(new RegExp(`^${contract}\\s+refused\\s+-\\s+-\\s+the case has no notice gkb-new-contract to acknowledge$`));
  expect(one.out.at(-1)).toBe('acknowledge: 1 case(s): 0 done, 1 refused, 0 failed');
  expect(await updateEvents(contract)).toBe(0);
  expect(await status(contract)).toEqual(before);

  const bulk = await k2('case', 'acknowledge', '--query', 'K2AttentionReason="agreement-date-missing"', '--notice', 'gkb-waiting', '--yes', '--json');
  expect(bulk.code).toBe(1);
  expect(bulk.json()).toEqual(
    expect.arrayContaining(
      undated.slice(1).map((l) => ({ contract: l.contract_number, outcome: 'refused', message: 'the case has no notice gkb-waiting to acknowledge' })),
    ),
  );
  expect(bulk.json()).toHaveLength(2);
});

test('a bulk close by query: --dry-run lists every case and changes nothing, without --yes nothing is sent (also as the real process)', async () => {
  const query = 'K2AttentionReason="client-unknown"';
  const dry = await k2('case', 'close', '--query', query, '--dry-run', '--json');
  expect(dry.code).toBe(0);
  const listed = dry.json() as Array<{ contract: string; stage: string; reason: string; status: string }>;
  expect(listed.map((c) => c.contract).sort()).toEqual(unknownClient.map((l) => l.contract_number).sort());
  expect(new Set(listed.map((c) => `${c.stage}/${c.reason}/${c.status}`))).toEqual(new Set(['received/client-unknown/RUNNING']));

  const noYes = await k2('case', 'close', '--query', query);
  expect(noYes.code).toBe(2);
  expect(noYes.err[0]).toBe(`k2 case close: ${UNKNOWN_CLIENTS} cases match; add --yes to close every one of them (--dry-run lists them)`);

  // The real entry point, as an operator runs it.
  const real = spawnSync(process.execPath, [path.join(repoRoot(), 'dist/cli/main.js'), 'case', 'close', '--query', query, '--dry-run'], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(real.status).toBe(0);
  const lines = real.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^contract\s+stage\s+reason\s+status$/);
  expect(lines).toHaveLength(UNKNOWN_CLIENTS + 2);
  expect(lines.at(-1)).toBe(`${UNKNOWN_CLIENTS} case(s) would get close; nothing was sent (--dry-run)`);

  expect(await count(running(query))).toBe(UNKNOWN_CLIENTS);
  for (const l of unknownClient.slice(0, 3)) expect(await updateEvents(l.contract_number)).toBe(0);
});

test('a bulk retry on a few hundred cases: every case re-runs its stage (and parks again: ABS still does not know the client), with progress', async () => {
  const retried = await k2('case', 'retry', '--query', 'K2AttentionReason="client-unknown"', '--note', 'ABS says it is fixed', '--yes', '--concurrency', '12');
  expect(retried.code).toBe(0);
  expect(retried.out.at(-1)).toBe(`retry: ${UNKNOWN_CLIENTS} case(s): ${UNKNOWN_CLIENTS} done, 0 refused, 0 failed`);
  expect(retried.out.filter((l) => /\sdone\s+received\s+client-unknown\s+-$/.test(l))).toHaveLength(UNKNOWN_CLIENTS);
  expect(retried.err[0]).toBe(`retry: 30/${UNKNOWN_CLIENTS} (done 30, refused 0, failed 0)`);
  expect(retried.err.at(-1)).toBe(`retry: ${UNKNOWN_CLIENTS}/${UNKNOWN_CLIENTS} (done ${UNKNOWN_CLIENTS}, refused 0, failed 0)`);
  for (const l of unknownClient.slice(0, 3)) expect(await updateEvents(l.contract_number)).toBe(2); // accepted and completed: applied
  expect(await count(running('K2AttentionReason = "client-unknown"'))).toBe(UNKNOWN_CLIENTS);
});

test('a bulk close with --yes closes every case; an action on a closed or unknown case fails and says why', async () => {
  const closed = await k2('case', 'close', '--query', 'K2AttentionReason="client-unknown"', '--note', 'written off', '--yes', '--json');
  expect(closed.code).toBe(0);
  const results = closed.json() as Array<{ contract: string; outcome: string }>;
  expect(results).toHaveLength(UNKNOWN_CLIENTS);
  expect(results.every((r) => r.outcome === 'done')).toBe(true);
  await until(
    'every case closed',
    async () => (await count('WorkflowType = "caseWorkflow" AND ExecutionStatus = "Completed" AND K2Stage = "closed"')) === UNKNOWN_CLIENTS,
  );
  expect(await count(running('K2AttentionReason = "client-unknown"'))).toBe(0);

  const again = await k2('case', 'retry', unknownClient[0].contract_number, '--json');
  expect(again.code).toBe(1);
  expect(again.json()).toEqual([
    { contract: unknownClient[0].contract_number, outcome: 'failed', message: expect.stringMatching(/^no running case \(closed, or never started\)/) },
  ]);
  const unknown = await k2('case', 'retry', 'CLI-NO-SUCH-CASE', '--json');
  expect(unknown.code).toBe(1);
  expect(unknown.json()[0]).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/^no running case/) });
  // Nothing matches any more: nothing to do, nothing sent.
  const none = await k2('case', 'close', '--query', 'K2AttentionReason="client-unknown"', '--yes');
  expect(none).toMatchObject({ code: 0, out: ['no running case matches the query; nothing was sent'] });
});

test('usage: a case or a query (not both, not neither), a query Temporal refuses, a missing --date', async () => {
  const neither = await k2('case', 'retry');
  expect(neither.code).toBe(2);
  expect(neither.err[0]).toBe('k2 case retry: which case? give its contract number, or --query for every running case a visibility query matches');
  expect((await k2('case', 'retry', 'KD1', '--query', 'K2Stage="received"')).err[0]).toBe('k2 case retry: give contract numbers or --query, not both');
  const bad = await k2('case', 'close', '--query', 'K2Stage=', '--dry-run');
  expect(bad.code).toBe(2);
  expect(bad.err[0]).toMatch(/^k2 case close: --query "K2Stage=": Temporal refused it: /);
  expect((await k2('case', 'supply-agreement-date', undated[2].contract_number)).err[0]).toBe(
    'k2 case supply-agreement-date: --date YYYY-MM-DD is required: the agreement date (dbz_date) the loan came without',
  );
  expect(await updateEvents(undated[2].contract_number)).toBe(0);
});

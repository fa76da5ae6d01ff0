/**
 * The operator CLI's gkb and outbox commands (cli/gkb.ts, cli/outbox.ts), and acknowledging the
 * notice GKB leaves, against the real system (scripts/system.ts, processes from dist/) with a fast
 * GKB schedule: demo loans go through to GKB, whose sandbox did not know their contracts and created
 * them (each case shows the notice gkb-new-contract). A dead letter is made the one way Temporal
 * refuses an item for good (a workflow id longer than it allows, written past the API's validation),
 * pending items by stopping the API. The commands run in this process through the CLI's entry
 * (runCli) with the system's configuration; `npm run outbox` (dist/scripts/outbox.js) as a process.
 * Needs dist/.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { loadConfig, type Config } from '../../config';
import { openDb, type Db } from '../../db';
import { deadLetterStats, enqueueLoans } from '../../db/outbox';
import { caseWorkflowId, type CaseStatus } from '../../domain/case';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { repoRoot, type RunningSystem } from '../../scripts/system';
import { feedDemoLoans } from '../../simulators/eko/demo-feeder';
import { caseStatusQuery } from '../../workflows/definitions';
import { e2eSystem } from '../helpers/e2e-system';
import { inProcessCli } from '../helpers/cli-in-process';
import { QUICK_ANSWERS_ENV } from '../helpers/e2e-system';
import { eventually } from '../helpers/eventually';

jest.setTimeout(15 * 60_000);

const e2e = e2eSystem('k2-e2e-cli-gkb-');

const ENV: Record<string, string> = {
  ...QUICK_ANSWERS_ENV,
  // One refusal makes a dead letter.
  K2_OUTBOX_MAX_ATTEMPTS: '1',
};

let client: Client;
let config: Config;
let db: Db;
let env: Record<string, string>;
let system: RunningSystem;
let contracts: string[] = [];

const k2 = inProcessCli(() => ({ env, config, client, db }));

const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5 * 60_000) => eventually(what, probe, timeoutMs, 1000);

const status = (contract: string): Promise<CaseStatus> => client.workflow.getHandle(caseWorkflowId(contract)).query(caseStatusQuery);
const gkbSignals = async (contract: string) => {
  const history = await client.workflow.getHandle(caseWorkflowId(contract)).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'gkbResult').length;
};

beforeAll(async () => {
  const started = await e2e.start(ENV);
  client = started.client;
  system = started.system;
  env = { ...process.env, ...system.env } as Record<string, string>;
  config = loadConfig(env);
  db = await openDb(config.db);
  // Individuals only: a legal entity's case has no GKB report (gap G3).
  const individuals = (seed: number, count: number) => {
    const r = mulberry32(seed);
    return Array.from({ length: count }, (_, i) => generateLoan(r, {}, { contractSerial: 7_317_000_000 + i }));
  };
  contracts = await feedDemoLoans({
    k2BaseUrl: `http://127.0.0.1:${started.ports.api}`,
    absSimUrl: `http://127.0.0.1:${started.ports.abs}`,
    count: 4,
    seed: 20_260_317,
    generate: individuals,
  });
  await until('every case reported to GKB, which created the contract', async () => {
    const all = await Promise.all(contracts.map(status));
    if (all.every((s) => s.gkb.state === 'accepted' && s.notices?.some((n) => n.code === 'gkb-new-contract'))) return true;
    // Stages and codes only, for the failure message.
    throw new Error(
      JSON.stringify(all.map((s) => ({ stage: s.stage, attention: s.attention?.code, gkb: s.gkb.state, notices: s.notices?.map((n) => n.code) }))),
    );
  });
  // The batch marks the results delivered and itself done after the cases have them.
  await until('the batches done', async () => {
    const { batches } = (await k2('gkb', 'batches', '--json')).json();
    const used = batches.filter((b: any) => b.records.accepted > 0);
    return used.length > 0 && used.every((b: any) => b.state === 'done' && b.workflow.status === 'COMPLETED' && b.workflow.batchState === 'done');
  });
});

afterAll(async () => {
  await db?.destroy();
});

/** The GKB package each contract's record went in (a schedule's batch may have taken the cases' records in two). */
const packageOf: Record<string, string> = {};
let packageId = '';
/** The contracts whose records went in packageId. */
let inPackage: string[] = [];

test("gkb records: a contract's record with its package and GKB's result, nothing of the loan itself", async () => {
  for (const contract of contracts) {
    const shown = await k2('gkb', 'records', contract, '--json');
    expect(shown.code).toBe(0);
    expect(shown.json()).toEqual([
      expect.objectContaining({
        workflowId: caseWorkflowId(contract),
        report: 'overdue #1',
        state: 'accepted',
        packageId: expect.any(String),
        resultText: expect.stringContaining('Создан новый контракт.'),
        newContract: true,
        deliveredAt: expect.any(String),
      }),
    ]);
    packageOf[contract] = shown.json()[0].packageId;
  }
  packageId = packageOf[contracts[0]];
  inPackage = contracts.filter((c) => packageOf[c] === packageId);
  const people = await k2('gkb', 'records', contracts[0]);
  expect(people.out[0]).toMatch(/^record\s+report\s+state\s+batch\s+package\s+enqueued\s+delivered\s+result$/);
  expect(people.out[1]).toMatch(
    new RegExp(`^\\d+\\s+overdue #1\\s+accepted\\s+\\S+\\s+${packageId}\\s+\\S+\\s+\\S+\\s+Создан новый контракт\\..* \\(new contract at GKB\\)$`),
  );
  const none = await k2('gkb', 'records', 'KD-NO-SUCH');
  expect(none.out).toEqual(['(none)', 'no GKB record of contract KD-NO-SUCH']);
});

test("gkb batches: the batches, their packages with GKB's status, and the records' counts", async () => {
  const listed = await k2('gkb', 'batches', '--json');
  expect(listed.code).toBe(0);
  const { queued, batches } = listed.json();
  expect(queued).toBe(0);
  const withRecords = batches.filter((b: any) => b.records.accepted + b.records.rejected + b.records.claimed > 0);
  expect(withRecords.reduce((n: number, b: any) => n + b.records.accepted, 0)).toBe(contracts.length);
  for (const b of withRecords) {
    expect(b).toMatchObject({ state: 'done', workflow: { status: 'COMPLETED', batchState: 'done' }, records: { claimed: 0, rejected: 0, undelivered: 0 } });
    for (const p of b.packages) expect(p).toMatchObject({ batch: b.batchId, final: true, rejected: 0, gkb_status: expect.any(String) });
  }
  const packages = withRecords.flatMap((b: any) => b.packages);
  expect(packages.map((p: any) => p.package).sort()).toEqual([...new Set(Object.values(packageOf))].sort());
  const mine = packages.find((p: any) => p.package === packageId);
  expect(mine).toMatchObject({ records: inPackage.length, accepted: inPackage.length });

  const people = await k2('gkb', 'batches');
  expect(people.code).toBe(0);
  expect(people.out[0]).toMatch(/^batch\s+state\s+workflow\s+open\s+accepted\s+rejected\s+undelivered\s+packages\s+created\s+error$/);
  expect(people.out.some((l) => l.startsWith(mine.batch) && /\sdone\s+done \(COMPLETED\)\s+0\s+\d+\s+0\s+0\s+\d+\s/.test(l))).toBe(true);
  expect(people.out.some((l) => new RegExp(`^${mine.batch}\\s+\\S+\\s+${packageId}\\s+${inPackage.length}\\s+${inPackage.length}\\s+0\\s`).test(l))).toBe(true);
  expect(people.out.at(-1)).toBe('0 record(s) queued for the next batch');
});

test('gkb redeliver: --dry-run sends nothing; then every case of the package gets its result again and ignores the repeat', async () => {
  const before = await Promise.all(contracts.map(status));
  const signalsBefore = await Promise.all(contracts.map(gkbSignals));
  expect(signalsBefore).toEqual(contracts.map(() => 1));

  const dry = await k2('gkb', 'redeliver', packageId, '--dry-run');
  expect(dry.code).toBe(0);
  expect(dry.out.at(-1)).toBe(
    `package ${packageId}: ${inPackage.length} result(s) would be sent again, 0 record(s) have no result yet; nothing was sent (--dry-run)`,
  );
  expect(await Promise.all(contracts.map(gkbSignals))).toEqual(signalsBefore);

  const sent = await k2('gkb', 'redeliver', packageId, '--json');
  expect(sent.code).toBe(0);
  expect((sent.json() as any[]).map((r) => [r.contract, r.result, r.delivery]).sort()).toEqual(inPackage.map((c) => [c, 'accepted', 'signalled']).sort());
  expect(await Promise.all(contracts.map(gkbSignals))).toEqual(contracts.map((c) => (inPackage.includes(c) ? 2 : 1)));
  // The repeat changed nothing: same result, same record, the notice kept, no new report queued.
  expect(await Promise.all(contracts.map(status))).toEqual(before);
  for (const c of contracts) expect((await k2('gkb', 'records', c, '--json')).json()).toHaveLength(1);

  const unknown = await k2('gkb', 'redeliver', '999999');
  expect(unknown.code).toBe(1);
  expect(unknown.err).toEqual(['no batch file went to GKB as package 999999 (k2 gkb batches lists the packages)']);
});

test('acknowledge gkb-new-contract: on one case, then on every case of the query; the notice is gone', async () => {
  const [first, ...rest] = contracts;
  const one = await k2('case', 'acknowledge', first, '--notice', 'gkb-new-contract', '--note', 'put right at GKB', '--json');
  expect(one.code).toBe(0);
  expect(one.json()).toEqual([{ contract: first, outcome: 'done', stage: 'reported-to-gkb' }]);
  expect((await status(first)).notices).toBeUndefined();

  // Visibility shows the first case without the notice soon after: the dry run lists the others.
  const listed = await until("visibility without the first case's notice", async () => {
    const d = await k2('case', 'acknowledge', '--query', 'K2AttentionReason="gkb-new-contract"', '--notice', 'gkb-new-contract', '--dry-run', '--json');
    return d.code === 0 && d.json().length === rest.length ? (d.json() as Array<{ contract: string; reason: string }>) : undefined;
  });
  expect(listed.map((c) => [c.contract, c.reason]).sort()).toEqual(rest.map((c) => [c, 'gkb-new-contract']).sort());
  const bulk = await k2('case', 'acknowledge', '--query', 'K2AttentionReason="gkb-new-contract"', '--notice', 'gkb-new-contract', '--yes', '--json');
  expect(bulk.code).toBe(0);
  expect((bulk.json() as any[]).map((r) => [r.contract, r.outcome]).sort()).toEqual(rest.map((c) => [c, 'done']).sort());
  for (const s of await Promise.all(contracts.map(status))) {
    expect(s.stage).toBe('reported-to-gkb');
    expect(s.attention).toBeUndefined();
    expect(s.notices).toBeUndefined();
  }
});

test('outbox status, dead-letters and requeue on a dead letter and on items the stopped API left pending; npm run outbox is the same', async () => {
  expect((await k2('outbox', 'status', '--json')).json()).toMatchObject({ pending: 0, dead: 0, claimed: 0 });

  // Past the API's validation: a contract whose case id Temporal refuses (longer than it allows).
  const rand = mulberry32(20_260_318);
  const loan = (contract: string): Loan => ({ ...generateLoan(rand, { contract_number: contract }), debt: '1000.00' }) as unknown as Loan;
  const poison = loan(`KD-POISON-${'X'.repeat(1100)}`);
  await enqueueLoans(db, [poison], 'cli-e2e-poison');
  await until('the poisoned item is a dead letter', async () => (await deadLetterStats(db)).count === 1);

  const letters = await k2('outbox', 'dead-letters', '--json');
  expect(letters.code).toBe(0);
  const [dead] = letters.json();
  expect(dead).toMatchObject({ contract: poison.contract_number, attempts: 1, error: expect.stringMatching(/INVALID_ARGUMENT/) });
  const people = await k2('outbox', 'dead-letters');
  expect(people.out.at(-1)).toBe('1 dead letter(s)');
  for (const secret of [poison.iinbin, poison.iban, poison.fullname]) expect(people.out.join('\n')).not.toContain(secret);

  // The API stopped: what EKO sent meanwhile (written as the API writes it) waits.
  await system.kill('api', 'SIGTERM');
  await enqueueLoans(db, [loan('CLI-PENDING-1'), loan('CLI-PENDING-2')], 'cli-e2e-pending');
  const waiting = await k2('outbox', 'status', '--json');
  expect(waiting.json()).toMatchObject({ pending: 2, dead: 1, oldestPendingAgeMs: expect.any(Number), oldestDeadAgeMs: expect.any(Number) });
  const shown = await k2('outbox', 'status');
  expect(shown.out[1]).toMatch(/^pending\s+2\s+oldest accepted \S+, \d+s ago$/);
  expect(shown.out[4]).toMatch(/^dead letters\s+1\s+oldest accepted/);

  const requeued = await k2('outbox', 'requeue', String(dead.id));
  expect(requeued).toMatchObject({ code: 0, out: [`requeued outbox item ${dead.id}: the dispatcher hands it to Temporal again`] });
  expect((await k2('outbox', 'status', '--json')).json()).toMatchObject({ pending: 3, dead: 0 });
  const twice = await k2('outbox', 'requeue', String(dead.id));
  expect(twice).toMatchObject({ code: 1, err: [`outbox item ${dead.id} is no dead letter (never was, already requeued, or dispatched)`] });
  expect((await k2('outbox', 'requeue', 'x1')).err[0]).toBe('k2 outbox requeue: "x1" is not an outbox id (a positive integer)');

  // The API back: the pending items go to Temporal, the poisoned one dies again; requeue --all takes it back.
  await system.start('api');
  await until('the pending items dispatched, the poisoned one dead again', async () => {
    const s = (await k2('outbox', 'status', '--json')).json();
    return s.pending === 0 && s.dead === 1;
  });
  expect(await client.workflow.getHandle(caseWorkflowId('CLI-PENDING-1')).describe()).toMatchObject({ workflowId: caseWorkflowId('CLI-PENDING-1') });

  const alias = spawnSync(process.execPath, [path.join(repoRoot(), 'dist/scripts/outbox.js'), 'requeue', '--all'], { env, encoding: 'utf8', timeout: 60_000 });
  expect(alias.status).toBe(0);
  expect(alias.stdout.trim()).toBe('requeued 1 dead letter(s): the dispatcher hands them to Temporal again');
  await until('the poisoned item dead once more', async () => (await deadLetterStats(db)).count === 1);
});

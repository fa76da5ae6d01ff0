/**
 * Several API replicas, one outbox (api/dispatcher.ts, db/outbox.ts claimLoans): two real
 * OutboxDispatchers, each with its own connection pool to the same database (as two API processes
 * have), on SQLite and on PostgreSQL, against a real Temporal dev server (localEnv). No worker runs:
 * what each dispatcher handed to Temporal is counted by a client that logs every signalWithStart
 * (outbox id, workflow id, which replica) and passes it to the real server.
 *  - 500 rows of 120 contracts: every row is handed over exactly once, and the rows of one contract
 *    in id order, whichever replica took them;
 *  - a replica that dies holding claims (stopped without giving them back): the other takes its
 *    rows, only after their lease has passed, each once.
 */
import path from 'node:path';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { OutboxDispatcher } from '../../api/dispatcher';
import { Config, DEMO_ENV, loadConfig } from '../../config';
import { createDb, isSqlite, type Db } from '../../db';
import { enqueueLoans } from '../../db/outbox';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { localEnv } from '../helpers/temporal';
import { testDatabases, type TestDatabase } from '../helpers/databases';

jest.setTimeout(300_000);

const quiet = createLogger('outbox-lease-test', 'error', {}, () => undefined);
const rand = mulberry32(20_261_214);
let serial = 7_400_000_000;
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await localEnv();
});
afterAll(async () => {
  await env?.teardown();
});

/** A valid, normalized loan with a fresh contract number, as the API writes it to the outbox. */
function newLoan(): Loan {
  const l = generateLoan(rand, {}, { contractSerial: serial++ });
  return { ...l, debt: Number(l.debt).toFixed(2) } as Loan;
}

interface Call {
  seq: number;
  workflowId: string;
  replica: string;
  at: number;
}

/** The real client; every signalWithStart is logged (in start order) and, after `delayMs`, passed to the real server. */
function countingClient(replica: string, calls: Call[], delayMs = 0): Client {
  const real = env.client;
  const workflow = {
    async signalWithStart(wf: unknown, opts: { workflowId: string; signalArgs: [Loan, { acceptedSeq: number }] }) {
      calls.push({ seq: opts.signalArgs[1].acceptedSeq, workflowId: opts.workflowId, replica, at: Date.now() });
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      return real.workflow.signalWithStart(wf as never, opts as never);
    },
    getHandle: (id: string) => real.workflow.getHandle(id),
  };
  return { connection: real.connection, workflow } as unknown as Client;
}

function replicaConfig(overrides: Record<string, string>): Config {
  return loadConfig({ ...DEMO_ENV, TEMPORAL_TASK_QUEUE: 'k2-outbox-lease-test', K2_DISPATCH_HOLD_RATE: '0', ...overrides });
}

/** Another connection pool to the same database, as another API process would open it. */
async function sameDatabase(db: Db): Promise<Db> {
  if (isSqlite(db)) return createDb({ client: 'sqlite', url: path.resolve((db.client.config.connection as { filename: string }).filename) });
  const { rows } = await db.raw('select current_schema() as schema');
  const url = new URL(process.env.K2_TEST_PG_URL!.trim());
  url.searchParams.set('options', `-c search_path=${rows[0].schema}`);
  return createDb({ client: 'pg', url: url.toString() });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await sleep(100);
  }
}

const undispatched = async (db: Db) => Number((await db('loan_outbox').whereNull('dispatched_at').count({ n: '*' }))[0].n);

/** Each outbox id handed over exactly once: the ids handed over more than once (none), and the ones never handed over (none). */
function onceEach(calls: Call[], ids: number[]): { twice: number[]; never: number[] } {
  const seen = new Map<number, number>();
  for (const c of calls) seen.set(c.seq, (seen.get(c.seq) ?? 0) + 1);
  return { twice: [...seen].filter(([, n]) => n > 1).map(([id]) => id), never: ids.filter((id) => !seen.has(id)) };
}

describe.each(testDatabases())('outbox dispatched by two replicas on %s', (database: TestDatabase) => {
  let db: Db;
  let other: Db;
  const dispatchers: OutboxDispatcher[] = [];

  beforeEach(async () => {
    db = await database.open();
    other = await sameDatabase(db);
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    await other?.destroy();
  });
  afterAll(() => database.cleanup());

  test('500 rows of 120 contracts: each handed to Temporal exactly once, each contract in id order, by both replicas', async () => {
    const contracts = Array.from({ length: 120 }, () => newLoan());
    // Rows of one contract spread over many requests, each a newer state of the loan (overdue_days grows).
    const items = Array.from({ length: 500 }, (_, i) => ({ ...contracts[(i * 7) % contracts.length], overdue_days: 30 + i }));
    for (let i = 0; i < items.length; i += 25) await enqueueLoans(db, items.slice(i, i + 25), `req-lease-${i}`);
    const rows = await db('loan_outbox').orderBy('id').select('id', 'contract_number');
    expect(rows).toHaveLength(500);

    const calls: Call[] = [];
    const config = replicaConfig({ K2_DISPATCH_BATCH: '40', K2_DISPATCH_CONCURRENCY: '8' });
    for (const [name, replicaDb] of [
      ['a', db],
      ['b', other],
    ] as const) {
      const d = new OutboxDispatcher(replicaDb, countingClient(name, calls), config, quiet, new Metrics());
      dispatchers.push(d);
      d.start();
    }
    await eventually('every row dispatched', async () => (await undispatched(db)) === 0);

    expect(
      onceEach(
        calls,
        rows.map((r) => Number(r.id)),
      ),
    ).toEqual({ twice: [], never: [] });
    // Per contract, the calls started in id order (a replica takes a contract's row only after its earlier rows were marked).
    const byContract = new Map<string, number[]>();
    for (const c of calls) byContract.set(c.workflowId, [...(byContract.get(c.workflowId) ?? []), c.seq]);
    for (const [workflowId, seqs] of byContract) expect({ workflowId, seqs }).toEqual({ workflowId, seqs: [...seqs].sort((x, y) => x - y) });
    // Both replicas did part of the work (else this would test one dispatcher).
    expect(new Set(calls.map((c) => c.replica))).toEqual(new Set(['a', 'b']));
    // No claim is left behind.
    expect(Number((await db('loan_outbox').whereNotNull('claimed_by').count({ n: '*' }))[0].n)).toBe(0);
  });

  test('a replica that dies holding claims: the other takes its rows only after their lease, each once', async () => {
    const items = Array.from({ length: 30 }, () => newLoan());
    await enqueueLoans(db, items, 'req-lease-crash');
    const ids = (await db('loan_outbox').orderBy('id').select('id')).map((r) => Number(r.id));
    const calls: Call[] = [];
    const config = replicaConfig({ K2_DISPATCH_BATCH: '100', K2_DISPATCH_CONCURRENCY: '1', K2_OUTBOX_LEASE: '2s' });

    // Replica a claims every row and hands them over slowly, one at a time; it dies after a few.
    const a = new OutboxDispatcher(db, countingClient('a', calls, 300), config, quiet, new Metrics());
    a.start();
    await eventually('a handed over some rows', async () => calls.length >= 2);
    await a.stop({ releaseClaims: false });
    const held = await db('loan_outbox').whereNull('dispatched_at').select('id', 'claimed_by', 'lease_until');
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((r) => r.claimed_by === a.owner)).toBe(true);
    const leaseEnd = Math.max(...held.map((r) => new Date(r.lease_until).getTime()));
    const handedByA = calls.length;

    const b = new OutboxDispatcher(other, countingClient('b', calls), config, quiet, new Metrics());
    dispatchers.push(b);
    b.start();
    await eventually('every row dispatched', async () => (await undispatched(db)) === 0);

    const byB = calls.slice(handedByA);
    expect(byB.length).toBe(held.length);
    expect(byB.every((c) => c.replica === 'b')).toBe(true);
    // Not one of a's rows before its lease had passed (a few ms of clock rounding allowed).
    expect(byB.filter((c) => c.at < leaseEnd - 20).map((c) => c.seq)).toEqual([]);
    expect(onceEach(calls, ids)).toEqual({ twice: [], never: [] });
  });
});

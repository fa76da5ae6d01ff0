/**
 * The GKB record queue on SQLite and PostgreSQL (K2_TEST_PG_URL): one package per contract in
 * flight, claims that count what they really took under concurrent claimers, and the release of
 * records held by a batch whose workflow closed before it finished.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createGkbActivities, type GkbActivityDeps } from '../../activities/gkb';
import type { Db } from '../../db';
import { claimRecords, countClaimable, enqueueReport, recordResults } from '../../db/gkb';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import type { ContractRecord } from '../../domain/gkb/contract-record';
import { createLogger } from '../../observability/logger';
import { testDatabases } from '../helpers/databases';

jest.setTimeout(60_000);

/** Only what the queue reads of a record: its contract code and operation. */
const record = (contractCode: string) => ({ operation: 2, general: { contractCode } }) as unknown as ContractRecord;

let seq = 0;
const queue = (db: Db, contractCode: string) =>
  enqueueReport(db, { reportKey: `r-${++seq}`, caseId: `case-${contractCode}/run`, workflowId: `case-${contractCode}`, record: record(contractCode) });

async function claimedBy(db: Db, batchId: string): Promise<string[]> {
  const rows = await db('gkb_records').where({ batch_id: batchId, state: 'claimed' }).orderBy('id').select('contract_code');
  return rows.map((r) => r.contract_code);
}

describe.each(testDatabases())('GKB queue on %s', (database) => {
  let db: Db;
  beforeEach(async () => {
    db = await database.open();
  });
  afterAll(async () => {
    await database.cleanup();
  });

  test('a contract in flight is not claimed again: its next report waits until the previous package is final', async () => {
    await queue(db, 'A'); // first report of A
    expect(await claimRecords(db, 'batch-1', 100)).toBe(1);
    await queue(db, 'A'); // A's next report (an update, a closure) while the first is at GKB
    await queue(db, 'B');
    expect(await countClaimable(db)).toBe(1); // only B may go now
    expect(await claimRecords(db, 'batch-2', 100)).toBe(1);
    expect(await claimedBy(db, 'batch-2')).toEqual(['B']);

    // GKB finished batch-1's package: A's next report goes with the next batch.
    await db('gkb_records').where({ batch_id: 'batch-1' }).update({ file_name: 'f1' });
    await recordResults(db, 'batch-1', 'f1', new Map([['A', { accepted: true, text: 'ok' }]]));
    expect(await claimRecords(db, 'batch-3', 100)).toBe(1);
    expect(await claimedBy(db, 'batch-3')).toEqual(['A']);
  });

  test('two claimers at once never take the same contract: each takes one report per contract not in flight', async () => {
    // 600 contracts, two reports each: both claimers see the same queue at the same moment.
    for (let i = 0; i < 600; i++) await queue(db, `C${i}`);
    for (let i = 0; i < 600; i++) await queue(db, `C${i}`);
    const [one, two] = await Promise.all([claimRecords(db, 'batch-x', 1000), claimRecords(db, 'batch-y', 1000)]);
    const x = await claimedBy(db, 'batch-x');
    const y = await claimedBy(db, 'batch-y');
    expect([one, two]).toEqual([x.length, y.length]);
    expect(one + two).toBe(600); // every contract once; the second reports wait
    const both = x.filter((c) => new Set(y).has(c));
    expect(both).toEqual([]);
  });

  // PostgreSQL only: the SQLite connection is one, so there is no second claimer to meet.
  (database.name === 'postgres' ? test : test.skip)('two claimers that reach the same rows at once: one takes them, the other counts nothing', async () => {
    for (let i = 0; i < 300; i++) await queue(db, `D${i}`);
    // Another transaction holds the rows a while, so both claimers have chosen their rows when they meet.
    const holder = await db.transaction();
    await holder('gkb_records').where({ state: 'queued' }).forUpdate().select('id');
    const claims = Promise.all([claimRecords(db, 'batch-p', 1000), claimRecords(db, 'batch-q', 1000)]);
    await new Promise((r) => setTimeout(r, 1500));
    await holder.commit();
    const [p, q] = await claims;
    expect([p, q]).toEqual([(await claimedBy(db, 'batch-p')).length, (await claimedBy(db, 'batch-q')).length]);
    expect(p + q).toBe(300);
  });

  describe('a batch whose workflow closed before it finished', () => {
    /** A Temporal client that knows only these batch workflows and their status. */
    const temporalWith = (statuses: Record<string, string>) =>
      ({
        workflow: {
          getHandle: (workflowId: string) => ({
            describe: async () => {
              if (!(workflowId in statuses)) throw new WorkflowNotFoundError('not found', workflowId, undefined);
              return { status: { name: statuses[workflowId] } };
            },
          }),
        },
      }) as never;

    const depsFor = (temporal: never): GkbActivityDeps => ({
      db,
      gkb: {} as never, // neither the claim nor the delivery calls GKB
      temporal,
      dictionary: DEFAULT_GKB_DICTIONARY,
      filesDir: '/nonexistent',
      maxRecordsPerFile: 10,
      batchMaxRecords: 1000,
      batchMinRecords: 10,
      triggerBatch: async () => undefined,
      logger: createLogger('test', 'error'),
    });
    const activities = (statuses: Record<string, string>) => createGkbActivities(depsFor(temporalWith(statuses)));

    test('has its records released to the queue when a new batch claims; a running batch keeps its own', async () => {
      await queue(db, 'T1');
      await queue(db, 'T2');
      expect(await claimRecords(db, 'batch-terminated', 2)).toBe(2);
      await queue(db, 'R1');
      expect(await claimRecords(db, 'batch-running', 1)).toBe(1);
      await queue(db, 'F1');
      expect(await claimRecords(db, 'batch-gone', 1)).toBe(1);
      await queue(db, 'T1'); // T1's next report waits behind the terminated batch's one

      const acts = activities({ 'batch-terminated': 'TERMINATED', 'batch-running': 'RUNNING' }); // batch-gone: not found (retention passed)
      const claimed = await new MockActivityEnvironment().run(acts.claimGkbRecords, { batchId: 'batch-new' });

      expect(claimed).toBe(3);
      const rows = await db('gkb_records').where({ batch_id: 'batch-new' }).orderBy('id').select('id', 'contract_code');
      expect(rows.map((r) => r.contract_code)).toEqual(['T1', 'T2', 'F1']);
      // The released report of T1 goes again, before its later report (still queued).
      const t1 = await db('gkb_records').where({ contract_code: 'T1' }).orderBy('id').select('id', 'state', 'batch_id');
      expect(t1.map((r) => [r.state, r.batch_id])).toEqual([
        ['claimed', 'batch-new'],
        ['queued', null],
      ]);
      expect(await claimedBy(db, 'batch-running')).toEqual(['R1']);
      const batches = await db('gkb_batches').whereIn('batch_id', ['batch-terminated', 'batch-gone']).orderBy('batch_id').select('batch_id', 'state', 'error');
      expect(batches.map((b) => b.state)).toEqual(['abandoned', 'abandoned']);
      expect(batches[1].error).toMatch(/^batch workflow terminated before it finished/);
    });

    test('that had collected results but not delivered them: the next batch delivers them', async () => {
      await queue(db, 'U1');
      expect(await claimRecords(db, 'batch-cut', 1)).toBe(1);
      await db('gkb_records').where({ batch_id: 'batch-cut' }).update({ file_name: 'f' });
      await recordResults(db, 'batch-cut', 'f', new Map([['U1', { accepted: true, text: 'Контракт обновлен.' }]]));
      await db('gkb_batches').where({ batch_id: 'batch-cut' }).update({ state: 'delivering' }); // then terminated

      const signalled: string[] = [];
      const temporal = {
        workflow: {
          getHandle: (workflowId: string) => ({
            describe: async () => ({ status: { name: workflowId === 'batch-cut' ? 'TERMINATED' : 'RUNNING' } }),
            signal: async () => void signalled.push(workflowId),
          }),
        },
      } as never;
      const acts = createGkbActivities({ ...depsFor(temporal) });
      const env = new MockActivityEnvironment();
      expect(await env.run(acts.claimGkbRecords, { batchId: 'batch-next' })).toBe(0);
      expect(await env.run(acts.deliverGkbResults, { batchId: 'batch-next' })).toBe(1);
      expect(signalled).toEqual(['case-U1']);
      expect(await db('gkb_batches').where({ batch_id: 'batch-cut' }).first('state')).toEqual({ state: 'abandoned-delivered' });
    });
  });
});

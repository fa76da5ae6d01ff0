/**
 * The database reads and writes of the operator CLI's outbox and GKB commands (db/outbox.ts
 * outboxStatus, requeueAllDeadLetters; db/gkb.ts recentBatches, contractRecords, filesOfPackage,
 * fileResults) on every database the suite has (SQLite always, PostgreSQL when K2_TEST_PG_URL is set).
 */
import type { Db } from '../../db';
import {
  assignFile,
  claimRecords,
  contractRecords,
  enqueueReport,
  fileResults,
  filesOfPackage,
  markDelivered,
  recentBatches,
  recordResults,
  saveBatch,
} from '../../db/gkb';
import { claimLoans, enqueueLoans, markDispatchFailed, outboxStatus, requeueAllDeadLetters } from '../../db/outbox';
import type { ContractRecord } from '../../domain/gkb/contract-record';
import { generateLoans } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { testDatabases, type TestDatabase } from '../helpers/databases';

jest.setTimeout(60_000);

const loans = (seed: number, count: number): Loan[] => generateLoans(seed, count).map((l) => ({ ...l, debt: Number(l.debt).toFixed(2) }));
/** Only what the queue reads of a record: its contract code and operation. */
const record = (contractCode: string) => ({ operation: 2, general: { contractCode } }) as unknown as ContractRecord;

describe.each(testDatabases())("the CLI's database reads on $name", (tdb: TestDatabase) => {
  let db: Db;
  beforeEach(async () => {
    db = await tdb.open();
  });
  afterAll(async () => {
    await tdb.cleanup();
  });

  const outboxIds = async () => (await db('loan_outbox').orderBy('id').select('id')).map((r) => Number(r.id));

  test('outbox status: pending with the oldest acceptance, waiting to retry, claims under a valid lease by dispatcher, dead letters', async () => {
    expect(await outboxStatus(db)).toEqual({ pending: 0, waitingRetry: 0, claimed: 0, claimers: 0, dead: 0 });
    const acceptedAt = new Date('2026-01-02T03:04:05.000Z');
    await enqueueLoans(db, loans(21, 6), 'req-1', acceptedAt);
    await enqueueLoans(db, loans(22, 1), 'req-2', new Date('2026-01-03T00:00:00.000Z'));
    const [waiting, dead, ...rest] = await outboxIds();
    await markDispatchFailed(db, waiting, 'FAILED_PRECONDITION: later', { retryAt: new Date(Date.now() + 3600_000) });
    await markDispatchFailed(db, dead, 'INVALID_ARGUMENT: never', { dead: true });
    // Dispatcher a holds two rows for a minute; dispatcher b's claim on two more has already passed.
    expect((await claimLoans(db, 'dispatcher-a', { limit: 2, leaseMs: 60_000 })).rows.map((r) => r.id)).toEqual(rest.slice(0, 2));
    expect((await claimLoans(db, 'dispatcher-b', { limit: 2, leaseMs: 1, afterId: rest[1] })).rows.map((r) => r.id)).toEqual(rest.slice(2, 4));
    await new Promise((r) => setTimeout(r, 50));

    expect(await outboxStatus(db)).toEqual({
      pending: 6,
      oldestPendingAcceptedAt: acceptedAt,
      waitingRetry: 1,
      claimed: 2,
      claimers: 1,
      dead: 1,
      oldestDeadAcceptedAt: acceptedAt,
    });
  });

  test('requeue --all puts every dead letter back with a fresh attempt count, and only dead letters', async () => {
    await enqueueLoans(db, loans(23, 3), 'req-3');
    const [a, b, c] = await outboxIds();
    await markDispatchFailed(db, a, 'INVALID_ARGUMENT: one', { dead: true });
    await markDispatchFailed(db, b, 'INVALID_ARGUMENT: two');
    await markDispatchFailed(db, b, 'INVALID_ARGUMENT: two', { dead: true });
    await markDispatchFailed(db, c, 'FAILED_PRECONDITION: waits', { retryAt: new Date(Date.now() + 3600_000) });
    expect(await requeueAllDeadLetters(db)).toBe(2);
    const rows = await db('loan_outbox').orderBy('id').select('attempts', 'dead_at', 'next_attempt_at');
    expect(rows.map((r) => [Number(r.attempts), r.dead_at, r.next_attempt_at === null])).toEqual([
      [0, null, true],
      [0, null, true],
      [1, null, false], // not a dead letter: its wait is kept
    ]);
    expect(await requeueAllDeadLetters(db)).toBe(0);
    expect(await outboxStatus(db)).toMatchObject({ pending: 3, dead: 0 });
  });

  test("GKB batches with their files and counts, a contract's records with their package, a package's results", async () => {
    let key = 0;
    const queue = (contract: string) =>
      enqueueReport(db, {
        reportKey: `case-${contract}/run/overdue/${++key}`,
        caseId: `case-${contract}/run`,
        workflowId: `case-${contract}`,
        record: record(contract),
      });
    const [a1, b1, c1] = [await queue('KD-A'), await queue('KD-B'), await queue('KD-C')];
    expect(await claimRecords(db, 'batch-1', 100)).toBe(3);
    await assignFile(db, 'batch-1', 'batch-1-1.zip', ['KD-A', 'KD-B']);
    await assignFile(db, 'batch-1', 'batch-1-2.zip', ['KD-C']);
    const files = [
      { fileName: 'batch-1-1.zip', records: 2, sha256: 'x', packageId: '11', statusText: 'Файл обработан.', final: true },
      { fileName: 'batch-1-2.zip', records: 1, sha256: 'y', packageId: '1', statusText: 'Файл находится в процессе обработки', final: false },
    ];
    await saveBatch(db, 'batch-1', 'polling', files);
    await recordResults(
      db,
      'batch-1',
      'batch-1-1.zip',
      new Map([
        ['KD-A', { accepted: true, text: 'Создан новый контракт.', created: true }],
        ['KD-B', { accepted: false, text: 'Запись не загружена.' }],
      ]),
    );
    await markDelivered(db, [b1]);
    const c2 = await queue('KD-C'); // C's next report waits: its first is still at GKB
    expect(await claimRecords(db, 'batch-empty', 100)).toBe(0); // so a batch finds nothing to claim

    const [batch] = await recentBatches(db, { limit: 10 });
    expect(batch).toMatchObject({
      batchId: 'batch-1',
      state: 'polling',
      files,
      records: { claimed: 1, accepted: 1, rejected: 1, undelivered: 1 },
      byFile: {
        'batch-1-1.zip': { claimed: 0, accepted: 1, rejected: 1, undelivered: 1 },
        'batch-1-2.zip': { claimed: 1, accepted: 0, rejected: 0, undelivered: 0 },
      },
    });
    expect((await recentBatches(db, { limit: 10 })).map((b) => b.batchId)).toEqual(['batch-1']);
    expect((await recentBatches(db, { limit: 10, includeEmpty: true })).map((b) => b.batchId).sort()).toEqual(['batch-1', 'batch-empty']);
    expect((await recentBatches(db, { limit: 10, batchId: 'batch-empty' })).map((b) => [b.batchId, b.state])).toEqual([['batch-empty', 'empty']]);

    const [ofA] = await contractRecords(db, 'KD-A');
    expect(ofA).toEqual(
      expect.objectContaining({
        id: a1,
        reportKey: 'case-KD-A/run/overdue/1',
        workflowId: 'case-KD-A',
        state: 'accepted',
        batchId: 'batch-1',
        fileName: 'batch-1-1.zip',
        packageId: '11',
        resultText: 'Создан новый контракт.',
        newContract: true,
        skipped: false,
      }),
    );
    expect(ofA.deliveredAt).toBeUndefined();
    const ofC = await contractRecords(db, 'KD-C');
    expect(ofC.map((r) => [r.id, r.state, r.packageId, r.resultText])).toEqual([
      [c1, 'claimed', '1', undefined],
      [c2, 'queued', undefined, undefined],
    ]);
    expect((await contractRecords(db, 'KD-B'))[0].deliveredAt).toEqual(expect.any(String));
    expect(await contractRecords(db, 'KD-NONE')).toEqual([]);

    // Package '1' is not package '11'.
    expect(await filesOfPackage(db, '1')).toEqual([{ batchId: 'batch-1', file: files[1] }]);
    expect(await filesOfPackage(db, '11')).toEqual([{ batchId: 'batch-1', file: files[0] }]);
    expect(await filesOfPackage(db, '%')).toEqual([]);
    expect(await filesOfPackage(db, '99')).toEqual([]);

    const first = await fileResults(db, 'batch-1', 'batch-1-1.zip');
    expect(first.open).toBe(0);
    expect(first.results).toEqual([
      { id: a1, workflow_id: 'case-KD-A', contract_code: 'KD-A', state: 'accepted', result_text: 'Создан новый контракт.', new_contract: true, skipped: false },
      { id: b1, workflow_id: 'case-KD-B', contract_code: 'KD-B', state: 'rejected', result_text: 'Запись не загружена.', new_contract: false, skipped: false },
    ]);
    expect(await fileResults(db, 'batch-1', 'batch-1-2.zip')).toEqual({ results: [], open: 1 });
  });
});

/**
 * GKB's answers to the letter (gkb-batch-upload.txt §4.1.2–4.1.3, DOMAIN.md §5, G6, G7), activity by
 * activity against a scripted GKB client and a real SQLite queue: a file that ends «Ошибка
 * обработки.», skipped records, «Создан новый контракт.» to an update, package matching, results
 * sent to cases by their signal's definition, the enqueue's typed failures and the early-batch size.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createGkbActivities, earlyBatchThreshold, GkbRecordResult, packageStatusOf, SKIPPED_TEXT, type GkbActivityDeps } from '../../activities/gkb';
import type { Db } from '../../db';
import { claimRecords, enqueueReport } from '../../db/gkb';
import type { ContractRecord } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { FAILURE_TYPES } from '../../domain/failures';
import { mulberry32 } from '../../domain/generate';
import {
  BatchFileInfo,
  BatchRecordInfo,
  classifyBatchStatus,
  GkbClient,
  isFinalStatus,
  pageAfter,
  RecordGroupStatus,
} from '../../integrations/gkb/soap-client';
import { createLogger } from '../../observability/logger';
import { gkbResultSignal } from '../../workflows/definitions';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';
import { testDatabases } from '../helpers/databases';

const [sqlite] = testDatabases();
let db: Db;

beforeEach(async () => {
  db = await sqlite.open();
});
afterAll(async () => {
  await sqlite.cleanup();
});

/** A GKB whose detail answers are these records, by file and group, served in pages as GKB does. */
function scriptedGkb(details: Record<string, Partial<Record<RecordGroupStatus, BatchRecordInfo[]>>>, calls: string[] = []): GkbClient {
  return {
    async getImportDetailInfo({ fileId, recordGroupStatus, firstResult = 0, maxResults = 100 }) {
      calls.push(`${fileId}/${recordGroupStatus}@${firstResult}`);
      const all = details[fileId]?.[recordGroupStatus] ?? [];
      const records = all.slice(firstResult, firstResult + maxResults);
      return { records, ...pageAfter(firstResult, maxResults, records.length, all.length) };
    },
  } as GkbClient;
}

function activities(gkb: GkbClient, more: Partial<GkbActivityDeps> = {}) {
  return createGkbActivities({
    db,
    gkb,
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: '/nonexistent',
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    detailPageSize: 2,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
    ...more,
  });
}

const record = (contractCode: string, operation: 1 | 2 = 2) => ({ operation, general: { contractCode } }) as unknown as ContractRecord;

/** Queues these contracts, claims them for `batch` and files them in `file`. */
async function filed(batch: string, file: string, contracts: Array<string | [string, 1 | 2]>): Promise<void> {
  for (const c of contracts) {
    const [code, operation] = typeof c === 'string' ? [c, 2 as const] : c;
    await enqueueReport(db, { reportKey: `${batch}/${code}`, caseId: `case-${code}/run`, workflowId: `case-${code}`, record: record(code, operation) });
  }
  await claimRecords(db, batch, 1000);
  await db('gkb_records').where({ batch_id: batch }).update({ file_name: file });
}

interface Outcome {
  state: string;
  text: string;
  newContract: boolean;
  skipped: boolean;
}

async function outcomes(batch: string): Promise<Record<string, Outcome>> {
  const rows = await db('gkb_records')
    .where({ batch_id: batch })
    .orderBy('contract_code')
    .select('contract_code', 'state', 'result_text', 'new_contract', 'skipped');
  return Object.fromEntries(
    rows.map((r) => [r.contract_code, { state: r.state, text: r.result_text, newContract: Boolean(r.new_contract), skipped: Boolean(r.skipped) }]),
  );
}

const gkbRecord = (contractCode: string, group: RecordGroupStatus, texts: { result?: string; message?: string; subjectId?: string }): BatchRecordInfo => ({
  recordId: `${contractCode}-${group}-${texts.subjectId ?? 'c'}`,
  contractCode,
  group,
  newContract: texts.result === 'Создан новый контракт.',
  ...texts,
});

describe('a file that ends «Ошибка обработки.»', () => {
  test('each record gets its own error from every page of recordGroupStatus 0; only records without one get the file status', async () => {
    await filed('b1', 'K2_b1_1.zip', ['E1', 'E2', 'E3', 'E4']);
    const calls: string[] = [];
    const gkb = scriptedGkb(
      {
        '901': {
          0: [
            gkbRecord('E1', 0, { message: 'Неверный формат даты StartDate.' }),
            gkbRecord('E2', 0, { message: 'ИИН не прошел проверку контрольного разряда.' }),
            gkbRecord('E3', 0, { message: 'Не заполнен обязательный блок: Collaterals.' }),
          ],
        },
      },
      calls,
    );
    const failure = 'GKB could not process file K2_b1_1.zip: «Ошибка обработки.»';
    const counts = await new MockActivityEnvironment().run(activities(gkb).collectGkbResults, {
      batchId: 'b1',
      fileName: 'K2_b1_1.zip',
      fileIds: ['901'],
      failure,
      processingFailed: true,
      skippedContracts: 0,
    });
    expect(counts).toEqual({ accepted: 0, rejected: 4 });
    expect(calls).toEqual(['901/0@0', '901/0@2']); // both pages of errors, nothing else
    const o = await outcomes('b1');
    expect(o.E1).toMatchObject({ state: 'rejected', text: 'Неверный формат даты StartDate.' });
    expect(o.E2).toMatchObject({ state: 'rejected', text: 'ИИН не прошел проверку контрольного разряда.' });
    expect(o.E3).toMatchObject({ state: 'rejected', text: 'Не заполнен обязательный блок: Collaterals.' });
    expect(o.E4).toMatchObject({ state: 'rejected', text: failure });
  });

  test('a file GKB refused at upload still gives every record the refusal', async () => {
    await filed('b2', 'K2_b2_1.zip', ['R1', 'R2']);
    const counts = await new MockActivityEnvironment().run(activities(scriptedGkb({})).collectGkbResults, {
      batchId: 'b2',
      fileName: 'K2_b2_1.zip',
      failure: 'GKB ScbBusinessFault X: нет',
    });
    expect(counts).toEqual({ accepted: 0, rejected: 2 });
    expect(Object.values(await outcomes('b2')).map((r) => r.text)).toEqual(['GKB ScbBusinessFault X: нет', 'GKB ScbBusinessFault X: нет']);
  });
});

describe('a processed file', () => {
  test('a record in no result group, when GKB counted it in skippedContracts, is accepted as skipped', async () => {
    await filed('b3', 'K2_b3_1.zip', ['S1', 'S2', 'S3']);
    const gkb = scriptedGkb({ '902': { 4: [gkbRecord('S1', 4, { result: 'Контракт обновлен.' }), gkbRecord('S3', 4, { result: 'Контракт обновлен.' })] } });
    const counts = await new MockActivityEnvironment().run(activities(gkb).collectGkbResults, {
      batchId: 'b3',
      fileName: 'K2_b3_1.zip',
      fileIds: ['902'],
      skippedContracts: 1,
    });
    expect(counts).toEqual({ accepted: 3, rejected: 0 });
    const o = await outcomes('b3');
    expect(o.S2).toEqual({ state: 'accepted', text: SKIPPED_TEXT, newContract: false, skipped: true });
    expect(o.S1).toMatchObject({ state: 'accepted', skipped: false });
  });

  test('more records without a result than GKB counted skipped: none can be told apart, all of them are rejected with that reason', async () => {
    await filed('b4', 'K2_b4_1.zip', ['M1', 'M2', 'M3']);
    const gkb = scriptedGkb({ '903': { 4: [gkbRecord('M1', 4, { result: 'Контракт обновлен.' })] } });
    const counts = await new MockActivityEnvironment().run(activities(gkb).collectGkbResults, {
      batchId: 'b4',
      fileName: 'K2_b4_1.zip',
      fileIds: ['903'],
      skippedContracts: 1,
    });
    expect(counts).toEqual({ accepted: 1, rejected: 2 });
    const o = await outcomes('b4');
    for (const c of ['M2', 'M3']) {
      expect(o[c]).toMatchObject({ state: 'rejected', skipped: false });
      expect(o[c].text).toBe('GKB returned no result for this record (2 records of the file without a result, GKB counted 1 skipped)');
    }
  });

  test("an update answered «Создан новый контракт.» is accepted as a new contract with GKB's text; an insert answered so is plainly accepted", async () => {
    await filed('b5', 'K2_b5_1.zip', ['N1', ['N2', 1], 'N3']);
    const gkb = scriptedGkb({
      '904': {
        4: [
          gkbRecord('N1', 4, { result: 'Создан новый контракт.' }),
          gkbRecord('N1', 4, { result: 'Субъект обновлен.', subjectId: '77' }),
          gkbRecord('N2', 4, { result: 'Создан новый контракт.' }),
          gkbRecord('N3', 4, { result: 'Контракт обновлен.' }),
        ],
      },
    });
    await new MockActivityEnvironment().run(activities(gkb).collectGkbResults, {
      batchId: 'b5',
      fileName: 'K2_b5_1.zip',
      fileIds: ['904'],
      skippedContracts: 0,
    });
    const o = await outcomes('b5');
    expect(o.N1).toEqual({ state: 'accepted', text: 'Создан новый контракт. Субъект обновлен.', newContract: true, skipped: false });
    expect(o.N2).toMatchObject({ state: 'accepted', newContract: false });
    expect(o.N3).toMatchObject({ state: 'accepted', newContract: false });
  });
});

test('results go to each case by the gkbResult signal definition, with the new-contract and skipped flags', async () => {
  await filed('b6', 'K2_b6_1.zip', ['D1', 'D2', 'D3']);
  const gkb = scriptedGkb({ '905': { 0: [gkbRecord('D3', 0, { message: 'Ошибка.' })], 4: [gkbRecord('D1', 4, { result: 'Создан новый контракт.' })] } });
  const sent: Array<{ workflowId: string; signal: unknown; result: GkbRecordResult }> = [];
  const temporal = {
    workflow: {
      getHandle: (workflowId: string) => ({ signal: async (signal: unknown, result: GkbRecordResult) => void sent.push({ workflowId, signal, result }) }),
    },
  } as never;
  const acts = activities(gkb, { temporal });
  await new MockActivityEnvironment().run(acts.collectGkbResults, { batchId: 'b6', fileName: 'K2_b6_1.zip', fileIds: ['905'], skippedContracts: 1 });
  expect(await new MockActivityEnvironment().run(acts.deliverGkbResults, { batchId: 'b6' })).toBe(3);
  expect(sent.every((s) => s.signal === gkbResultSignal)).toBe(true);
  const byCase = Object.fromEntries(sent.map((s) => [s.workflowId, s.result]));
  expect(byCase['case-D1']).toMatchObject({ outcome: 'accepted', text: 'Создан новый контракт.', newContract: true });
  expect(byCase['case-D1'].skipped).toBeUndefined();
  expect(byCase['case-D2']).toMatchObject({ outcome: 'accepted', text: SKIPPED_TEXT, skipped: true });
  expect(byCase['case-D3']).toEqual({ recordId: expect.any(String), outcome: 'rejected', text: 'Ошибка.' });
});

describe('a package as GKB shows it (packageStatusOf)', () => {
  const file = (fileId: string, status: string, more: Partial<BatchFileInfo> = {}): BatchFileInfo => ({
    fileId,
    fileName: 'K2_b_1.xml', // the XML inside the package: never what K2 uploaded
    packageId: '241029',
    packageName: 'K2_b_1.zip',
    batchUploadStatus: status,
    status: classifyBatchStatus(status),
    final: isFinalStatus(status),
    numberOfContracts: 0,
    newContracts: 0,
    updatedContracts: 0,
    skippedContracts: 0,
    mergedContracts: 0,
    numberOfSubjects: 0,
    newSubjects: 0,
    updatedSubjects: 0,
    mergedSubjects: 0,
    numberOfErrors: 0,
    ...more,
  });

  test('no file yet (an answer without filesImportInfo) is not known yet, not final, not failed', () => {
    expect(packageStatusOf([], '241029', 'K2_b_1.zip')).toMatchObject({ known: false, final: false, failed: false, fileIds: [] });
  });

  test("the package's files are matched by batchPackage, whatever the XML inside is called", () => {
    const status = packageStatusOf([file('1', 'Файл обработан.', { skippedContracts: 2 })], '241029', 'K2_b_1.zip');
    expect(status).toEqual({ known: true, fileIds: ['1'], statusText: 'Файл обработан.', final: true, failed: false, skippedContracts: 2, numberOfErrors: 0 });
    expect(packageStatusOf([file('1', 'Файл обработан.', { packageId: '5', packageName: 'other.zip' })], '241029', 'K2_b_1.zip').known).toBe(false);
  });

  test('a package of two files is final when both are, and failed when one ended «Ошибка обработки.»', () => {
    expect(packageStatusOf([file('1', 'Файл обработан.'), file('2', 'Файл находится в процессе обработки')], '241029', 'K2_b_1.zip')).toMatchObject({
      known: true,
      final: false,
    });
    expect(packageStatusOf([file('1', 'Файл обработан.'), file('2', 'Ошибка обработки.', { numberOfErrors: 3 })], '241029', 'K2_b_1.zip')).toMatchObject({
      fileIds: ['1', '2'],
      final: true,
      failed: true,
      numberOfErrors: 3,
      statusText: 'Файл обработан.; Ошибка обработки.',
    });
  });
});

describe("the case's enqueue", () => {
  const dossier = sampleDossier({}, mulberry32(3), 1);
  /** A database whose every query (any builder chain, awaited) and transaction fails with `err`. */
  const failingDb = (err: unknown): Db => {
    const query: object = new Proxy({}, { get: (_, prop) => (prop === 'then' ? (_ok: unknown, fail: (e: unknown) => void) => fail(err) : () => query) });
    return Object.assign(() => query, { transaction: async () => Promise.reject(err) }) as unknown as Db;
  };
  const enqueueWith = (failing: Db): Promise<unknown> =>
    new MockActivityEnvironment().run(createGkbActivities({ ...depsOf(failing) }).enqueueGkbReport, {
      reportKey: 'case-1/run/overdue/1',
      caseId: 'case-1/run',
      workflowId: 'case-1',
      dossier,
    });
  const depsOf = (failing: Db): GkbActivityDeps => ({
    db: failing,
    gkb: {} as never,
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: '/nonexistent',
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
  });

  test('a busy or unreachable queue is GkbQueueUnavailable (retryable)', async () => {
    const err = await enqueueWith(failingDb(Object.assign(new Error('SQLITE_BUSY: database is locked'), { code: 'SQLITE_BUSY' }))).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: FAILURE_TYPES.gkbQueueUnavailable, nonRetryable: false });
  });

  test('a queue that refuses the record is GkbQueueError (not retryable), its text naming no value', async () => {
    const err = await enqueueWith(
      failingDb(Object.assign(new Error(`null value in column "record" violates not-null constraint ${dossier.iinbin}`), { code: '23502' })),
    ).catch((e: Error) => e);
    expect(err).toMatchObject({ type: FAILURE_TYPES.gkbQueueError, nonRetryable: true });
    expect((err as Error).message).toBe('the GKB queue refused report case-1/run/overdue/1 (23502)');
  });
});

describe('an early batch (DOMAIN.md G7)', () => {
  test('waits for a full package whatever GKB_BATCH_MIN_RECORDS says', () => {
    expect(earlyBatchThreshold(5000, 10_000)).toBe(10_000);
    expect(earlyBatchThreshold(20_000, 10_000)).toBe(20_000);
  });

  test('is not triggered by fewer queued contracts than a package holds', async () => {
    let triggered = 0;
    const acts = activities({} as GkbClient, { maxRecordsPerFile: 4, batchMinRecords: 2, triggerBatch: async () => void (triggered += 1) });
    const rand = mulberry32(9);
    const enqueue = (i: number) =>
      acts.enqueueGkbReport({ reportKey: `case-${i}/run/overdue/1`, caseId: `case-${i}/run`, workflowId: `case-${i}`, dossier: sampleDossier({}, rand, i) });
    await enqueue(1);
    await enqueue(2);
    await new Promise((r) => setTimeout(r, 1100)); // the queue is counted at most once a second
    await enqueue(3); // counted: 3 queued, below a package of 4
    expect(triggered).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    await enqueue(4); // counted: a full package waits
    expect(triggered).toBe(1);
  });
});

/**
 * The batch workflow reads GKB's answers to the letter (gkb-batch-upload.txt §4.1.2–4.1.3), on the
 * time-skipping server with the real GKB activities and queue (SQLite) and a scripted GKB:
 * a package GKB does not show yet is polled on, its files are matched by batchPackage (the XML inside
 * has another name, and there may be two), a file that ends «Ошибка обработки.» gives each record its
 * own error, skipped records and «Создан новый контракт.» reach the records as such.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createGkbActivities, GkbActivities, GkbFileProgress } from '../../activities/gkb';
import { Db, openDb } from '../../db';
import { claimedRecords, assignFile, enqueueReport, saveBatch } from '../../db/gkb';
import type { ContractRecord } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
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
import { gkbBatchWorkflow } from '../../workflows';
import { workflowsPath } from '../../worker';
import { recordHistory } from '../helpers/histories';
import { resultOnSkippedHours, timeSkippingEnv } from '../helpers/temporal';

jest.setTimeout(240_000);

let env: TestWorkflowEnvironment;
let dir: string;
let db: Db;

beforeAll(async () => {
  env = await timeSkippingEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-gkb-answers-'));
  db = await openDb({ client: 'sqlite', url: path.join(dir, 'k2.sqlite') });
});

afterAll(async () => {
  await db?.destroy();
  await env?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** What one poll of the package shows: its files' status texts and skipped counts (none yet: []). */
type Poll = Array<{ xml: string; fileId: string; status: string; skipped?: number; errors?: number }>;

/** A GKB that shows the package as `polls` say (the last one from then on) and answers details from `details`. */
function scriptedGkb(polls: Poll[], details: Record<string, Partial<Record<RecordGroupStatus, BatchRecordInfo[]>>>): GkbClient {
  let packageName = '';
  let polled = 0;
  const file = (f: Poll[number]): BatchFileInfo => ({
    fileId: f.fileId,
    fileName: f.xml,
    packageId: '241029',
    packageName,
    batchUploadStatus: f.status,
    status: classifyBatchStatus(f.status),
    final: isFinalStatus(f.status),
    numberOfContracts: 0,
    newContracts: 0,
    updatedContracts: 0,
    skippedContracts: f.skipped ?? 0,
    mergedContracts: 0,
    numberOfSubjects: 0,
    newSubjects: 0,
    updatedSubjects: 0,
    mergedSubjects: 0,
    numberOfErrors: f.errors ?? 0,
  });
  const client: Pick<GkbClient, 'uploadFileOnce' | 'getImportInfo' | 'getImportDetailInfo'> = {
    async uploadFileOnce({ fileName }) {
      packageName = fileName;
      return { batchPackageId: '241029', adopted: false };
    },
    async getImportInfo() {
      const files = polls[Math.min(polled++, polls.length - 1)].map(file);
      return { files, ...pageAfter(0, 100, files.length, files.length) };
    },
    async getImportDetailInfo({ fileId, recordGroupStatus, firstResult = 0, maxResults = 100 }) {
      const all = details[fileId]?.[recordGroupStatus] ?? [];
      const records = all.slice(firstResult, firstResult + maxResults);
      return { records, ...pageAfter(firstResult, maxResults, records.length, all.length) };
    },
  };
  return client as GkbClient;
}

const gkbRecord = (contractCode: string, group: RecordGroupStatus, texts: { result?: string; message?: string }): BatchRecordInfo => ({
  recordId: `${contractCode}-${group}`,
  contractCode,
  group,
  newContract: texts.result === 'Создан новый контракт.',
  ...texts,
});

/**
 * The real GKB activities but for the file builder: it files every claimed record in one package
 * without writing XML (the files themselves are tested in test/unit/gkb-batch-file.test.ts).
 */
function activities(gkb: GkbClient): GkbActivities {
  const real = createGkbActivities({
    db,
    gkb,
    temporal: env.client,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: path.join(dir, 'gkb'),
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    detailPageSize: 2,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
  });
  return {
    ...real,
    async buildGkbFiles({ batchId }): Promise<GkbFileProgress[]> {
      const codes: string[] = [];
      for await (const { record } of claimedRecords(db, batchId)) codes.push(record.general.contractCode);
      const fileName = `K2_${batchId}_1.zip`;
      await assignFile(db, batchId, fileName, codes);
      const progress = [{ fileName, records: codes.length, sha256: '0'.repeat(64) }];
      await saveBatch(db, batchId, 'built', progress);
      return progress;
    },
    async uploadGkbFile({ fileName }) {
      const { batchPackageId, adopted } = await gkb.uploadFileOnce({ file: Buffer.from(''), fileName, fileType: 1, searchFirst: false });
      return { packageId: batchPackageId, adopted };
    },
  };
}

async function queue(batchLabel: string, contracts: string[]): Promise<void> {
  for (const code of contracts) {
    const record = { operation: 2, general: { contractCode: code } } as unknown as ContractRecord;
    await enqueueReport(db, { reportKey: `${batchLabel}/${code}`, caseId: `case-${code}/run`, workflowId: `case-${code}`, record });
  }
}

/** The batch's summary once it ends; a batch still polling after two days fails the test. */
function batchSummary(workflowId: string) {
  return resultOnSkippedHours<typeof gkbBatchWorkflow>(env, workflowId, 48);
}

async function outcomes(batchId: string): Promise<Record<string, { state: string; text: string; newContract: boolean; skipped: boolean; delivered: boolean }>> {
  const rows = await db('gkb_records')
    .where({ batch_id: batchId })
    .orderBy('contract_code')
    .select('contract_code', 'state', 'result_text', 'new_contract', 'skipped', 'delivered_at');
  return Object.fromEntries(
    rows.map((r) => [
      r.contract_code,
      { state: r.state, text: r.result_text, newContract: Boolean(r.new_contract), skipped: Boolean(r.skipped), delivered: r.delivered_at !== null },
    ]),
  );
}

async function runBatch(taskQueue: string, batchId: string, gkb: GkbClient) {
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: activities(gkb) });
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start(gkbBatchWorkflow, {
      workflowId: batchId,
      taskQueue,
      args: [{ settings: { pollInitialMs: 60_000, pollMaxMs: 3600_000, maxHistoryEvents: 2000 } }],
    });
    const summary = await batchSummary(batchId);
    return { summary, handle };
  });
}

test('a file that ends «Ошибка обработки.» gives each record its own error; a package GKB does not show yet is polled on', async () => {
  await queue('errors', ['E1', 'E2', 'E3']);
  const gkb = scriptedGkb(
    [
      [], // no filesImportInfo yet: not known, keep polling
      [{ xml: 'K2_gkb-answers-errors_1.xml', fileId: '7001', status: 'Файл находится в процессе обработки' }],
      [{ xml: 'K2_gkb-answers-errors_1.xml', fileId: '7001', status: 'Ошибка обработки.', errors: 2 }],
    ],
    {
      '7001': {
        0: [gkbRecord('E1', 0, { message: 'Неверный формат даты StartDate.' }), gkbRecord('E3', 0, { message: 'Не заполнен обязательный блок: Collaterals.' })],
        4: [gkbRecord('E2', 4, { result: 'Контракт обновлен.' })], // not read: GKB loaded nothing of a failed file
      },
    },
  );
  const { summary, handle } = await runBatch('gkb-answers-errors', 'gkb-answers-errors', gkb);

  const o = await outcomes('gkb-answers-errors');
  expect(o.E1).toMatchObject({ state: 'rejected', text: 'Неверный формат даты StartDate.', delivered: true });
  expect(o.E3).toMatchObject({ state: 'rejected', text: 'Не заполнен обязательный блок: Collaterals.', delivered: true });
  expect(o.E2).toMatchObject({ state: 'rejected', text: 'GKB could not process file K2_gkb-answers-errors_1.zip: «Ошибка обработки.»', delivered: true });
  expect(summary).toMatchObject({ records: 3, accepted: 0, rejected: 3, polls: 3 });
  expect(summary.files[0]).toMatchObject({ packageId: '241029', fileIds: ['7001'], final: true, processingFailed: true, statusText: 'Ошибка обработки.' });
  await recordHistory(handle, 'gkb-batch-file-errors');
});

test('a package GKB shows as two files (matched by batchPackage, not by the XML names) is final when both are; skipped and new contracts are kept', async () => {
  await queue('two', ['A1', 'B1', 'C1']);
  const processing = 'Файл находится в процессе обработки';
  const done = 'Файл обработан.';
  const gkb = scriptedGkb(
    [
      [
        { xml: 'part-a.xml', fileId: '8001', status: done },
        { xml: 'part-b.xml', fileId: '8002', status: processing },
      ],
      [
        { xml: 'part-a.xml', fileId: '8001', status: done },
        { xml: 'part-b.xml', fileId: '8002', status: done, skipped: 1 },
      ],
    ],
    {
      '8001': { 4: [gkbRecord('A1', 4, { result: 'Контракт обновлен.' })] },
      '8002': { 4: [gkbRecord('B1', 4, { result: 'Создан новый контракт.' })] },
    },
  );
  const { summary, handle } = await runBatch('gkb-answers-two', 'gkb-answers-two', gkb);

  expect(summary).toMatchObject({ records: 3, accepted: 3, rejected: 0, polls: 2 });
  expect(summary.files[0]).toMatchObject({ fileIds: ['8001', '8002'], final: true, skippedContracts: 1 });
  const o = await outcomes('gkb-answers-two');
  expect(o.A1).toMatchObject({ state: 'accepted', text: 'Контракт обновлен.', newContract: false, skipped: false });
  expect(o.B1).toMatchObject({ state: 'accepted', text: 'Создан новый контракт.', newContract: true, skipped: false });
  expect(o.C1).toMatchObject({ state: 'accepted', newContract: false, skipped: true });
  expect(Object.values(o).every((r) => r.delivered)).toBe(true);
  await recordHistory(handle, 'gkb-batch-package-of-two-files');
});

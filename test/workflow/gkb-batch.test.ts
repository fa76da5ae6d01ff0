/**
 * GKB reporting end to end on the time-skipping server: real case workflows (ABS/EKO faked) queue
 * their records in a real SQLite database; the batch workflow builds and validates real files (split
 * in two), uploads them over SOAP to the real GKB sandbox, polls through two days of processing
 * (continuing as new on the way), pages through the results and fans them back to the cases.
 *
 * The sandbox lives on the workflow's clock: every GKB activity sets the sandbox's "now" to the
 * time Temporal scheduled it, so days of GKB processing pass as the test server skips time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createGkbActivities, GkbActivities } from '../../activities/gkb';
import { Db, openDb } from '../../db';
import { caseWorkflowId, CaseStatus } from '../../domain/case';
import { generateIin, mulberry32 } from '../../domain/generate';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { createGkbClient } from '../../integrations/gkb/soap-client';
import { createLogger } from '../../observability/logger';
import { createGkbSandbox } from '../../simulators/gkb/sandbox';
import { Faults } from '../../simulators/faults';
import { caseStatusQuery, caseWorkflow, gkbBatchWorkflow } from '../../workflows';
import { workflowsPath } from '../../worker';
import { DAY, fakeCaseActivities, loan, settings } from '../helpers/case-fakes';
import { resultOnSkippedHours, timeSkippingEnv } from '../helpers/temporal';
import { recordHistory } from '../helpers/histories';

jest.setTimeout(180_000);

const credentials = { clientId: 'k2-test', password: 'k2-test-secret', userId: 'k2-operator' };
let env: TestWorkflowEnvironment;
let db: Db;
let dir: string;
let sandbox: ReturnType<typeof createGkbSandbox>;
let gkbUrl: string;
let sandboxNow = Date.now();

beforeAll(async () => {
  env = await timeSkippingEnv();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-gkb-batch-'));
  db = await openDb({ client: 'sqlite', url: path.join(dir, 'k2.sqlite') });
  sandbox = createGkbSandbox({
    faults: new Faults('gkb'),
    credentials,
    timing: { stepMs: 3600_000, processingMs: 2 * DAY, now: () => sandboxNow },
  });
  gkbUrl = (await sandbox.listen(0, '127.0.0.1')).url;
});

afterAll(async () => {
  await sandbox?.close();
  await db?.destroy();
  await env?.teardown();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The real GKB activities against a sandbox URL, files of at most three records. */
function realGkbActivities(url: string): GkbActivities {
  return createGkbActivities({
    db,
    gkb: createGkbClient({ url, ...credentials, timeoutMs: 10_000 }),
    temporal: env.client,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: path.join(dir, 'gkb'),
    maxRecordsPerFile: 3,
    batchMaxRecords: 1000,
    batchMinRecords: 1000,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
  });
}

/** Wraps each GKB activity so the sandbox's clock is the workflow's clock. */
function onWorkflowClock(acts: GkbActivities): GkbActivities {
  return Object.fromEntries(
    Object.entries(acts).map(([name, fn]) => [
      name,
      async (...args: unknown[]) => {
        sandboxNow = Context.current().info.currentAttemptScheduledTimestampMs;
        return (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      },
    ]),
  ) as GkbActivities;
}

async function statuses(ids: string[]): Promise<CaseStatus[]> {
  return Promise.all(ids.map((id) => env.client.workflow.getHandle(id).query(caseStatusQuery)));
}

async function waitFor(ids: string[], pred: (s: CaseStatus) => boolean): Promise<CaseStatus[]> {
  for (let i = 0; i < 300; i++) {
    const all = await statuses(ids);
    if (all.every(pred)) return all;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('cases did not get there: ' + JSON.stringify(await statuses(ids)));
}

test('a batch split in two files is polled for days and its mixed results reach exactly their cases', async () => {
  const gkbActivities = realGkbActivities(gkbUrl);
  const { acts } = fakeCaseActivities();
  const { enqueueGkbReport: _fake, ...caseActs } = acts;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: 'gkb-batch-test',
    workflowsPath: workflowsPath(),
    activities: { ...caseActs, ...onWorkflowClock(gkbActivities) },
  });

  await worker.runUntil(async () => {
    // Five cases; GKB will reject two of them: their agreement starts after the accounting date.
    const rand = mulberry32(77);
    const rejectedContracts = new Set(['GKB-2', 'GKB-4']);
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const contract = `GKB-${i}`;
      ids.push(caseWorkflowId(contract));
      await env.client.workflow.start(caseWorkflow, {
        workflowId: caseWorkflowId(contract),
        taskQueue: 'gkb-batch-test',
        args: [
          {
            loan: { ...loan, contract_number: contract, iinbin: generateIin(rand), dbz_date: rejectedContracts.has(contract) ? '2099-01-01' : '2020-01-01' },
            settings,
          },
        ],
      });
    }
    const queued = await waitFor(ids, (s) => s.gkb.state === 'queued');
    expect(queued.map((s) => s.stage)).toEqual(Array(5).fill('demand-issued'));

    const started = await env.currentTimeMs();
    const batch = await env.client.workflow.start(gkbBatchWorkflow, {
      workflowId: 'gkb-batch-test-1',
      taskQueue: 'gkb-batch-test',
      args: [{ settings: { pollInitialMs: 60_000, pollMaxMs: 6 * 3600_000, maxHistoryEvents: 60 } }],
    });
    const firstRunId = batch.firstExecutionRunId;
    const summary = await resultOnSkippedHours<typeof gkbBatchWorkflow>(env, batch.workflowId);

    expect(summary.records).toBe(5);
    expect(summary.files.map((f) => [f.fileName, f.records])).toEqual([
      ['K2_gkb-batch-test-1_1.zip', 3],
      ['K2_gkb-batch-test-1_2.zip', 2],
    ]);
    const fileDone = expect.objectContaining({ packageId: expect.any(String), final: true, collected: true, statusText: 'Файл обработан.' });
    expect(summary.files).toEqual([fileDone, fileDone]);
    expect(summary.files.map((f) => f.failure)).toEqual([undefined, undefined]);
    expect(summary).toMatchObject({ accepted: 3, rejected: 2 });
    expect((await env.currentTimeMs()) - started).toBeGreaterThanOrEqual(2 * DAY); // GKB took two days
    expect((await batch.describe()).runId).not.toBe(firstRunId); // polling continued as new

    const after = await waitFor(ids, (s) => s.gkb.state === 'accepted' || s.attention?.code === 'gkb-rejected');
    after.forEach((s) => {
      if (rejectedContracts.has(s.contractNumber)) {
        expect(s.gkb.state).toBe('rejected');
        expect(s.attention?.reason).toMatch(/^GKB rejected the record: .*раньше даты начала действия договора \(StartDate\) 2099-01-01/);
      } else {
        expect(s).toMatchObject({ stage: 'reported-to-gkb', gkb: { state: 'accepted' } });
        expect((s.gkb as { result: string }).result).toContain('Создан новый контракт.');
        // The sandbox did not know these contracts: an update answered so made GKB create them (G6).
        expect(s.attention).toMatchObject({ code: 'gkb-new-contract' });
      }
    });
    const rows = await db('gkb_records').select('contract_code', 'state', 'new_contract', 'delivered_at').orderBy('contract_code');
    expect(rows.map((r) => [r.contract_code, r.state, Boolean(r.new_contract)])).toEqual([
      ['GKB-1', 'accepted', true],
      ['GKB-2', 'rejected', false],
      ['GKB-3', 'accepted', true],
      ['GKB-4', 'rejected', false],
      ['GKB-5', 'accepted', true],
    ]);
    expect(rows.every((r) => r.delivered_at)).toBe(true);
    await recordHistory(batch, 'gkb-batch-split-mixed-results');
    await recordHistory(env.client.workflow.getHandle(ids[1]), 'case-gkb-rejected');
    for (const id of ids) await env.client.workflow.getHandle(id).terminate('test done');
  });
});

test('GKB refuses one file (ScbBusinessFault) while system faults come and go: its cases get the fault, the other file is accepted', async () => {
  // A GKB whose package limit is 2 records refuses our 3-record file; a third of all calls fail transiently.
  const strictGkb = createGkbSandbox({
    faults: new Faults('gkb', { systemFault: 0.3 }),
    credentials,
    timing: { stepMs: 600_000, processingMs: 3600_000, now: () => sandboxNow },
    limits: { maxRecordsPerPackage: 2 },
  });
  const { url } = await strictGkb.listen(0, '127.0.0.1');
  try {
    const { acts } = fakeCaseActivities();
    const { enqueueGkbReport: _fake, ...caseActs } = acts;
    const gkbActivities = realGkbActivities(url);
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'gkb-batch-refused',
      workflowsPath: workflowsPath(),
      activities: { ...caseActs, ...onWorkflowClock(gkbActivities) },
    });
    await worker.runUntil(async () => {
      const rand = mulberry32(99);
      const ids: string[] = [];
      for (let i = 1; i <= 4; i++) {
        const contract = `REF-${i}`;
        ids.push(caseWorkflowId(contract));
        await env.client.workflow.start(caseWorkflow, {
          workflowId: caseWorkflowId(contract),
          taskQueue: 'gkb-batch-refused',
          args: [{ loan: { ...loan, contract_number: contract, iinbin: generateIin(rand) }, settings }],
        });
      }
      await waitFor(ids, (s) => s.gkb.state === 'queued');
      await env.client.workflow.start(gkbBatchWorkflow, {
        workflowId: 'gkb-batch-refused-1',
        taskQueue: 'gkb-batch-refused',
        args: [{ settings: { pollInitialMs: 60_000, pollMaxMs: 3600_000, maxHistoryEvents: 2000 } }],
      });
      const summary = await resultOnSkippedHours<typeof gkbBatchWorkflow>(env, 'gkb-batch-refused-1');
      expect(summary.files.map((f) => f.records)).toEqual([3, 1]);
      expect(summary.files[0].failure).toMatch(/^GKB ScbBusinessFault RECORDS_LIMIT_EXCEEDED: В одном пакете можно передавать до 2 записей/);
      expect(summary.files[0].packageId).toBeUndefined();
      expect(summary.files[1]).toMatchObject({ final: true, statusText: 'Файл обработан.' });
      expect(summary).toMatchObject({ accepted: 1, rejected: 3 });

      // Cases queue in whatever order they ran; the database says which contract went into which file.
      const refusedFile = summary.files[0].fileName;
      const filed = await db('gkb_records').where({ batch_id: 'gkb-batch-refused-1' }).select('contract_code', 'file_name');
      const refused = new Set(filed.filter((r) => r.file_name === refusedFile).map((r) => r.contract_code));
      expect(refused.size).toBe(3);
      const after = await waitFor(ids, (s) => s.gkb.state === 'accepted' || s.attention?.code === 'gkb-rejected');
      for (const s of after) {
        if (refused.has(s.contractNumber)) {
          expect(s.gkb.state).toBe('rejected');
          expect(s.attention?.reason).toMatch(/^GKB rejected the record: GKB ScbBusinessFault RECORDS_LIMIT_EXCEEDED/);
        } else {
          expect(s.gkb.state).toBe('accepted');
        }
      }
      for (const id of ids) await env.client.workflow.getHandle(id).terminate('test done');
    });
  } finally {
    await strictGkb.close();
  }
});

test('a package GKB no longer knows fails its file visibly: its cases get the reason, nothing hangs', async () => {
  const { acts } = fakeCaseActivities();
  const { enqueueGkbReport: _fake, ...caseActs } = acts;
  const real = onWorkflowClock(realGkbActivities(gkbUrl));
  const forgetful: GkbActivities = {
    ...real,
    pollGkbPackageStatus: async ({ packageId }) => {
      throw ApplicationFailure.nonRetryable(`GKB ScbBusinessFault PACKAGE_NOT_FOUND: Пакет ${packageId} не найден.`, 'ScbBusinessFault');
    },
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: 'gkb-batch-forgotten',
    workflowsPath: workflowsPath(),
    activities: { ...caseActs, ...forgetful },
  });
  await worker.runUntil(async () => {
    const id = caseWorkflowId('LOST-1');
    await env.client.workflow.start(caseWorkflow, {
      workflowId: id,
      taskQueue: 'gkb-batch-forgotten',
      args: [{ loan: { ...loan, contract_number: 'LOST-1', iinbin: generateIin(mulberry32(5)) }, settings }],
    });
    await waitFor([id], (s) => s.gkb.state === 'queued');
    await env.client.workflow.start(gkbBatchWorkflow, {
      workflowId: 'gkb-batch-forgotten-1',
      taskQueue: 'gkb-batch-forgotten',
      args: [{ settings: { pollInitialMs: 60_000, pollMaxMs: 3600_000, maxHistoryEvents: 2000 } }],
    });
    const summary = await resultOnSkippedHours<typeof gkbBatchWorkflow>(env, 'gkb-batch-forgotten-1');
    expect(summary).toMatchObject({ records: 1, accepted: 0, rejected: 1 });
    expect(summary.files[0].failure).toMatch(/^GKB refused the status of package \d+: GKB ScbBusinessFault PACKAGE_NOT_FOUND/);
    const [parked] = await waitFor([id], (s) => s.attention?.code === 'gkb-rejected');
    expect(parked.attention?.reason).toContain('PACKAGE_NOT_FOUND');
    await env.client.workflow.getHandle(id).terminate('test done');
  });
});

test('a batch with nothing queued ends at once', async () => {
  const { acts } = fakeCaseActivities();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: 'gkb-batch-empty',
    workflowsPath: workflowsPath(),
    activities: {
      ...acts,
      ...realGkbActivities(gkbUrl),
    },
  });
  const summary = await worker.runUntil(
    env.client.workflow.execute(gkbBatchWorkflow, {
      workflowId: 'gkb-batch-empty-1',
      taskQueue: 'gkb-batch-empty',
      args: [{ settings: { pollInitialMs: 60_000, pollMaxMs: 3600_000, maxHistoryEvents: 2000 } }],
    }),
  );
  expect(summary).toMatchObject({ records: 0, files: [], polls: 0 });
});

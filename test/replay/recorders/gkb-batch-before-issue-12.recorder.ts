// Compiled against the tree of the commit it is recorded at, not the current one (tsconfig.json excludes recorders).
/**
 * Histories of the GKB batch code as it was when issue 12 began, one per path that issue changes.
 * Recorded with `bash scripts/record-history-at.sh fbb1df2 test/replay/recorders/gkb-batch-before-issue-12.recorder.ts`
 * on the time-skipping server. The batch's activities are in-test fakes answering as K2's GKB
 * activities do (the batch workflow sees only their results): GKB's texts and faults as the
 * document gives them, without a sandbox, so a file can end «Ошибка обработки.».
 */
import { ApplicationFailure } from '@temporalio/common';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { gkbBatchWorkflow } from '../../../workflows';
import { workflowsPath } from '../../../worker';
import { timeSkippingEnv } from '../../helpers/temporal';
import { writeHistory } from './write-history';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

/** A batch of files of these sizes; GKB finishes each package after `pollsToFinal` polls. */
function fakeGkb(opts: { files: number[]; pollsToFinal: number; failedFile?: number; refusedFile?: number }) {
  const polls = new Map<string, number>();
  const records = opts.files.reduce((n, r) => n + r, 0);
  const fileNo = (fileName: string) => Number(/_(\d+)\.zip$/.exec(fileName)![1]);
  return {
    async claimGkbRecords() {
      return records;
    },
    async buildGkbFiles({ batchId }: { batchId: string }) {
      return opts.files.map((n, i) => ({ fileName: `K2_${batchId}_${i + 1}.zip`, records: n, sha256: String(i + 1).repeat(64) }));
    },
    async uploadGkbFile({ fileName }: { fileName: string }) {
      if (fileNo(fileName) === opts.refusedFile) {
        throw ApplicationFailure.nonRetryable('GKB ScbBusinessFault RECORDS_LIMIT_EXCEEDED: В одном пакете можно передавать до 2 записей', 'ScbBusinessFault');
      }
      return { packageId: String(7000 + fileNo(fileName)), adopted: false };
    },
    async pollGkbPackage({ packageId }: { packageId: string }) {
      const n = (polls.get(packageId) ?? 0) + 1;
      polls.set(packageId, n);
      const no = Number(packageId) - 7000;
      const final = n >= opts.pollsToFinal;
      const failed = final && no === opts.failedFile;
      const statusText = !final ? (n === 1 ? 'Файл получен' : 'Файл находится в процессе обработки') : failed ? 'Ошибка обработки.' : 'Файл обработан.';
      const contracts = opts.files[no - 1];
      return [
        {
          fileId: String(9000 + no),
          fileName: `K2_file_${no}.xml`,
          statusText,
          final,
          failed,
          numberOfContracts: contracts,
          numberOfErrors: failed ? contracts : 0,
        },
      ];
    },
    async collectGkbResults({ fileName, failure }: { fileName: string; failure?: string }) {
      const n = opts.files[fileNo(fileName) - 1];
      return failure ? { accepted: 0, rejected: n } : { accepted: n, rejected: 0 };
    },
    async failGkbFile() {
      return records;
    },
    async saveGkbBatch() {},
    async deliverGkbResults() {
      return records;
    },
  };
}

/** Runs one batch to its end, an hour of workflow time at a time (see the batch test of this tree). */
async function runBatch(acts: object, workflowId: string, settings: object) {
  const taskQueue = `record-batches-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  return worker.runUntil(async () => {
    const started = await env.client.workflow.start(gkbBatchWorkflow, { workflowId, taskQueue, args: [{ settings }] });
    const plain = new Client({ connection: env.connection });
    const handle = plain.workflow.getHandle<typeof gkbBatchWorkflow>(workflowId);
    while ((await handle.describe()).status.name === 'RUNNING') await env.sleep(3600_000);
    return { summary: await handle.result(), firstRunId: started.firstExecutionRunId, lastRunId: (await handle.describe()).runId };
  });
}

const quick = { pollInitialMs: 60_000, pollMaxMs: 3600_000, maxHistoryEvents: 2000 };

test('gkb-batch-file-failed.before-details: one of two files ends «Ошибка обработки.»', async () => {
  const { summary, firstRunId } = await runBatch(fakeGkb({ files: [3, 2], pollsToFinal: 3, failedFile: 2 }), 'gkb-batch-rec-failed', quick);
  expect(summary.files.map((f) => f.statusText)).toEqual(['Файл обработан.', 'Ошибка обработки.']);
  expect(summary.files[1].failure).toMatch(/«Ошибка обработки\.»/);
  expect(summary).toMatchObject({ accepted: 3, rejected: 2 });
  await writeHistory(env.client.workflow.getHandle('gkb-batch-rec-failed', firstRunId), 'gkb-batch-file-failed.before-details', workflowsPath());
});

test('gkb-batch-continue-as-new.before-details: polling lasts long enough to continue as new (first run and the continued run)', async () => {
  const { summary, firstRunId, lastRunId } = await runBatch(fakeGkb({ files: [2], pollsToFinal: 12 }), 'gkb-batch-rec-can', { ...quick, maxHistoryEvents: 40 });
  expect(lastRunId).not.toBe(firstRunId);
  expect(summary).toMatchObject({ records: 2, accepted: 2, rejected: 0 });
  expect(summary.polls).toBeGreaterThanOrEqual(12);
  const first = env.client.workflow.getHandle('gkb-batch-rec-can', firstRunId);
  expect((await first.describe()).status.name).toBe('CONTINUED_AS_NEW');
  await writeHistory(first, 'gkb-batch-continue-as-new.before-details', workflowsPath());
  await writeHistory(env.client.workflow.getHandle('gkb-batch-rec-can', lastRunId), 'gkb-batch-continue-as-new-carried.before-details', workflowsPath());
});

test('gkb-batch-upload-refused.before-details: GKB refuses one file at upload with ScbBusinessFault', async () => {
  const { summary, firstRunId } = await runBatch(fakeGkb({ files: [3, 1], pollsToFinal: 2, refusedFile: 1 }), 'gkb-batch-rec-refused', quick);
  expect(summary.files[0].failure).toMatch(/^GKB ScbBusinessFault RECORDS_LIMIT_EXCEEDED/);
  expect(summary.files[0].packageId).toBeUndefined();
  expect(summary).toMatchObject({ accepted: 1, rejected: 3 });
  await writeHistory(env.client.workflow.getHandle('gkb-batch-rec-refused', firstRunId), 'gkb-batch-upload-refused.before-details', workflowsPath());
});

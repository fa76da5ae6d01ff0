/**
 * The worker: runs the case and GKB batch workflows and their activities against ABS, EKO, GKB
 * and the document store. Shared by the worker process and the tests.
 */
import path from 'node:path';
import { Client, ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { NativeConnection, SlotSupplier, Worker, WorkflowSlotInfo } from '@temporalio/worker';
import type { Config } from '../config';
import { createActivities } from '../activities';
import { createGkbActivities } from '../activities/gkb';
import { createEpisodeActivities } from '../activities/episodes';
import { createAbsClient } from '../integrations/abs';
import { createEkoClient } from '../integrations/eko';
import { createGkbClient } from '../integrations/gkb/soap-client';
import { createBlobBackend } from '../documents/blobs';
import { createDocumentStore } from '../documents/store';
import { DEFAULT_GKB_DICTIONARY, GkbDictionary } from '../domain/gkb/dossier';
import type { Db } from '../db';
import { createCallMetrics } from '../observability/call-metrics';
import type { Logger } from '../observability/logger';
import type { MetricsRegistry } from '../observability/metrics';
import { temporalDataConverter } from '../temporal/connection';
import { gkbBatchWorkflow, type GkbBatchInput } from '../workflows/gkb-batch';
import { workflowCode, type WorkflowCode } from './workflow-bundle';

export const GKB_SCHEDULE_ID = 'gkb-batch';

export function workflowsPath(): string {
  // Works from the sources (ts-jest) and from dist/ alike.
  return require.resolve(path.join(__dirname, '..', 'workflows'));
}

export function gkbDictionary(config: Config): GkbDictionary {
  return { ...DEFAULT_GKB_DICTIONARY, ...(config.gkb.dictionaryOverride as Partial<GkbDictionary>) };
}

export function gkbBatchInput(config: Config): GkbBatchInput {
  return { settings: { pollInitialMs: config.gkb.pollInitialMs, pollMaxMs: config.gkb.pollMaxMs, maxHistoryEvents: 2000 } };
}

/** Every activity the worker runs, wired to the real ABS, EKO and GKB clients (their calls recorded in `metrics` when given). */
export function createWorkerActivities(config: Config, db: Db, temporal: Client, logger: Logger, metrics?: MetricsRegistry) {
  const calls = metrics ? createCallMetrics(metrics) : undefined;
  const caseActivities = createActivities({
    db,
    abs: createAbsClient({
      clientUrl: config.abs.clientUrl,
      accountsUrl: config.abs.accountsUrl,
      statementUrl: config.abs.statementUrl,
      scanUrl: config.abs.scanUrl,
      timeoutMs: config.abs.timeoutMs,
      dateFormat: config.abs.dateFormat,
      auth: config.abs.auth,
      tls: config.abs.tls,
      metrics: calls,
    }),
    eko: createEkoClient({ demandUrl: config.eko.demandUrl, timeoutMs: config.eko.timeoutMs, auth: config.eko.auth, tls: config.eko.tls, metrics: calls }),
    documents: createDocumentStore({
      db,
      store: config.documents.store,
      dir: path.join(config.dataDir, 'documents'),
      fileKeys: config.payloadKeys,
      logger: logger.child({ part: 'documents' }),
    }),
  });
  const gkbActivities = createGkbActivities({
    db,
    gkb: createGkbClient({
      url: config.gkb.url,
      clientId: config.gkb.clientId,
      password: config.gkb.password,
      userId: config.gkb.userId,
      timeoutMs: config.gkb.timeoutMs,
      tls: config.gkb.tls,
      metrics: calls,
    }),
    temporal,
    dictionary: gkbDictionary(config),
    filesDir: path.join(config.dataDir, 'gkb'),
    // The same store as the documents: with pg every worker can upload a file another worker built.
    files: createBlobBackend(config.documents.store, { db, dir: path.join(config.dataDir, 'gkb'), space: 'gkb' }),
    fileKeys: config.payloadKeys,
    maxRecordsPerFile: config.gkb.maxRecordsPerFile,
    batchMaxRecords: config.gkb.batchMaxRecords,
    batchMinRecords: config.gkb.batchMinRecords,
    triggerBatch: () => temporal.schedule.getHandle(GKB_SCHEDULE_ID).trigger(ScheduleOverlapPolicy.ALLOW_ALL),
    logger: logger.child({ part: 'gkb' }),
  });
  return { ...caseActivities, ...gkbActivities, ...createEpisodeActivities({ db }) };
}

/**
 * The schedule that starts a GKB batch every GKB_BATCH_INTERVAL. Batches may overlap: one can poll
 * GKB for days while the next is built. Created or brought up to date at every worker start; any
 * number of workers may start at once (test/integration/gkb-schedule.test.ts).
 */
export async function ensureGkbSchedule(client: Client, config: Config): Promise<void> {
  const action = {
    type: 'startWorkflow' as const,
    workflowType: gkbBatchWorkflow,
    workflowId: GKB_SCHEDULE_ID,
    taskQueue: config.temporal.taskQueue,
    args: [gkbBatchInput(config)] as [GkbBatchInput],
  };
  const spec = { intervals: [{ every: config.gkb.batchIntervalMs }] };
  const policies = { overlap: ScheduleOverlapPolicy.ALLOW_ALL, catchupWindow: '1 hour' as const };
  try {
    await client.schedule.getHandle(GKB_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action, policies }));
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create({ scheduleId: GKB_SCHEDULE_ID, spec, action, policies }).catch((e: unknown) => {
      // Workers starting at once all find no schedule and all create it: one succeeds, the others are told it exists.
      if (!(e instanceof ScheduleAlreadyRunning)) throw e;
    });
  }
}

/**
 * The case worker. Its workflow-task slots come from `workflowSlots` (worker/main.ts passes the
 * backlog-narrowing slots, worker/backlog-narrowing.ts); activities and local activities have 100 slots each,
 * as the SDK's default. Its cache holds K2_WORKER_MAX_CACHED_WORKFLOWS workflows; on shutdown running
 * activities get K2_WORKER_SHUTDOWN_GRACE.
 */
export async function createCaseWorker(
  config: Config,
  activities: object,
  connection: NativeConnection,
  workflowSlots: SlotSupplier<WorkflowSlotInfo>,
  code: WorkflowCode = workflowCode(workflowsPath(), temporalDataConverter(config).failureConverterPath),
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    // The prebuilt bundle when it matches the code on disk, else bundled at start (worker/workflow-bundle.ts).
    ...code.options,
    activities,
    // Every payload and failure text encrypted (none in the demo without keys), as the clients do.
    dataConverter: temporalDataConverter(config),
    tuner: {
      workflowTaskSlotSupplier: workflowSlots,
      activityTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
    },
    // With a tuner the SDK polls up to 10 workflow tasks at once whatever the slots; as without one, no more than the slots.
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: Math.min(10, config.worker.workflowSlots) },
    // Bounded: the SDK default is a share of the heap, and cases wait for statuses for days (CONFIG_KEYS doc).
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    // After shutdown is asked, running activities get this long to finish before they are cancelled.
    shutdownGraceTime: config.worker.shutdownGraceMs,
  });
}

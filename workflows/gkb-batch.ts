/**
 * One GKB batch (DOMAIN.md §5): claim the queued records, build and validate the files, upload
 * each, then poll GKB with durable timers and growing intervals for as long as it takes (hours or
 * days), and when every file is final collect every record's result and deliver it to its case.
 *
 * Started by a Temporal Schedule (every GKB_BATCH_INTERVAL) and by that schedule's trigger when
 * enough records wait. Polling continues as new before its history grows large.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { GkbActivities, GkbFileProgress, GkbPackageStatus } from '../activities/gkb';

export const BATCH_STATE = defineSearchAttributeKey('K2BatchState', SearchAttributeType.KEYWORD);

export interface GkbBatchSettings {
  pollInitialMs: number;
  pollMaxMs: number;
  maxHistoryEvents: number;
}

export interface GkbBatchInput {
  settings: GkbBatchSettings;
  /** Set when the batch continues as new while polling. */
  carried?: { batchId: string; files: GkbFileProgress[]; pollDelayMs: number; polls: number };
}

export interface GkbBatchSummary {
  batchId: string;
  records: number;
  files: GkbFileProgress[];
  polls: number;
  accepted: number;
  rejected: number;
}

export const batchProgressQuery = defineQuery<GkbBatchSummary>('batchProgress');

/**
 * Patch: a package's state is read from GKB's files of that package (matched by
 * batchPackage.packageName, not by the XML's fileName; no file yet means "not known yet"), and a file
 * that ends «Ошибка обработки.» has its records' own errors collected. Batches polling before it
 * keep the old reading.
 */
export const PACKAGE_STATUS_PATCH = 'gkb-package-status';

const local = proxyActivities<GkbActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
const building = proxyActivities<GkbActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10 seconds', maximumInterval: '5 minutes' },
});
/** GKB itself: transient faults retried with backoff for up to a day, permanent faults not at all. */
const soap = proxyActivities<GkbActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

/** The text of a failure that retrying will not mend (a permanent fault, or GKB away beyond the retry horizon). */
function failureText(err: unknown): string | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  if (err.cause instanceof ApplicationFailure && err.cause.nonRetryable) return err.cause.message;
  if (err.cause instanceof TimeoutFailure) return `GKB did not answer ${err.activityType} within its retry horizon (${err.cause.message})`;
  return undefined;
}

export async function gkbBatchWorkflow(input: GkbBatchInput): Promise<GkbBatchSummary> {
  const { settings } = input;
  const batchId = input.carried?.batchId ?? workflowInfo().workflowId;
  const summary: GkbBatchSummary = { batchId, records: 0, files: input.carried?.files ?? [], polls: input.carried?.polls ?? 0, accepted: 0, rejected: 0 };
  summary.records = summary.files.reduce((n, f) => n + f.records, 0);
  const setState = (state: string) => upsertSearchAttributes([{ key: BATCH_STATE, value: state }]);
  setHandler(batchProgressQuery, () => summary);

  if (!input.carried) {
    const claimed = await local.claimGkbRecords({ batchId });
    if (claimed === 0) {
      setState('empty');
      return summary;
    }
    setState('building');
    try {
      summary.files = await building.buildGkbFiles({ batchId });
    } catch (err) {
      const text = failureText(err);
      if (!text) throw err;
      summary.files = [{ fileName: '(none)', records: claimed, sha256: '', failure: text }];
      await local.failGkbFile({ batchId, reason: text });
    }
    summary.records = claimed;

    setState('uploading');
    for (const file of summary.files) {
      if (file.packageId || file.failure) continue;
      try {
        file.packageId = (await soap.uploadGkbFile({ batchId, fileName: file.fileName })).packageId;
      } catch (err) {
        const text = failureText(err);
        if (!text) throw err;
        file.failure = text; // ScbBusinessFault / ScbValidationFault: the batch's file fails visibly
        log.warn('GKB refused a file', { batchId, fileName: file.fileName, failure: text });
      }
    }
    await local.saveGkbBatch({ batchId, state: 'uploaded', files: summary.files });
  }

  // Poll with durable timers: 1 min, 2, 4, … up to the maximum, for as long as GKB takes.
  setState('polling');
  let delay = input.carried?.pollDelayMs ?? settings.pollInitialMs;
  const pending = () => summary.files.filter((f) => f.packageId && !f.final && !f.failure);
  // Asked once per run: in a replay patched() is false only up to the end of the history, so asking
  // at every poll could switch an old batch to the new reading halfway.
  const byPackage = pending().length > 0 && patched(PACKAGE_STATUS_PATCH);
  while (pending().length > 0) {
    await sleep(delay);
    summary.polls += 1;
    for (const file of pending()) {
      if (byPackage) await pollPackage(batchId, file);
      else await pollFileByName(batchId, file);
    }
    delay = Math.min(delay * 2, settings.pollMaxMs);
    const info = workflowInfo();
    if (pending().length > 0 && (info.continueAsNewSuggested || info.historyLength > settings.maxHistoryEvents)) {
      await local.saveGkbBatch({ batchId, state: 'polling', files: summary.files });
      await continueAsNew<typeof gkbBatchWorkflow>({ settings, carried: { batchId, files: summary.files, pollDelayMs: delay, polls: summary.polls } });
    }
  }

  setState('collecting');
  for (const file of summary.files) {
    if (file.collected || file.fileName === '(none)') continue;
    let counts;
    try {
      // fileIds, processingFailed and skippedContracts are set only by pollPackage (PACKAGE_STATUS_PATCH).
      counts = await soap.collectGkbResults({
        batchId,
        fileName: file.fileName,
        fileId: file.fileId,
        failure: file.failure,
        fileIds: file.fileIds,
        processingFailed: file.processingFailed,
        skippedContracts: file.skippedContracts,
      });
    } catch (err) {
      const text = failureText(err);
      if (!text) throw err;
      file.failure = `GKB's results of file ${file.fileName} could not be read: ${text}`;
      counts = await local.collectGkbResults({ batchId, fileName: file.fileName, failure: file.failure });
    }
    summary.accepted += counts.accepted;
    summary.rejected += counts.rejected;
    file.collected = true;
  }
  await local.saveGkbBatch({ batchId, state: 'delivering', files: summary.files });
  await building.deliverGkbResults({ batchId });
  await local.saveGkbBatch({ batchId, state: 'done', files: summary.files });
  setState('done');
  return summary;
}

/** One poll of a file's package, its GKB files matched by package (PACKAGE_STATUS_PATCH). */
async function pollPackage(batchId: string, file: GkbFileProgress): Promise<void> {
  let status: GkbPackageStatus;
  try {
    status = await soap.pollGkbPackageStatus({ packageId: file.packageId!, packageName: file.fileName });
  } catch (err) {
    if (pollFailed(batchId, file, err)) return;
    throw err;
  }
  if (!status.known) return; // GKB shows no file of the package yet: poll again later
  file.fileIds = status.fileIds;
  file.fileId = status.fileIds[0];
  file.statusText = status.statusText;
  file.final = status.final;
  file.skippedContracts = status.skippedContracts;
  if (status.final && status.failed) {
    file.processingFailed = true;
    file.failure = `GKB could not process file ${file.fileName}: «${status.statusText}»`;
  }
}

/** One poll as batches polling before PACKAGE_STATUS_PATCH do it: a file by its name, or the only one. */
async function pollFileByName(batchId: string, file: GkbFileProgress): Promise<void> {
  let statuses;
  try {
    statuses = await soap.pollGkbPackage({ packageId: file.packageId! });
  } catch (err) {
    if (pollFailed(batchId, file, err)) return;
    throw err;
  }
  const status = statuses.find((s) => s.fileName === file.fileName) ?? (statuses.length === 1 ? statuses[0] : undefined);
  if (!status) return;
  file.fileId = status.fileId;
  file.statusText = status.statusText;
  file.final = status.final;
  if (status.failed) file.failure = `GKB could not process file ${file.fileName}: «${status.statusText}»`;
}

/** A failed poll: GKB away for a whole retry horizon (poll again later) or refusing the package (its file fails). False: neither. */
function pollFailed(batchId: string, file: GkbFileProgress, err: unknown): boolean {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
    log.warn('GKB unreachable for a whole retry horizon; polling goes on', { batchId, packageId: file.packageId });
    return true;
  }
  const text = failureText(err);
  if (!text) return false;
  file.failure = `GKB refused the status of package ${file.packageId}: ${text}`;
  return true;
}

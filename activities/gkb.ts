/**
 * Activities of GKB reporting (DOMAIN.md §2 stage 6, §5): the case's enqueue, and the batch
 * workflow's claim, build, upload, poll, collect and deliver. Built by a factory that receives
 * the database, the SOAP client and a Temporal client (for delivering results to cases).
 *
 * A batch's ZIPs are built in a scratch folder on this worker, then kept in the document store's
 * backend (documents/blobs.ts) by name, `<batch>/<file>.zip`: under <dataDir>/gkb/ (fs, one machine)
 * or in K2's database (pg), so any worker can upload a file another worker built. Only their names
 * and hashes enter history.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Db } from '../db';
import {
  abandonedBatches,
  acceptOpenRecordsAsSkipped,
  assignFile,
  claimedRecords,
  claimRecords,
  countClaimable,
  enqueueReport,
  fileOutcome,
  markDelivered,
  RecordResult,
  recordResults,
  rejectOpenRecords,
  releaseBatch,
  saveBatch,
  saveBatchState,
  undeliveredResults,
  unsettledBatches,
} from '../db/gkb';
import { isTransientDbError } from '../db/errors';
import { FAILURE_TYPES } from '../domain/failures';
import { GkbDictionary, GkbDossier } from '../domain/gkb/dossier';
import { mapDossierToContract } from '../domain/gkb/contract-record';
import { createColumnSealer, SealedKeyUnknownError, SealedValueError } from '../db/sealed';
import { GkbFileInvalidError, writeBatchFiles } from '../integrations/gkb/batch-file';
import { createFsBlobs, entriesOf, readBlobPlain, stagingDir, type BlobBackend } from '../documents/blobs';
import { FileDecryptionError, type FileKey } from '../documents/encryption';
import { BatchFileInfo, GkbClient, GkbPermanentError, isTransientGkbError, RecordGroupStatus } from '../integrations/gkb/soap-client';
import type { Logger } from '../observability/logger';
import { gkbResultSignal } from '../workflows/definitions';

/**
 * Past this, no write of a GKB build (or of a scan) can still be under way: the longest, a build,
 * is cut off by its activity's 30-minute limit. What a crash left is swept after it, and an
 * abandoned batch's files may be rewritten after it.
 */
export const WRITES_SETTLED_MS = 2 * 3600_000;

/**
 * Why a build stopped, as the batch decides on it: our own file invalid (XSD, file type, size) or
 * a queued record damaged is a defect or bad data, not a passing fault: stop and show it. A record
 * sealed with a key this worker lacks, or the database away, is retried.
 */
function buildFailure(err: unknown, batchId: string): unknown {
  const damaged = err instanceof SealedValueError && !(err instanceof SealedKeyUnknownError);
  if (!(err instanceof GkbFileInvalidError || err instanceof RangeError || damaged)) return err;
  return ApplicationFailure.nonRetryable(`GKB file of batch ${batchId} not built: ${(err as Error).message}`, 'GkbFileInvalid');
}

/** A build's scratch folder below the files folder's staging folder: `build-<batch label>-<random>`. */
const BUILD_FOLDER_PREFIX = 'build-';

/**
 * Scratch folders of GKB builds that a crash interrupted (a finished or failed build removes its own),
 * nothing in them written since `before`: ZIPs not yet kept and, in the demo, the XML (with keys the
 * XML has no name on disk, integrations/gkb/batch-file.ts). Returns how many went.
 */
export async function sweepAbandonedBuilds(filesDir: string, before: Date): Promise<number> {
  const dir = stagingDir(filesDir);
  let swept = 0;
  for (const e of await entriesOf(dir)) {
    if (!e.isDirectory() || !e.name.startsWith(BUILD_FOLDER_PREFIX)) continue;
    const folder = path.join(dir, e.name);
    if ((await lastWritten(folder)) >= before.getTime()) continue;
    await fs.rm(folder, { recursive: true, force: true });
    swept++;
  }
  return swept;
}

/** The newest modification time of a folder and the files in it (ms). */
async function lastWritten(folder: string): Promise<number> {
  let newest = (await fs.stat(folder)).mtimeMs;
  for (const name of await fs.readdir(folder)) {
    const stat = await fs.stat(path.join(folder, name)).catch(() => undefined);
    if (stat) newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

export interface GkbActivityDeps {
  db: Db;
  gkb: GkbClient;
  temporal: Client;
  dictionary: GkbDictionary;
  /**
   * This worker's folder for GKB files: files are built in its `.tmp`, and without `files` they are
   * kept in it too (one sub-folder per batch).
   */
  filesDir: string;
  /** Where the built ZIPs are kept, by `<batch>/<file>` (config.documents.store; default: files under filesDir). */
  files?: BlobBackend;
  /** config.payloadKeys: the kept ZIPs are encrypted with the first, read with any. None (the demo only): kept in clear. */
  fileKeys?: readonly FileKey[];
  maxRecordsPerFile: number;
  batchMaxRecords: number;
  /** Queued records that make a batch start before its schedule; never fewer than maxRecordsPerFile (earlyBatchThreshold). */
  batchMinRecords: number;
  /** Records per getImportDetailInfo page (default 500). */
  detailPageSize?: number;
  /** Starts a batch now (the schedule's trigger); called when enough records wait. */
  triggerBatch: () => Promise<void>;
  logger: Logger;
}

/** The GKB record's place in the case's life; the case shows it. */
export type EnqueueOutcome = { state: 'queued'; recordId: string } | { state: 'not-applicable'; reason: string } | { state: 'incomplete'; reason: string };

export interface GkbFileProgress {
  fileName: string;
  records: number;
  sha256: string;
  packageId?: string;
  fileId?: string;
  /** GKB's files of the package (one per XML in the ZIP; K2 puts one in each). */
  fileIds?: string[];
  statusText?: string;
  final?: boolean;
  /** Set when GKB refused the file (a permanent fault) or failed to process it. */
  failure?: string;
  /** The file ended «Ошибка обработки.»: its records' own errors are read (recordGroupStatus 0). */
  processingFailed?: boolean;
  /** GKB's skippedContracts of the package: records it already had in that state. */
  skippedContracts?: number;
  collected?: boolean;
}

/** A package's state as its files at GKB show it (packageStatusOf). */
export interface GkbPackageStatus {
  /** False while GKB shows no file of the package yet (no filesImportInfo, or none of ours): keep polling. */
  known: boolean;
  fileIds: string[];
  statusText: string;
  /** Every file of the package is final. */
  final: boolean;
  /** A file of the package ended «Ошибка обработки.». */
  failed: boolean;
  skippedContracts: number;
  numberOfErrors: number;
}

export interface PackageStatus {
  fileId: string;
  fileName: string;
  statusText: string;
  final: boolean;
  failed: boolean;
  numberOfContracts: number;
  numberOfErrors: number;
}

/** A record's result as delivered to its case by the `gkbResult` signal. */
export interface GkbRecordResult {
  recordId: string;
  outcome: 'accepted' | 'rejected';
  text: string;
  /** Accepted, but GKB did not know the contract and created it («Создан новый контракт.» to an update). */
  newContract?: boolean;
  /** Accepted as skipped: GKB already had this state (counted in skippedContracts, in no result group). */
  skipped?: boolean;
}

/** Batch workflow IDs become file names, which GKB wants in Latin letters, digits, '.', '_' and '-'. */
export function batchFileLabel(batchId: string): string {
  return batchId.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 80);
}

/**
 * The queue size that starts an early batch: a full package (DOMAIN.md G7: an upload holds 10,000
 * to 50,000 contracts, fewer only when fewer wait in all, and the schedule sends those). A smaller
 * GKB_BATCH_MIN_RECORDS would upload less than a package between schedules, so it is raised to one.
 */
export function earlyBatchThreshold(batchMinRecords: number, maxRecordsPerFile: number): number {
  return Math.max(batchMinRecords, maxRecordsPerFile);
}

/**
 * Which of GKB's files are the package's, and where it stands. `batchPackage.packageName` is the
 * package as K2 uploaded it (the ZIP's name); `fileName` is the XML inside. The answer was asked for
 * this packageId, so a file without a batchPackage is taken as the package's. No file yet (or an
 * answer without filesImportInfo) is "not known yet", never a failure.
 */
export function packageStatusOf(files: BatchFileInfo[], packageId: string, packageName: string): GkbPackageStatus {
  const ours = files.filter((f) => (f.packageId === undefined && f.packageName === undefined) || f.packageId === packageId || f.packageName === packageName);
  return {
    known: ours.length > 0,
    fileIds: ours.map((f) => f.fileId),
    statusText: [...new Set(ours.map((f) => f.batchUploadStatus))].join('; '),
    final: ours.length > 0 && ours.every((f) => f.final),
    failed: ours.some((f) => f.status === 'failed'),
    skippedContracts: ours.reduce((n, f) => n + f.skippedContracts, 0),
    numberOfErrors: ours.reduce((n, f) => n + f.numberOfErrors, 0),
  };
}

/** The text of a record GKB skipped: counted in skippedContracts, in no result group. */
export const SKIPPED_TEXT = 'GKB skipped the record: it already had this state (skippedContracts)';

const DETAIL_PAGE = 500;
/** An early batch (batchMinRecords queued) is triggered at most this often. */
const EARLY_BATCH_EVERY_MS = 60_000;
/** The queue is counted for an early batch at most this often. */
const COUNT_EVERY_MS = 1000;

function permanentFailure(err: GkbPermanentError): ApplicationFailure {
  const violations = err.constraintViolations.map((v) => `${v.propertyPath ?? ''}: ${v.message ?? ''}`.trim()).join('; ');
  const text = `GKB ${err.faultKind} ${err.code}: ${err.description}${violations ? ` (${violations})` : ''}`;
  return ApplicationFailure.nonRetryable(text, err.faultKind, { code: err.code, description: err.description, constraintViolations: err.constraintViolations });
}

/** The case's enqueue failed in K2's database: a typed failure (domain/failures.ts); the text names no value, only the kind of error. */
function queueFailure(err: unknown, reportKey: string): ApplicationFailure {
  const code = (err as { code?: unknown })?.code;
  const kind = typeof code === 'string' ? code : ((err as Error)?.name ?? 'Error');
  if (isTransientDbError(err))
    return ApplicationFailure.retryable(`the GKB queue is unavailable (${kind}); report ${reportKey} not queued yet`, FAILURE_TYPES.gkbQueueUnavailable);
  return ApplicationFailure.nonRetryable(`the GKB queue refused report ${reportKey} (${kind})`, FAILURE_TYPES.gkbQueueError);
}

export function createGkbActivities(deps: GkbActivityDeps) {
  const { db, gkb, temporal, logger } = deps;
  const earlyBatchAt = earlyBatchThreshold(deps.batchMinRecords, deps.maxRecordsPerFile);
  if (earlyBatchAt !== deps.batchMinRecords)
    logger.warn('GKB_BATCH_MIN_RECORDS below a full package; an early batch waits for a full package', { batchMinRecords: deps.batchMinRecords, earlyBatchAt });
  if (!deps.fileKeys?.length) logger.warn('no payload keys (demo): GKB files are kept in clear at rest');
  const detailPage = deps.detailPageSize ?? DETAIL_PAGE;
  const files = deps.files ?? createFsBlobs(deps.filesDir);
  // The records hold the client's personal data: sealed in K2's database with the same keys as the files.
  const columns = createColumnSealer(deps.fileKeys ?? []);
  let lastTrigger = 0;
  // Counting the queue scans every queued record: with tens of thousands queued, counting after
  // each enqueue made every case pay for all the others. So the count is taken only when an early
  // batch may be triggered, and at most once per COUNT_EVERY_MS.
  let lastCount = 0;

  /** GKB calls: transient trouble is rethrown (Temporal retries), permanent faults are not retried. */
  async function callGkb<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isTransientGkbError(err)) throw err;
      if (err instanceof GkbPermanentError) throw permanentFailure(err);
      throw err;
    }
  }

  /**
   * Reads every page of one result group of a GKB file into `results`, by contract code. GKB answers
   * per contract and per subject; a contract's texts are joined, an error wins.
   */
  async function readGroup(fileId: string, group: RecordGroupStatus, results: Map<string, RecordResult>): Promise<void> {
    const accepted = group !== 0;
    for (let first = 0, more = true; more;) {
      const page = await callGkb(() =>
        gkb.getImportDetailInfo({ fileId, recordGroupStatus: group, firstResult: first, maxResults: detailPage, language: 'ru' }),
      );
      Context.current().heartbeat({ fileId, group, first });
      for (const r of page.records) {
        if (!r.contractCode) continue;
        const text = (accepted ? r.result : (r.message ?? r.result)) ?? (accepted ? 'accepted' : 'rejected without a message');
        const seen = results.get(r.contractCode);
        if (seen && seen.accepted !== accepted) continue;
        results.set(r.contractCode, {
          accepted,
          text: seen && !seen.text.includes(text) ? `${seen.text} ${text}` : text,
          created: (seen?.created ?? false) || (accepted && r.newContract),
        });
      }
      more = page.hasMore;
      first = page.nextFirstResult;
    }
  }

  /**
   * A batch whose workflow is closed (terminated, failed, timed out, or gone) while it still holds
   * claimed records will never finish them: they go back to the queue, ahead of later reports of
   * the same contracts. A file it uploaded may still be processed by GKB; nobody reads that result,
   * and the records are sent again (see integrations/gkb/README.md).
   */
  async function releaseAbandonedBatches(claimingBatchId: string): Promise<void> {
    for (const batchId of await unsettledBatches(db, claimingBatchId)) {
      let status: string;
      try {
        status = (await temporal.workflow.getHandle(batchId).describe()).status.name;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        status = 'NOT_FOUND';
      }
      if (status === 'RUNNING') continue;
      const released = await releaseBatch(
        db,
        batchId,
        `batch workflow ${status.toLowerCase()} before it finished; its records were queued again by ${claimingBatchId}`,
      );
      logger.warn('abandoned GKB batch released', { batchId, status, released, by: claimingBatchId });
    }
  }

  /** Signals each case of one batch its record's result, `concurrency` at a time, pages of 500. */
  async function deliverBatch(batchId: string, concurrency: number): Promise<number> {
    let delivered = 0;
    for (;;) {
      const rows = await undeliveredResults(db, batchId, 500);
      if (rows.length === 0) return delivered;
      const queue = [...rows];
      const done: number[] = [];
      const worker = async () => {
        for (let row = queue.shift(); row; row = queue.shift()) {
          const result: GkbRecordResult = { recordId: String(row.id), outcome: row.state, text: row.result_text };
          if (row.new_contract) result.newContract = true;
          if (row.skipped) result.skipped = true;
          try {
            await temporal.workflow.getHandle(row.workflow_id).signal(gkbResultSignal, result);
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            logger.warn('GKB result for a case that no longer runs', { workflowId: row.workflow_id, recordId: row.id });
          }
          done.push(row.id);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
      await markDelivered(db, done);
      delivered += done.length;
      Context.current().heartbeat({ batchId, delivered });
    }
  }

  return {
    async enqueueGkbReport(input: { reportKey: string; caseId: string; workflowId: string; dossier: GkbDossier }): Promise<EnqueueOutcome> {
      // K2 reports the overdue state of contracts the bank's lending system created: operation 2, file type 1.
      const mapped = mapDossierToContract(input.dossier, deps.dictionary, { operation: 2, fileType: 1 });
      if (!mapped.ok) return mapped.notApplicable ? { state: 'not-applicable', reason: mapped.reason } : { state: 'incomplete', reason: mapped.reason };
      let id: number;
      try {
        id = await enqueueReport(db, { reportKey: input.reportKey, caseId: input.caseId, workflowId: input.workflowId, record: mapped.record }, columns);
      } catch (err) {
        throw queueFailure(err, input.reportKey);
      }
      const now = Date.now();
      if (now - lastTrigger > EARLY_BATCH_EVERY_MS && now - lastCount >= COUNT_EVERY_MS) {
        lastCount = now;
        const claimable = await countClaimable(db).catch((err) => {
          logger.warn('GKB queue not counted for an early batch', { err });
          return 0;
        });
        if (claimable >= earlyBatchAt) {
          lastTrigger = now;
          await deps.triggerBatch().catch((err) => logger.warn('early GKB batch not triggered', { err }));
        }
      }
      return { state: 'queued', recordId: String(id) };
    },

    /** Releases what abandoned batches hold, then claims (db/gkb.ts claimRecords: one package per contract in flight). */
    async claimGkbRecords(input: { batchId: string }): Promise<number> {
      await releaseAbandonedBatches(input.batchId);
      return claimRecords(db, input.batchId, deps.batchMaxRecords);
    },

    /** Streams the batch's records into validated, zipped files of at most maxRecordsPerFile records. */
    async buildGkbFiles(input: { batchId: string }): Promise<GkbFileProgress[]> {
      const label = batchFileLabel(input.batchId);
      // Built in a scratch folder of this worker (the validator reads the XML from disk), then kept in the store.
      await fs.mkdir(stagingDir(deps.filesDir), { recursive: true });
      const dir = await fs.mkdtemp(path.join(stagingDir(deps.filesDir), `${BUILD_FOLDER_PREFIX}${label}-`));
      let built = 0;
      const records = (async function* () {
        for await (const { record } of claimedRecords(db, input.batchId, undefined, columns)) {
          if (++built % 1000 === 0) Context.current().heartbeat({ built });
          yield record;
        }
      })();
      let written;
      try {
        written = await writeBatchFiles({ records, dir, baseName: label, maxRecordsPerFile: deps.maxRecordsPerFile, fileKeys: deps.fileKeys });
      } catch (err) {
        // The demo (no keys) leaves the XML that failed the XSD for inspection; with keys nothing in clear is left.
        if (deps.fileKeys?.length) await fs.rm(dir, { recursive: true, force: true });
        throw buildFailure(err, input.batchId);
      }
      try {
        for (const f of written) {
          // The ZIP as written (encrypted with keys) is what is kept and uploaded; a retried build replaces it by name.
          await files.put(`${label}/${f.fileName}`, createReadStream(f.zipPath));
          await assignFile(db, input.batchId, f.fileName, f.contractCodes);
        }
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
      const progress = written.map((f) => ({ fileName: f.fileName, records: f.records, sha256: f.sha256 }));
      await saveBatch(db, input.batchId, 'built', progress);
      return progress;
    },

    /** Uploads one file; from the second attempt on, an upload whose outcome was unknown is looked up first. */
    async uploadGkbFile(input: { batchId: string; fileName: string }): Promise<{ packageId: string; adopted: boolean }> {
      // GKB gets the plaintext ZIP (the sha256 in the batch's progress). A damaged kept file fails the file (retrying will not
      // mend it); a key missing from the configuration (FileKeyUnknownError) is retried until the worker has it again.
      // A file missing from the store (BlobNotFoundError) is retried: with per-worker folders another worker may hold it.
      const file = await readBlobPlain(files, `${batchFileLabel(input.batchId)}/${input.fileName}`, deps.fileKeys ?? []).catch((err: Error) => {
        throw err instanceof FileDecryptionError
          ? ApplicationFailure.nonRetryable(`GKB file ${input.fileName} of batch ${input.batchId} cannot be read: ${err.message}`, 'GkbFileUnreadable')
          : err;
      });
      const searchFirst = Context.current().info.attempt > 1;
      const { batchPackageId, adopted } = await callGkb(() => gkb.uploadFileOnce({ file, fileName: input.fileName, fileType: 1, searchFirst }));
      logger.info('GKB file uploaded', { batchId: input.batchId, fileName: input.fileName, packageId: batchPackageId, adopted });
      return { packageId: batchPackageId, adopted };
    },

    /** Kept for batches that were polling before the gkb-package-status patch; newer batches use pollGkbPackageStatus. */
    async pollGkbPackage(input: { packageId: string }): Promise<PackageStatus[]> {
      const info = await callGkb(() => gkb.getImportInfo({ packageId: input.packageId, firstResult: 0, maxResults: 100, language: 'ru' }));
      for (const f of info.files)
        if (f.status === 'unknown') logger.warn('unknown GKB status text; not final', { packageId: input.packageId, status: f.batchUploadStatus });
      return info.files.map((f) => ({
        fileId: f.fileId,
        fileName: f.fileName,
        statusText: f.batchUploadStatus,
        final: f.final,
        failed: f.status === 'failed',
        numberOfContracts: f.numberOfContracts,
        numberOfErrors: f.numberOfErrors,
      }));
    },

    /** The package's state at GKB (packageStatusOf); not known yet while GKB shows none of its files. */
    async pollGkbPackageStatus(input: { packageId: string; packageName: string }): Promise<GkbPackageStatus> {
      // The client reads an answer without filesImportInfo as no files: not known yet.
      const info = await callGkb(() => gkb.getImportInfo({ packageId: input.packageId, firstResult: 0, maxResults: 100, language: 'ru' }));
      for (const f of info.files)
        if (f.status === 'unknown') logger.warn('unknown GKB status text; not final', { packageId: input.packageId, status: f.batchUploadStatus });
      return packageStatusOf(info.files, input.packageId, input.packageName);
    },

    /**
     * Writes each record's outcome from GKB's answers for a final file:
     * - a file GKB refused, or whose status or results could not be had: every record gets `failure`;
     * - a file that ended «Ошибка обработки.» (processingFailed): its errors are read (recordGroupStatus
     *   0, every page) and each record gets its own error text; records without one get `failure`;
     * - a processed file: errors, then all but errors (4); a record in neither group was skipped
     *   (GKB already had that state) when no more such records exist than the file's
     *   skippedContracts; when there are more, K2 cannot tell which were skipped, and all of them are
     *   rejected with that reason (an operator's retry queues the report again, harmless for an update).
     */
    async collectGkbResults(input: {
      batchId: string;
      fileName: string;
      fileId?: string;
      failure?: string;
      fileIds?: string[];
      processingFailed?: boolean;
      skippedContracts?: number;
    }): Promise<{ accepted: number; rejected: number }> {
      const fileIds = input.fileIds ?? (input.fileId ? [input.fileId] : []);
      const refused = input.failure !== undefined && !input.processingFailed;
      if (refused || fileIds.length === 0) {
        await rejectOpenRecords(db, input.batchId, input.fileName, input.failure ?? 'GKB reported no file for this package');
        return fileOutcome(db, input.batchId, input.fileName);
      }
      const groups: RecordGroupStatus[] = input.processingFailed ? [0] : [0, 4];
      const results = new Map<string, RecordResult>();
      for (const fileId of fileIds) for (const group of groups) await readGroup(fileId, group, results);
      const outcome = await recordResults(db, input.batchId, input.fileName, results);
      if (outcome.unmatched.length > 0) {
        if (input.processingFailed) {
          await rejectOpenRecords(db, input.batchId, input.fileName, input.failure ?? 'GKB could not process the file');
        } else if (outcome.unmatched.length <= (input.skippedContracts ?? 0)) {
          await acceptOpenRecordsAsSkipped(db, input.batchId, input.fileName, SKIPPED_TEXT);
        } else {
          const skipped = input.skippedContracts ?? 0;
          const text = `GKB returned no result for this record (${outcome.unmatched.length} records of the file without a result, GKB counted ${skipped} skipped)`;
          await rejectOpenRecords(db, input.batchId, input.fileName, text);
        }
      }
      return fileOutcome(db, input.batchId, input.fileName);
    },

    /** Rejects the records of a file (or of the whole batch) that will get no result from GKB. */
    async failGkbFile(input: { batchId: string; fileName?: string; reason: string }): Promise<number> {
      return rejectOpenRecords(db, input.batchId, input.fileName, input.reason);
    },

    async saveGkbBatch(input: { batchId: string; state: string; files: GkbFileProgress[]; error?: string }): Promise<void> {
      await saveBatch(db, input.batchId, input.state, input.files, input.error);
    },

    /**
     * Signals each case its record's result, a bounded number at a time; repeats are harmless. Then
     * the results an abandoned batch had collected but not delivered (it was terminated meanwhile).
     */
    async deliverGkbResults(input: { batchId: string; concurrency?: number }): Promise<number> {
      let delivered = await deliverBatch(input.batchId, input.concurrency ?? 20);
      for (const abandoned of await abandonedBatches(db)) {
        delivered += await deliverBatch(abandoned, input.concurrency ?? 20);
        await saveBatchState(db, abandoned, 'abandoned-delivered');
      }
      return delivered;
    },
  };
}

export type GkbActivities = ReturnType<typeof createGkbActivities>;

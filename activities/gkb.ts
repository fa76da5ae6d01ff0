/**
 * Activities of GKB reporting (DOMAIN.md §2 stage 6, §5): the case's enqueue, and the batch
 * workflow's claim, build, upload, poll, collect and deliver. Built by a factory that receives
 * the database, the SOAP client and a Temporal client (for delivering results to cases).
 *
 * Files stay on disk under <dataDir>/gkb/<batch>/; only their names and hashes enter history.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Db } from '../db';
import {
  assignFile,
  claimedRecords,
  claimRecords,
  countQueued,
  enqueueReport,
  markDelivered,
  recordResults,
  rejectOpenRecords,
  saveBatch,
  undeliveredResults,
} from '../db/gkb';
import { GkbDictionary, GkbDossier } from '../domain/gkb/dossier';
import { mapDossierToContract } from '../domain/gkb/contract-record';
import { writeBatchFiles } from '../integrations/gkb/batch-file';
import { GkbClient, GkbPermanentError, isTransientGkbError, RecordGroupStatus } from '../integrations/gkb/soap-client';
import type { Logger } from '../observability/logger';

export interface GkbActivityDeps {
  db: Db;
  gkb: GkbClient;
  temporal: Client;
  dictionary: GkbDictionary;
  /** Folder holding one sub-folder per batch with its XML and ZIP files. */
  filesDir: string;
  maxRecordsPerFile: number;
  batchMaxRecords: number;
  /** Queued records that make a batch start before its schedule. */
  batchMinRecords: number;
  /** Starts a batch now (the schedule's trigger); called when enough records wait. */
  triggerBatch: () => Promise<void>;
  logger: Logger;
}

/** The GKB record's place in the case's life; the case shows it. */
export type EnqueueOutcome =
  | { state: 'queued'; recordId: string }
  | { state: 'not-applicable'; reason: string }
  | { state: 'incomplete'; reason: string };

export interface GkbFileProgress {
  fileName: string;
  records: number;
  sha256: string;
  packageId?: string;
  fileId?: string;
  statusText?: string;
  final?: boolean;
  /** Set when GKB refused the file (a permanent fault) or failed to process it. */
  failure?: string;
  collected?: boolean;
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

export function createGkbActivities(deps: GkbActivityDeps) {
  const { db, gkb, temporal, logger } = deps;
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

  return {
    async enqueueGkbReport(input: { reportKey: string; caseId: string; workflowId: string; dossier: GkbDossier }): Promise<EnqueueOutcome> {
      // K2 reports the overdue state of contracts the bank's lending system created: operation 2, file type 1.
      const mapped = mapDossierToContract(input.dossier, deps.dictionary, { operation: 2, fileType: 1 });
      if (!mapped.ok) return mapped.notApplicable ? { state: 'not-applicable', reason: mapped.reason } : { state: 'incomplete', reason: mapped.reason };
      const id = await enqueueReport(db, { reportKey: input.reportKey, caseId: input.caseId, workflowId: input.workflowId, record: mapped.record });
      const now = Date.now();
      if (now - lastTrigger > EARLY_BATCH_EVERY_MS && now - lastCount >= COUNT_EVERY_MS) {
        lastCount = now;
        if ((await countQueued(db)) >= deps.batchMinRecords) {
          lastTrigger = now;
          await deps.triggerBatch().catch((err) => logger.warn('early GKB batch not triggered', { err }));
        }
      }
      return { state: 'queued', recordId: String(id) };
    },

    async claimGkbRecords(input: { batchId: string }): Promise<number> {
      return claimRecords(db, input.batchId, deps.batchMaxRecords);
    },

    /** Streams the batch's records into validated, zipped files of at most maxRecordsPerFile records. */
    async buildGkbFiles(input: { batchId: string }): Promise<GkbFileProgress[]> {
      const dir = path.join(deps.filesDir, batchFileLabel(input.batchId));
      await fs.rm(dir, { recursive: true, force: true }); // a retried build starts clean; same records, same files
      let built = 0;
      const records = (async function* () {
        for await (const { record } of claimedRecords(db, input.batchId)) {
          if (++built % 1000 === 0) Context.current().heartbeat({ built });
          yield record;
        }
      })();
      let files;
      try {
        files = await writeBatchFiles({ records, dir, baseName: batchFileLabel(input.batchId), maxRecordsPerFile: deps.maxRecordsPerFile });
      } catch (err) {
        // An XSD failure of our own file is a defect or bad data, not a passing fault: stop and show it.
        throw ApplicationFailure.nonRetryable(`GKB file of batch ${input.batchId} not built: ${(err as Error).message}`, 'GkbFileInvalid');
      }
      for (const f of files) {
        await assignFile(db, input.batchId, f.fileName, f.contractCodes);
        await fs.rm(f.xmlPath, { force: true }); // the ZIP is what is uploaded and kept
      }
      const progress = files.map((f) => ({ fileName: f.fileName, records: f.records, sha256: f.sha256 }));
      await saveBatch(db, input.batchId, 'built', progress);
      return progress;
    },

    /** Uploads one file; from the second attempt on, an upload whose outcome was unknown is looked up first. */
    async uploadGkbFile(input: { batchId: string; fileName: string }): Promise<{ packageId: string; adopted: boolean }> {
      const file = await fs.readFile(path.join(deps.filesDir, batchFileLabel(input.batchId), input.fileName));
      const searchFirst = Context.current().info.attempt > 1;
      const { batchPackageId, adopted } = await callGkb(() => gkb.uploadFileOnce({ file, fileName: input.fileName, fileType: 1, searchFirst }));
      logger.info('GKB file uploaded', { batchId: input.batchId, fileName: input.fileName, packageId: batchPackageId, adopted });
      return { packageId: batchPackageId, adopted };
    },

    async pollGkbPackage(input: { packageId: string }): Promise<PackageStatus[]> {
      const info = await callGkb(() => gkb.getImportInfo({ packageId: input.packageId, firstResult: 0, maxResults: 100, language: 'ru' }));
      for (const f of info.files) if (f.status === 'unknown') logger.warn('unknown GKB status text; not final', { packageId: input.packageId, status: f.batchUploadStatus });
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

    /**
     * Pages through a processed file's results (errors, then everything else) and writes each
     * record's outcome; a record GKB says nothing about is rejected with that reason.
     */
    async collectGkbResults(input: { batchId: string; fileName: string; fileId?: string; failure?: string }): Promise<{ accepted: number; rejected: number }> {
      if (input.failure || !input.fileId) {
        const n = await rejectOpenRecords(db, input.batchId, input.fileName, input.failure ?? 'GKB reported no file for this package');
        return { accepted: 0, rejected: n };
      }
      const results = new Map<string, { accepted: boolean; text: string }>();
      const groups: Array<[RecordGroupStatus, boolean]> = [
        [0, false],
        [4, true],
      ];
      for (const [group, accepted] of groups) {
        for (let first = 0; ; first += DETAIL_PAGE) {
          const page = await callGkb(() => gkb.getImportDetailInfo({ fileId: input.fileId!, recordGroupStatus: group, firstResult: first, maxResults: DETAIL_PAGE, language: 'ru' }));
          Context.current().heartbeat({ group, first });
          for (const r of page.records) {
            if (!r.contractCode) continue;
            // GKB answers per contract and per subject; a contract's texts are joined, an error wins.
            const text = (accepted ? r.result : r.message ?? r.result) ?? (accepted ? 'accepted' : 'rejected without a message');
            const seen = results.get(r.contractCode);
            if (seen && seen.accepted !== accepted) continue;
            results.set(r.contractCode, { accepted, text: seen && !seen.text.includes(text) ? `${seen.text} ${text}` : text });
          }
          if (page.records.length === 0 || first + DETAIL_PAGE >= page.count) break;
        }
      }
      const outcome = await recordResults(db, input.batchId, input.fileName, results);
      if (outcome.unmatched.length) {
        await rejectOpenRecords(db, input.batchId, input.fileName, 'GKB returned no result for this record');
      }
      return { accepted: outcome.accepted, rejected: outcome.rejected + outcome.unmatched.length };
    },

    /** Rejects the records of a file (or of the whole batch) that will get no result from GKB. */
    async failGkbFile(input: { batchId: string; fileName?: string; reason: string }): Promise<number> {
      return rejectOpenRecords(db, input.batchId, input.fileName, input.reason);
    },

    async saveGkbBatch(input: { batchId: string; state: string; files: GkbFileProgress[]; error?: string }): Promise<void> {
      await saveBatch(db, input.batchId, input.state, input.files, input.error);
    },

    /** Signals each case its record's result, a bounded number at a time; repeats are harmless. */
    async deliverGkbResults(input: { batchId: string; concurrency?: number }): Promise<number> {
      let delivered = 0;
      for (;;) {
        const rows = await undeliveredResults(db, input.batchId, 500);
        if (rows.length === 0) return delivered;
        const queue = [...rows];
        const done: number[] = [];
        const worker = async () => {
          for (let row = queue.shift(); row; row = queue.shift()) {
            const result: GkbRecordResult = { recordId: String(row.id), outcome: row.state, text: row.result_text };
            try {
              await temporal.workflow.getHandle(row.workflow_id).signal('gkbResult', result);
            } catch (err) {
              if (!(err instanceof WorkflowNotFoundError)) throw err;
              logger.warn('GKB result for a case that no longer runs', { workflowId: row.workflow_id, recordId: row.id });
            }
            done.push(row.id);
          }
        };
        await Promise.all(Array.from({ length: Math.min(input.concurrency ?? 20, rows.length) }, worker));
        await markDelivered(db, done);
        delivered += done.length;
        Context.current().heartbeat({ delivered });
      }
    },
  };
}

export type GkbActivities = ReturnType<typeof createGkbActivities>;

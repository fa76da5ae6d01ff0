/**
 * GKB reporting for operators (`k2 gkb batches | records | redeliver`, README "GKB reporting"):
 * the batches with their packages, GKB's status of each and the records' counts; the GKB records of
 * one contract with their package and result; and re-delivering a package's results to its cases.
 * K2's database holds the records and what each batch saved; a running batch's own query
 * (batchProgress) gives its packages' status as of its last poll. References, states, counts and
 * GKB's texts only, never a record's content (it holds the client's data).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { GkbRecordResult } from '../activities/gkb';
import type { Db } from '../db';
import {
  contractRecords,
  countQueued,
  fileResults,
  filesOfPackage,
  markDelivered,
  recentBatches,
  type BatchOverview,
  type GkbResultRow,
  type StoredBatchFile,
} from '../db/gkb';
import { BATCH_STATE, batchProgressQuery } from '../workflows/gkb-batch';
import { gkbResultSignal } from '../workflows/definitions';
import { parseConcurrency, progressLine, progressStep, runBounded, type Tally } from './bulk';
import { EXIT, UsageError, type CliContext, type Command } from './command';
import { printJson, printTable, tableLines } from './output';

/** How long one call to Temporal for a batch or a case may take. */
const CALL_TIMEOUT_MS = 10_000;
const DEFAULT_BATCHES = 20;
const DEFAULT_CONCURRENCY = 8;

/** The signal a record's result travels to its case in, as the batch's delivery sends it (activities/gkb.ts deliverBatch). */
export function resultSignalOf(row: Pick<GkbResultRow, 'id' | 'state' | 'result_text' | 'new_contract' | 'skipped'>): GkbRecordResult {
  return {
    recordId: String(row.id),
    outcome: row.state,
    text: row.result_text,
    ...(row.new_contract ? { newContract: true } : {}),
    ...(row.skipped ? { skipped: true } : {}),
  };
}

/** Which report of its case a record is, from its report key (`<case>/<kind>/<n>`, workflows/case.ts): 'overdue #1', 'closure #2'. */
export function reportOf(reportKey: string): string {
  const m = /\/(overdue|closure)\/(\d+)$/.exec(reportKey);
  return m ? `${m[1]} #${m[2]}` : '-';
}

/** A batch workflow as Temporal sees it: its K2BatchState, its status, and (running) its files as of its last poll. */
interface BatchLive {
  batchState?: string;
  status: string;
  files?: StoredBatchFile[];
}

async function batchLive(client: Client, batchId: string): Promise<BatchLive> {
  const handle = client.workflow.getHandle(batchId);
  try {
    const d = await client.withDeadline(Date.now() + CALL_TIMEOUT_MS, () => handle.describe());
    const live: BatchLive = { batchState: d.typedSearchAttributes.get(BATCH_STATE), status: d.status.name };
    if (d.status.name !== 'RUNNING') return live;
    // A running batch answers with its files as they stand; without a worker the saved ones are shown.
    const progress = await client.withDeadline(Date.now() + CALL_TIMEOUT_MS, () => handle.query(batchProgressQuery)).catch(() => undefined);
    return progress ? { ...live, files: progress.files } : live;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND' };
    throw err;
  }
}

/** One row per package (file) of a batch, with GKB's status and the file's record counts. */
export function packageRows(batch: BatchOverview, files: readonly StoredBatchFile[]): Array<Record<string, unknown>> {
  return files.map((f) => {
    const c = batch.byFile[f.fileName];
    return {
      batch: batch.batchId,
      file: f.fileName,
      package: f.packageId,
      records: f.records,
      accepted: c?.accepted ?? 0,
      rejected: c?.rejected ?? 0,
      gkb_status: f.statusText,
      final: f.final ?? false,
      failure: f.failure,
    };
  });
}

const batches: Command = {
  path: ['gkb', 'batches'],
  summary: "the newest GKB batches with their packages, GKB's status of each, and the records' counts",
  usage: 'gkb batches [--limit N] [--all] [--batch ID]',
  description: [
    "Per batch: K2's state of it, the workflow's K2BatchState and status, records claimed (no result yet), accepted, rejected, and",
    "results not yet delivered to their cases. Per package: its GKB package id, GKB's status text, whether it is final, why it failed.",
    'Batches that found nothing to claim (empty) are left out unless --all.',
  ].join('\n'),
  options: {
    limit: { type: 'string', description: `at most this many batches, newest first (default ${DEFAULT_BATCHES})` },
    all: { type: 'boolean', description: 'include the batches that found nothing to claim' },
    batch: { type: 'string', description: 'only this batch (its workflow id)' },
  },
  async run(args, ctx) {
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const limit = parseCount(args.values.limit as string | undefined, DEFAULT_BATCHES, '--limit');
    const db = await ctx.db();
    const found = await recentBatches(db, { limit, includeEmpty: Boolean(args.values.all), batchId: args.values.batch as string | undefined });
    const queued = await countQueued(db);
    const client = await ctx.client();
    const lives = await runBounded(found, DEFAULT_CONCURRENCY, (b) => batchLive(client, b.batchId));
    const shown = found.map((b, i) => ({ batch: b, live: lives[i], files: lives[i].files ?? b.files }));
    if (ctx.json) {
      printJson(ctx, {
        queued,
        batches: shown.map(({ batch, live, files }) => ({
          ...withoutByFile(batch),
          workflow: { status: live.status, batchState: live.batchState },
          packages: packageRows(batch, files),
        })),
      });
      return EXIT.ok;
    }
    const rows = shown.map(({ batch, live, files }) => ({
      batch: batch.batchId,
      state: batch.state,
      workflow: `${live.batchState ?? '-'} (${live.status})`,
      open: batch.records.claimed,
      accepted: batch.records.accepted,
      rejected: batch.records.rejected,
      undelivered: batch.records.undelivered,
      packages: files.filter((f) => f.packageId).length,
      created: batch.createdAt,
      error: batch.error,
    }));
    printTable(ctx, ['batch', 'state', 'workflow', 'open', 'accepted', 'rejected', 'undelivered', 'packages', 'created', 'error'], rows);
    const packages = shown.flatMap(({ batch, files }) => packageRows(batch, files));
    if (packages.length) {
      ctx.out('');
      for (const l of tableLines(['batch', 'file', 'package', 'records', 'accepted', 'rejected', 'gkb_status', 'final', 'failure'], packages)) ctx.out(l);
    }
    ctx.out('');
    ctx.out(`${queued} record(s) queued for the next batch`);
    return EXIT.ok;
  },
};

function withoutByFile(b: BatchOverview): Omit<BatchOverview, 'byFile' | 'files'> {
  const { byFile: _byFile, files: _files, ...rest } = b;
  return rest;
}

const records: Command = {
  path: ['gkb', 'records'],
  summary: "the GKB records of a contract: which report, state, batch, package and GKB's result",
  usage: 'gkb records <contract>',
  description:
    'Oldest first. A record is queued (waiting for a batch), claimed (in a batch, no result yet), accepted or rejected; delivered: when its case got the result.',
  options: {},
  async run(args, ctx) {
    const [contract, ...more] = args.positionals;
    if (!contract || contract.trim() === '') throw new UsageError('which contract? give its contract number');
    if (more.length) throw new UsageError(`one contract at a time (also got "${more[0]}")`);
    const rows = await contractRecords(await ctx.db(), contract);
    if (ctx.json) {
      printJson(
        ctx,
        rows.map((r) => ({ ...r, report: reportOf(r.reportKey) })),
      );
      return EXIT.ok;
    }
    const table = rows.map((r) => ({
      record: r.id,
      report: reportOf(r.reportKey),
      state: r.state,
      batch: r.batchId,
      package: r.packageId,
      result: [r.resultText, r.newContract ? '(new contract at GKB)' : '', r.skipped ? '(skipped: GKB had this state)' : ''].filter(Boolean).join(' '),
      enqueued: r.enqueuedAt,
      delivered: r.deliveredAt,
    }));
    printTable(ctx, ['record', 'report', 'state', 'batch', 'package', 'enqueued', 'delivered', 'result'], table);
    if (rows.length === 0) ctx.out(`no GKB record of contract ${contract}`);
    return EXIT.ok;
  },
};

interface Redelivery {
  contract: string;
  record: number;
  result: 'accepted' | 'rejected';
  delivery: 'signalled' | 'case not running' | 'failed';
  message?: string;
}

async function redeliverOne(client: Client, row: GkbResultRow): Promise<Redelivery> {
  const base = { contract: row.contract_code, record: row.id, result: row.state };
  try {
    await client.withDeadline(Date.now() + CALL_TIMEOUT_MS, () => client.workflow.getHandle(row.workflow_id).signal(gkbResultSignal, resultSignalOf(row)));
    return { ...base, delivery: 'signalled' };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { ...base, delivery: 'case not running' };
    const e = err as Error & { cause?: Error };
    return { ...base, delivery: 'failed', message: [e?.message ?? String(err), e?.cause?.message].filter(Boolean).join(': ') };
  }
}

const redeliver: Command = {
  path: ['gkb', 'redeliver'],
  summary: "send a package's results to its cases again (a case that has its result already ignores the repeat)",
  usage: 'gkb redeliver <package> [--dry-run] [--concurrency N]',
  description: [
    "For a case that missed its result (the batch's delivery failed, or the case was reset). Each case gets its record's result as the",
    'batch sends it (the gkbResult signal); a case keeps one result per record, so a repeat changes nothing. Records of the package',
    'without a result yet are counted, not sent. Exit code 1 when a signal failed.',
  ].join('\n'),
  options: {
    'dry-run': { type: 'boolean', description: 'list what would be sent and send nothing' },
    concurrency: { type: 'string', description: `signals in flight at once (1-64, default ${DEFAULT_CONCURRENCY})` },
  },
  async run(args, ctx) {
    const [packageId, ...more] = args.positionals;
    if (!packageId || packageId.trim() === '') throw new UsageError('which package? give its GKB package id (k2 gkb batches lists them)');
    if (more.length) throw new UsageError(`one package at a time (also got "${more[0]}")`);
    const concurrency = parseConcurrency(args.values.concurrency as string | undefined, DEFAULT_CONCURRENCY);
    const db = await ctx.db();
    const files = await filesOfPackage(db, packageId);
    if (files.length === 0) {
      ctx.err(`no batch file went to GKB as package ${packageId} (k2 gkb batches lists the packages)`);
      return EXIT.failed;
    }
    const { results, open } = await resultsOf(db, files);
    if (args.values['dry-run']) {
      printTable(
        ctx,
        ['contract', 'record', 'result'],
        results.map((r) => ({ contract: r.contract_code, record: r.id, result: r.state })),
      );
      if (!ctx.json)
        ctx.out(`package ${packageId}: ${results.length} result(s) would be sent again, ${open} record(s) have no result yet; nothing was sent (--dry-run)`);
      return EXIT.ok;
    }
    const sent = await deliverAgain(ctx, await ctx.client(), results, concurrency);
    await markDelivered(
      db,
      sent.filter((r) => r.delivery !== 'failed').map((r) => r.record),
    );
    printTable(ctx, ['contract', 'record', 'result', 'delivery', 'message'], sent as unknown as Array<Record<string, unknown>>);
    const failed = sent.filter((r) => r.delivery === 'failed').length;
    if (!ctx.json)
      ctx.out(`package ${packageId}: ${sent.length - failed} of ${sent.length} result(s) sent again${open ? `, ${open} record(s) have no result yet` : ''}`);
    return failed ? EXIT.failed : EXIT.ok;
  },
};

async function resultsOf(db: Db, files: Array<{ batchId: string; file: StoredBatchFile }>): Promise<{ results: GkbResultRow[]; open: number }> {
  const all = { results: [] as GkbResultRow[], open: 0 };
  for (const f of files) {
    const one = await fileResults(db, f.batchId, f.file.fileName);
    all.results.push(...one.results);
    all.open += one.open;
  }
  return all;
}

async function deliverAgain(ctx: CliContext, client: Client, rows: GkbResultRow[], concurrency: number): Promise<Redelivery[]> {
  const tally: Tally = { signalled: 0, 'case not running': 0, failed: 0 };
  const step = progressStep(rows.length);
  return runBounded(
    rows,
    concurrency,
    (row) => redeliverOne(client, row),
    (finished, r) => {
      tally[r.delivery] += 1;
      if (rows.length > 1 && (finished % step === 0 || finished === rows.length)) ctx.err(progressLine('redeliver', finished, rows.length, tally));
    },
  );
}

function parseCount(text: string | undefined, fallback: number, option: string): number {
  if (text === undefined) return fallback;
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new UsageError(`${option}: "${text}" is not a whole number from 1 to 999999`);
  return Number(text);
}

export const gkbCommands: Command[] = [batches, records, redeliver];

/**
 * The case read commands: `case show`, `case list`, `case history` (README "Operator actions (at
 * 3 a.m.)"). Everything is read through K2's codec (ctx.client()); personal data is printed only
 * by `case show` (the loan, to the operator's terminal) and written only by `case history` (to a
 * private file outside the repository).
 */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { CaseStatus } from '../domain/case';
import type { Db } from '../db';
import { caseStatusQuery } from '../workflows/definitions';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { UsageError, type CliContext, type Command } from './command';
import { decodeHistory, converterOf, fetchChain, fetchRun, historyFileText, packageRoot, writePrivateFile } from './case-history';
import { factsOf, failureText, type CaseFact } from './case-facts';
import { caseIdOf, checkFilters, listQuery, parseLimit, withoutStageSinceQuery, type CaseFilters } from './case-filters';
import {
  demandStatusesOf,
  failuresOf,
  latestLoanOf,
  retryingOf,
  showLines,
  stageSinceOf,
  stageSteps,
  type CaseView,
  type GkbReportRow,
  type PendingActivity,
  type PendingWorkflowTask,
} from './case-view';
import { formatAge, parseDuration, printJson, printTable } from './output';

/** How long a query may wait for a worker to answer (none may be running). */
const QUERY_DEADLINE_MS = 10_000;
/** Runs of a chain `case show` reads for the stage history (each continue-as-new starts one). */
const MAX_RUNS = 20;
/** Calls to Temporal in flight at once for per-case look-ups (describe, the last event). */
const CONCURRENCY = 16;
/** How many cases `case list` reads from visibility at most for one answer. */
const SCAN_CAP = 10_000;

const iso = (ts: Parameters<typeof optionalTsToMs>[0]) => {
  const ms = optionalTsToMs(ts);
  return ms ? new Date(ms).toISOString() : undefined;
};

/** Runs fn over items with at most `limit` in flight; stops taking new items once `enough()` says so. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>, enough: () => boolean = () => false): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && !enough()) await fn(items[next++]);
    }),
  );
}

/** The pending activities and workflow task of a description, their last failures decoded. */
export async function pendingOf(
  client: Client,
  described: WorkflowExecutionDescription,
): Promise<{ activities: PendingActivity[]; task?: PendingWorkflowTask }> {
  const converter = converterOf(client);
  const activities = await Promise.all(
    (described.raw.pendingActivities ?? []).map(async (a): Promise<PendingActivity> => {
      const lastError = a.lastFailure ? await failureText(converter, a.lastFailure) : undefined;
      const next = iso(a.nextAttemptScheduleTime);
      const last = iso(a.lastStartedTime);
      return {
        activity: a.activityType?.name ?? '?',
        state: (temporal.api.enums.v1.PendingActivityState[a.state ?? 0] ?? '').replace('PENDING_ACTIVITY_STATE_', '').toLowerCase(),
        attempt: a.attempt ?? 1,
        ...(a.maximumAttempts ? { maximumAttempts: a.maximumAttempts } : {}),
        ...(lastError ? { lastError } : {}),
        ...(last ? { lastAttemptAt: last } : {}),
        ...(next ? { nextAttemptAt: next } : {}),
      };
    }),
  );
  const t = described.raw.pendingWorkflowTask;
  const since = t ? iso(t.originalScheduledTime ?? t.scheduledTime) : undefined;
  const task = t
    ? {
        attempt: t.attempt ?? 1,
        state: (temporal.api.enums.v1.PendingWorkflowTaskState[t.state ?? 0] ?? '').replace('PENDING_WORKFLOW_TASK_STATE_', '').toLowerCase(),
        ...(since ? { since } : {}),
      }
    : undefined;
  return { activities, ...(task ? { task } : {}) };
}

/** The case's status: its query (a worker answers it), or its result once it completed. */
export async function caseStatusOf(
  client: Client,
  workflowId: string,
  described: WorkflowExecutionDescription,
): Promise<{ status?: CaseStatus; problem?: string }> {
  const handle = client.workflow.getHandle(workflowId, described.runId);
  if (described.status.name === 'COMPLETED') return { status: (await handle.result()) as CaseStatus };
  try {
    return { status: await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(caseStatusQuery)) };
  } catch (e) {
    return { problem: `the caseStatus query was not answered within ${QUERY_DEADLINE_MS / 1000} s (is a worker running?): ${(e as Error).message}` };
  }
}

/** The case's GKB records in K2's database, with their package (the file K2 uploaded and GKB's package id). */
export async function gkbReportsOf(db: Db, workflowId: string): Promise<GkbReportRow[]> {
  const rows = await db('gkb_records').where({ workflow_id: workflowId }).orderBy('id');
  const batchIds = [...new Set(rows.map((r) => r.batch_id).filter(Boolean))];
  const batches = batchIds.length ? await db('gkb_batches').whereIn('batch_id', batchIds) : [];
  const files = new Map<string, Array<{ fileName?: string; packageId?: string }>>(batches.map((b) => [b.batch_id, parseFiles(b.files)]));
  const when = (v: unknown) => (v ? new Date(v as string).toISOString() : undefined);
  return rows.map((r) => {
    const packageId = files.get(r.batch_id)?.find((f) => f.fileName === r.file_name)?.packageId;
    return {
      recordId: String(r.id),
      kind: String(r.report_key).split('/').at(-2) ?? '?',
      operation: Number(r.operation),
      state: r.state,
      ...(r.batch_id ? { batchId: r.batch_id } : {}),
      ...(r.file_name ? { package: r.file_name } : {}),
      ...(packageId ? { packageId } : {}),
      ...(r.result_text ? { result: r.result_text } : {}),
      newContract: Boolean(r.new_contract),
      skipped: Boolean(r.skipped),
      enqueuedAt: when(r.enqueued_at)!,
      updatedAt: when(r.updated_at)!,
      ...(r.delivered_at ? { deliveredAt: when(r.delivered_at) } : {}),
    };
  });
}

function parseFiles(text: unknown): Array<{ fileName?: string; packageId?: string }> {
  try {
    const files = JSON.parse(String(text));
    return Array.isArray(files) ? files : [];
  } catch {
    return [];
  }
}

/** Describes the case; a case that does not exist is a failure naming it (exit 1). */
export async function describeCase(client: Client, contract: string, workflowId: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new CaseNotFound(contract, workflowId);
    throw e;
  }
}

export class CaseNotFound extends Error {
  constructor(contract: string, workflowId: string) {
    super(`no case for contract ${contract} (workflow ${workflowId} not found in this namespace)`);
    this.name = 'CaseNotFound';
  }
}

/** Everything `case show` reports of one case. */
export async function caseView(ctx: CliContext, contract: string, workflowId: string): Promise<CaseView & { gkbReportsProblem?: string }> {
  const client = await ctx.client();
  const described = await describeCase(client, contract, workflowId);
  const [{ status, problem }, pending, chain] = await Promise.all([
    caseStatusOf(client, workflowId, described),
    pendingOf(client, described),
    fetchChain(client, workflowId, MAX_RUNS),
  ]);
  const converter = converterOf(client);
  const facts: CaseFact[] = (await Promise.all(chain.runs.map((r) => factsOf(r, converter)))).flat();
  const latestRunFacts = facts.filter((f) => f.runId === described.runId);
  let gkbReports: GkbReportRow[] = [];
  let gkbReportsProblem: string | undefined;
  try {
    gkbReports = await gkbReportsOf(await ctx.db(), workflowId);
  } catch (e) {
    gkbReportsProblem = `K2's database not read: ${(e as Error).message}`;
  }
  const stages = stageSteps(facts);
  const stageSince = stageSinceOf(facts, stages);
  return {
    contract,
    workflowId,
    runId: described.runId,
    execution: described.status.name.toLowerCase().replace(/_/g, '-'),
    runsRead: chain.runs.length,
    olderRunsLeftOut: chain.truncated,
    ...(status ? { status } : {}),
    ...(problem ? { statusProblem: problem } : {}),
    ...(stageSince ? { stageSince } : {}),
    stages,
    demandStatuses: demandStatusesOf(facts),
    gkbReports,
    ...(gkbReportsProblem ? { gkbReportsProblem } : {}),
    pendingActivities: pending.activities,
    ...(pending.task ? { pendingWorkflowTask: pending.task } : {}),
    ...failuresOf(facts),
    ...((latestLoanOf(latestRunFacts) ?? latestLoanOf(facts)) ? { loan: latestLoanOf(latestRunFacts) ?? latestLoanOf(facts) } : {}),
  };
}

const show: Command = {
  path: ['case', 'show'],
  summary: 'one case: stage and its history, attention, demand, GKB reports, scan, pending activities and retries, the decoded loan',
  usage: 'case show <contract> [--json]',
  description: [
    "Reads the case through K2's codec: its caseStatus query (a worker answers it; a completed case: its result),",
    "Temporal's description (pending activities with their attempt and last error; a workflow task that keeps failing),",
    `its history (up to ${MAX_RUNS} runs of its continue-as-new chain: stage changes, EKO's statuses, local calls that failed`,
    "their quick attempts, which never show as pending activities) and K2's database (its GKB records and packages).",
    "Prints the loan as EKO last sent it, personal data included: for the operator's terminal only.",
  ].join('\n'),
  options: {},
  async run({ positionals }, ctx) {
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `one contract only (got ${positionals.length})` : 'the contract number is missing');
    const { contract, workflowId } = caseIdOf(positionals[0]);
    const view = await caseView(ctx, contract, workflowId);
    if (ctx.json) printJson(ctx, view);
    else {
      for (const line of showLines(view, new Date())) ctx.out(line);
      if (view.gkbReportsProblem) ctx.out(`(GKB records: ${view.gkbReportsProblem})`);
    }
    return 0;
  },
};

export interface ListedCase {
  contract: string;
  workflowId: string;
  runId: string;
  execution: string;
  stage?: string;
  /** When the stage began: K2StageSince, or (cases from before it, with --stuck-for) the last event of the run. */
  stageSince?: string;
  stageSinceSource?: 'K2StageSince' | 'last-event';
  inStage?: string;
  attention?: string;
  absSystem?: string;
  retrying?: { activity: string; attempt: number; lastError?: string };
}

function listedOf(info: WorkflowExecutionInfo, now: number): ListedCase {
  const sa = info.typedSearchAttributes;
  const since = sa.get(SEARCH_ATTRIBUTES.stageSince);
  const attention = sa.get(SEARCH_ATTRIBUTES.attentionReason);
  const stage = sa.get(SEARCH_ATTRIBUTES.stage);
  const absSystem = sa.get(SEARCH_ATTRIBUTES.absSystem);
  return {
    contract: info.workflowId.replace(/^case-/, ''),
    workflowId: info.workflowId,
    runId: info.runId,
    execution: info.status.name.toLowerCase().replace(/_/g, '-'),
    ...(stage ? { stage } : {}),
    ...(since ? { stageSince: since.toISOString(), stageSinceSource: 'K2StageSince' as const, inStage: formatAge(now - since.getTime()) } : {}),
    ...(attention ? { attention } : {}),
    ...(absSystem ? { absSystem } : {}),
  };
}

async function collect(client: Client, query: string, cap: number): Promise<{ infos: WorkflowExecutionInfo[]; capped: boolean }> {
  const infos: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query, pageSize: 1000 })) {
    if (infos.length >= cap) return { infos, capped: true };
    infos.push(info);
  }
  return { infos, capped: false };
}

/** The time of the run's last history event (reverse history, one event). */
async function lastEventAt(client: Client, workflowId: string, runId: string): Promise<number | undefined> {
  const res = await client.workflowService.getWorkflowExecutionHistoryReverse({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  return optionalTsToMs(res.history?.events?.[0]?.eventTime);
}

const list: Command = {
  path: ['case', 'list'],
  summary: 'cases by stage, attention reason, ABS system; stuck for a while; retrying an activity',
  usage: 'case list [--stage S] [--attention R|any] [--abs-system X] [--stuck-for 2h] [--retrying] [--all] [--limit N] [--query Q] [--json]',
  description: [
    "Lists running cases (--all: finished ones too) from Temporal's visibility, filters ANDed:",
    '  --stuck-for 2h   no progress for that long: the stage began longer ago (K2StageSince), waiting for GKB included;',
    '                   the resting stage reported-to-gkb (waiting for EKO to close the case) only with --stage reported-to-gkb.',
    '                   Cases from before K2StageSince existed are found by the time of their last history event (marked *).',
    '  --retrying       an activity has failed and is being retried (or a workflow task keeps failing): what the Web UI shows',
    `                   only as "running". Temporal's visibility does not know it: each candidate is described (${CONCURRENCY} at a time).`,
    'Oldest in their stage first with --stuck-for; otherwise newest started first.',
  ].join('\n'),
  options: {
    stage: { type: 'string', multiple: true, description: 'a stage (received, client-checked, …, closed); repeat for several' },
    attention: { type: 'string', description: 'an attention reason (scan-missing, abs-unavailable, …), or any' },
    'abs-system': { type: 'string', description: "the loan's ABS system code (K2_ABS_SYSTEMS)" },
    'stuck-for': { type: 'string', description: 'no progress for this long (30m, 2h, 3d)' },
    retrying: { type: 'boolean', description: 'only cases with an activity (or workflow task) being retried after a failure' },
    all: { type: 'boolean', description: 'finished cases too' },
    limit: { type: 'string', description: 'at most this many cases (default 50)' },
    query: { type: 'string', description: 'a raw visibility query, ANDed (e.g. \'StartTime > "2026-01-01T00:00:00Z"\')' },
  },
  async run({ positionals, values }, ctx) {
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const now = Date.now();
    const stuckMs = values['stuck-for'] === undefined ? undefined : parseDuration(String(values['stuck-for']), '--stuck-for');
    const filters: CaseFilters = {
      stages: (values.stage as string[] | undefined) ?? [],
      ...(values.attention !== undefined ? { attention: String(values.attention) } : {}),
      ...(values['abs-system'] !== undefined ? { absSystem: String(values['abs-system']) } : {}),
      ...(stuckMs !== undefined ? { stuckBefore: new Date(now - stuckMs).toISOString() } : {}),
      all: values.all === true,
      ...(values.query !== undefined ? { query: String(values.query) } : {}),
    };
    checkFilters(filters, ctx.config.api.absSystems);
    const limit = parseLimit(values.limit as string | undefined, 50);
    const client = await ctx.client();
    const query = listQuery(filters);
    const { infos, capped } = await collect(client, query, SCAN_CAP);
    let rows = infos.map((i) => listedOf(i, now));
    let fallbacks = 0;
    const withoutSince = withoutStageSinceQuery(filters);
    if (withoutSince && stuckMs !== undefined) {
      const old = await collect(client, withoutSince, SCAN_CAP);
      const found: ListedCase[] = [];
      await forEachLimit(old.infos, CONCURRENCY, async (info) => {
        const last = await lastEventAt(client, info.workflowId, info.runId);
        if (last === undefined || now - last < stuckMs) return;
        found.push({ ...listedOf(info, now), stageSince: new Date(last).toISOString(), stageSinceSource: 'last-event', inStage: `${formatAge(now - last)}*` });
      });
      fallbacks = found.length;
      rows.push(...found);
    }
    if (stuckMs !== undefined) rows.sort((a, b) => Date.parse(a.stageSince ?? '') - Date.parse(b.stageSince ?? ''));
    if (values.retrying === true) {
      const retrying: ListedCase[] = [];
      await forEachLimit(
        rows,
        CONCURRENCY,
        async (row) => {
          const described = await client.workflow.getHandle(row.workflowId, row.runId).describe();
          const pending = await pendingOf(client, described);
          const why = retryingOf(pending.activities, pending.task);
          if (why) retrying.push({ ...row, retrying: why });
        },
        () => retrying.length >= limit,
      );
      const order = new Map(rows.map((r, i) => [r.workflowId, i]));
      rows = retrying.sort((a, b) => order.get(a.workflowId)! - order.get(b.workflowId)!);
    }
    const shown = rows.slice(0, limit);
    const columns = ['contract', 'stage', 'inStage', 'attention', 'absSystem', ...(values.retrying ? ['retrying'] : [])];
    if (ctx.json) printJson(ctx, shown);
    else
      printTable(
        ctx,
        columns,
        shown.map((r) => ({
          ...r,
          retrying: r.retrying ? `${r.retrying.activity} attempt ${r.retrying.attempt}${r.retrying.lastError ? `: ${r.retrying.lastError}` : ''}` : undefined,
        })),
      );
    const note = (line: string) => (ctx.json ? ctx.err(line) : ctx.out(line));
    if (!ctx.json) note(`${shown.length} shown of ${rows.length}${capped ? `+ (the first ${SCAN_CAP} read)` : ''}; query: ${query}`);
    if (fallbacks > 0)
      note(`* ${fallbacks} case(s) from before K2StageSince: time since the last event of their history (a re-check timer counts as activity there)`);
    return 0;
  },
};

const history: Command = {
  path: ['case', 'history'],
  summary: 'the decoded history of a case to a private file (personal data), for `case replay --file`',
  usage: 'case history <contract> --out FILE [--run RUN_ID] [--force]',
  description: [
    "Writes the history of the case's latest run (or --run) as JSON, every payload decoded through K2's codec:",
    'Temporal\'s JSON history format under "history" (its tools and `k2 case replay --file` read it), and under "values"',
    "the decoded values of each event's payloads, for people (the history keeps them as base64).",
    'The file holds personal data: it is refused inside a git work tree (this repository included) and written with mode 0600.',
  ].join('\n'),
  options: {
    out: { type: 'string', short: 'o', description: 'the file to write (outside any repository)' },
    run: { type: 'string', description: 'a run of the chain (default: the latest)' },
    force: { type: 'boolean', description: 'replace the file if it exists' },
  },
  async run({ positionals, values }, ctx) {
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `one contract only (got ${positionals.length})` : 'the contract number is missing');
    if (typeof values.out !== 'string' || !values.out) throw new UsageError('--out FILE is required');
    const { contract, workflowId } = caseIdOf(positionals[0]);
    const client = await ctx.client();
    if (!values.run) await describeCase(client, contract, workflowId);
    let run;
    try {
      run = await fetchRun(client, workflowId, values.run as string | undefined);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new CaseNotFound(contract, `${workflowId}${values.run ? ` run ${values.run}` : ''}`);
      throw e;
    }
    const converter = converterOf(client);
    const decoded = { ...run, history: await decodeHistory(run.history, converter) };
    writePrivateFile(values.out, historyFileText(decoded, new Date(), converter), { repoRoot: packageRoot(), force: values.force === true, err: ctx.err });
    const summary = { workflowId, runId: run.runId, events: run.history.events?.length ?? 0, file: values.out };
    if (ctx.json) printJson(ctx, summary);
    else ctx.out(`wrote ${summary.events} events of ${workflowId} run ${run.runId} to ${values.out}`);
    return 0;
  },
};

export const caseCommands: Command[] = [show, list, history];

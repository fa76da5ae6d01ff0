/**
 * What `case show` reports of one case, made of what the case exposes (its caseStatus query, or
 * its result once closed), what Temporal describes (pending activities, a failing workflow task),
 * the facts of its history (cli/case-facts.ts) and K2's database (GKB records). Pure: every function
 * here takes plain data, so it is unit-tested directly.
 */
import { CASE_STAGES, type CaseStatus } from '../domain/case';
import type { Loan } from '../domain/loan';
import { demandStatusSignal, loanUpdatedSignal } from '../workflows/definitions';
import type { CaseFact, Visible } from './case-facts';
import { formatAge } from './output';

export interface StageStep {
  at: string;
  stage: string;
  /** The attention reason shown from then on (undefined: none). */
  attention?: string;
  /** Stages passed within the same workflow task (one visibility update covers them): between the previous step and this one. */
  via?: string[];
}

export interface PendingActivity {
  activity: string;
  state: string;
  attempt: number;
  /** Attempts allowed (0: unlimited within the schedule-to-close timeout). */
  maximumAttempts?: number;
  lastError?: string;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
}

export interface PendingWorkflowTask {
  attempt: number;
  state: string;
  since?: string;
}

export interface GkbReportRow {
  recordId: string;
  kind: string;
  operation: number;
  state: string;
  batchId?: string;
  package?: string;
  packageId?: string;
  result?: string;
  newContract: boolean;
  skipped: boolean;
  enqueuedAt: string;
  updatedAt: string;
  deliveredAt?: string;
}

export interface CaseView {
  contract: string;
  workflowId: string;
  runId: string;
  execution: string;
  /** The runs read for the history (newest last) and whether older ones were left out. */
  runsRead: number;
  olderRunsLeftOut: boolean;
  status?: CaseStatus;
  /** Why the status is missing (no worker answered the query, …). */
  statusProblem?: string;
  stageSince?: { at: string; source: 'K2StageSince' | 'history' };
  stages: StageStep[];
  demandStatuses: Array<{ at: string; reference: string; status: string }>;
  gkbReports: GkbReportRow[];
  pendingActivities: PendingActivity[];
  pendingWorkflowTask?: PendingWorkflowTask;
  /** Failed local calls (quick attempts inside a workflow task; the call then went on as a regular activity), newest last. */
  localCallFailures: Array<{ at: string; activity: string; attempts: number; error: string }>;
  activityFailures: Array<{ at: string; activity: string; error: string }>;
  workflowTaskFailures: Array<{ at: string; cause: string; error: string }>;
  loan?: { receivedAt: string; value: Loan };
}

/**
 * The stage history: the stage the first run read started with, then every change of stage or
 * attention the case published. With local-first calls one workflow task passes several stages
 * with one visibility update; the stages in between are listed as `via`.
 */
export function stageSteps(facts: readonly CaseFact[]): StageStep[] {
  const steps: StageStep[] = [];
  let stage: string | undefined;
  let attention: string | undefined;
  for (const f of facts) {
    if (f.type !== 'started' && f.type !== 'visible') continue;
    const v: Visible = f.visible;
    const nextStage = v.stage ?? stage;
    const nextAttention = v.attention === undefined ? attention : (v.attention ?? undefined);
    if (!nextStage || (nextStage === stage && nextAttention === attention)) continue;
    const step: StageStep = { at: f.at, stage: nextStage, ...(nextAttention ? { attention: nextAttention } : {}) };
    const via = stagesBetween(stage, nextStage);
    if (via.length) step.via = via;
    steps.push(step);
    stage = nextStage;
    attention = nextAttention;
  }
  return steps;
}

/** The stages strictly between two (in CASE_STAGES order); none when going back or not known. */
export function stagesBetween(from: string | undefined, to: string): string[] {
  const stages: readonly string[] = CASE_STAGES;
  const a = from === undefined ? -1 : stages.indexOf(from);
  const b = stages.indexOf(to);
  if (from === undefined || a < 0 || b < 0 || b <= a + 1) return [];
  return stages.slice(a + 1, b);
}

/** When the case entered its current stage: K2StageSince when published, else the step of the history that entered it. */
export function stageSinceOf(facts: readonly CaseFact[], steps: readonly StageStep[]): CaseView['stageSince'] {
  let published: string | undefined;
  let stage: string | undefined;
  for (const f of facts) {
    if (f.type !== 'started' && f.type !== 'visible') continue;
    if (f.visible.stage && f.visible.stage !== stage) published = undefined;
    stage = f.visible.stage ?? stage;
    if (f.visible.stageSince) published = f.visible.stageSince;
  }
  if (published) return { at: published, source: 'K2StageSince' };
  const current = steps.at(-1)?.stage;
  let entered: string | undefined;
  for (let i = steps.length - 1; i >= 0 && steps[i].stage === current; i--) entered = steps[i].at;
  return entered ? { at: entered, source: 'history' } : undefined;
}

/** The statuses EKO sent for the case's demands (signals), in order. */
export function demandStatusesOf(facts: readonly CaseFact[]): CaseView['demandStatuses'] {
  return facts.flatMap((f) => {
    if (f.type !== 'signal' || f.name !== demandStatusSignal.name) return [];
    const arg = f.args[0] as { reference?: unknown; status?: unknown } | undefined;
    return [{ at: f.at, reference: String(arg?.reference ?? '?'), status: String(arg?.status ?? '?') }];
  });
}

/** The loan as EKO last sent it: the newest loanUpdated signal, else the newest run's input. */
export function latestLoanOf(facts: readonly CaseFact[]): CaseView['loan'] {
  let loan: CaseView['loan'];
  for (const f of facts) {
    if (f.type === 'started') {
      const input = f.input as { loan?: Loan } | undefined;
      if (input?.loan) loan = { receivedAt: f.at, value: input.loan };
    }
    if (f.type === 'signal' && f.name === loanUpdatedSignal.name && f.args[0] && typeof f.args[0] === 'object')
      loan = { receivedAt: f.at, value: f.args[0] as Loan };
  }
  return loan;
}

/** The last `n` of each kind of failure the history holds. */
export function failuresOf(facts: readonly CaseFact[], n = 5): Pick<CaseView, 'localCallFailures' | 'activityFailures' | 'workflowTaskFailures'> {
  const local: CaseView['localCallFailures'] = [];
  const activity: CaseView['activityFailures'] = [];
  const task: CaseView['workflowTaskFailures'] = [];
  for (const f of facts) {
    if (f.type === 'local-call-failed') local.push({ at: f.at, activity: f.activity, attempts: f.attempt, error: f.error });
    if (f.type === 'activity-failed') activity.push({ at: f.at, activity: f.activity, error: f.error });
    if (f.type === 'workflow-task-failed') task.push({ at: f.at, cause: f.cause, error: f.error });
  }
  return { localCallFailures: local.slice(-n), activityFailures: activity.slice(-n), workflowTaskFailures: task.slice(-n) };
}

/** The loan's fields in a fixed order, for people (every field EKO sent, personal data included: the operator's terminal only). */
const LOAN_FIELDS: Array<keyof Loan> = [
  'contract_number',
  'system',
  'debt',
  'cur',
  'overdue_days',
  'dbz_contract_number',
  'dbz_date',
  'iinbin',
  'fullname',
  'iban',
];

/** `case show` for people. */
export function showLines(view: CaseView, now: Date): string[] {
  const s = view.status;
  const age = (iso: string | undefined) => (iso ? `${iso} (${formatAge(now.getTime() - Date.parse(iso))} ago)` : '-');
  const lines: string[] = [`case ${view.contract}   ${view.workflowId}   run ${view.runId}   ${view.execution}`];
  if (s) {
    lines.push(
      `stage      ${s.stage}${view.stageSince ? `   since ${age(view.stageSince.at)}${view.stageSince.source === 'history' ? ' (from its history: the case publishes no K2StageSince)' : ''}` : ''}${s.closedReason ? `   closed: ${s.closedReason}` : ''}${s.episode ? `   episode ${s.episode}` : ''}`,
    );
    lines.push(
      s.attention ? `attention  ${s.attention.code} at ${s.attention.stage}, since ${age(s.attention.since)}: ${s.attention.reason}` : 'attention  none',
    );
    for (const n of s.notices ?? [])
      if (n !== s.attention && n.code !== s.attention?.code) lines.push(`notice     ${n.code}, since ${age(n.since)}: ${n.reason}`);
    lines.push(`debt       ${s.debt} ${s.currency}, ${s.overdueDays} days overdue, agreement date ${s.dbzDate ?? '-'}, ${s.updates} update(s) applied`);
    if (s.nextEpisode)
      lines.push(
        `next       back overdue while closing: ${s.nextEpisode.debt} ${s.currency}, ${s.nextEpisode.overdueDays} days; its episode starts once GKB accepts the closure`,
      );
  } else {
    lines.push(`status     not available: ${view.statusProblem ?? 'unknown'}`);
  }
  lines.push('', 'stage history:');
  if (view.stages.length === 0) lines.push('  (none published)');
  for (const st of view.stages)
    lines.push(`  ${st.at}  ${st.stage}${st.via ? ` (via ${st.via.join(', ')})` : ''}${st.attention ? `  needs attention: ${st.attention}` : ''}`);
  if (view.olderRunsLeftOut) lines.push(`  (older runs of the chain not read: the ${view.runsRead} newest only)`);

  lines.push('', 'demand:');
  if (s?.demand)
    lines.push(
      `  ${s.demand.reference}  ${s.demand.status}  accepted by the bank: ${s.demand.acceptedByBank ? 'yes' : 'no'}  in the card index: ${s.demand.inCardIndex ? 'yes' : 'no'}`,
    );
  else lines.push('  none issued');
  for (const d of view.demandStatuses) lines.push(`  ${d.at}  ${d.status}  (${d.reference})`);

  lines.push('', `GKB: ${s ? gkbOutcomeText(s) : '-'}`);
  for (const r of view.gkbReports) {
    lines.push(
      `  record ${r.recordId}  ${r.kind}  op ${r.operation}  ${r.state}${r.package ? `  package ${r.package}${r.packageId ? ` (GKB ${r.packageId})` : ''}` : ''}${r.batchId ? `  batch ${r.batchId}` : ''}  queued ${r.enqueuedAt}${r.deliveredAt ? `  delivered ${r.deliveredAt}` : ''}`,
    );
    if (r.result)
      lines.push(`    result: ${r.result}${r.newContract ? ' (GKB created a new contract)' : ''}${r.skipped ? ' (skipped: GKB had this state)' : ''}`);
  }

  lines.push('', `scan: ${s?.scan ? `sha256 ${s.scan.sha256}, ${s.scan.size} bytes, ${s.scan.mediaType} (k2 scan get ${view.contract} --out FILE)` : 'none'}`);

  lines.push('', 'pending activities:');
  if (view.pendingActivities.length === 0) lines.push('  none');
  for (const a of view.pendingActivities) {
    lines.push(
      `  ${a.activity}  ${a.state}  attempt ${a.attempt}${a.maximumAttempts ? ` of ${a.maximumAttempts}` : ''}${a.lastAttemptAt ? `  last ${a.lastAttemptAt}` : ''}${a.nextAttemptAt ? `  next ${a.nextAttemptAt}` : ''}`,
    );
    if (a.lastError) lines.push(`    last error: ${a.lastError}`);
  }
  if (view.pendingWorkflowTask && view.pendingWorkflowTask.attempt > 1)
    lines.push(
      `  workflow task  ${view.pendingWorkflowTask.state}  attempt ${view.pendingWorkflowTask.attempt}${view.pendingWorkflowTask.since ? `  since ${view.pendingWorkflowTask.since}` : ''} (it keeps failing: see the failures below, and k2 case replay ${view.contract})`,
    );
  if (view.localCallFailures.length) {
    lines.push('', 'local calls that failed their quick attempts (then retried as regular activities):');
    for (const l of view.localCallFailures) lines.push(`  ${l.at}  ${l.activity}  after ${l.attempts} attempt(s): ${l.error}`);
  }
  if (view.activityFailures.length) {
    lines.push('', 'activities that failed for good:');
    for (const a of view.activityFailures) lines.push(`  ${a.at}  ${a.activity}: ${a.error}`);
  }
  if (view.workflowTaskFailures.length) {
    lines.push('', 'workflow task failures:');
    for (const w of view.workflowTaskFailures) lines.push(`  ${w.at}  ${w.cause}: ${w.error}`);
  }

  lines.push('', `loan (as EKO last sent it, ${view.loan?.receivedAt ?? '-'}; personal data):`);
  if (view.loan) for (const f of LOAN_FIELDS) lines.push(`  ${f.padEnd(20)} ${view.loan.value[f] ?? '-'}`);
  else lines.push('  not in the history read');
  return lines;
}

export function gkbOutcomeText(s: Pick<CaseStatus, 'gkb'>): string {
  const g = s.gkb;
  switch (g.state) {
    case 'not-reported':
      return 'not reported yet';
    case 'not-applicable':
      return `not applicable: ${g.reason}`;
    case 'queued':
      return `record ${g.recordId} waits for GKB's result`;
    case 'accepted':
      return `record ${g.recordId} accepted: ${g.result}`;
    case 'rejected':
      return `record ${g.recordId} rejected: ${g.message}`;
  }
}

/**
 * Why a running case counts as retrying (undefined: it does not): an activity that has failed at
 * least once and is being tried again, or a workflow task that keeps failing (a defect, or a
 * non-determinism); the Web UI shows such a case only as "running".
 */
export function retryingOf(
  pending: readonly PendingActivity[],
  task: PendingWorkflowTask | undefined,
): { activity: string; attempt: number; lastError?: string } | undefined {
  const activity = [...pending].sort((a, b) => b.attempt - a.attempt).find((a) => a.attempt > 1);
  if (activity) return { activity: activity.activity, attempt: activity.attempt, ...(activity.lastError ? { lastError: activity.lastError } : {}) };
  if (task && task.attempt > 1) return { activity: 'workflow task', attempt: task.attempt };
  return undefined;
}

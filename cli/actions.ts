/**
 * Operator actions (`k2 case retry | supply-agreement-date | close | acknowledge`): the case
 * workflow's `operator` Update (workflows/definitions.ts), on one case or on every running case of
 * a visibility query. The action is checked here first by the rules the workflow's validator uses
 * (workflows/case-rules.ts operatorActionProblem), so a wrong date or an over-long note is refused
 * before anything is sent; what only the case knows (whether it shows the notice to acknowledge)
 * its validator decides, and its message is reported as the case's refusal. Each case's outcome:
 * done (the case's stage and attention after it), refused (the validator's message), failed (why).
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { caseWorkflowId, kazakhstanDate, NOTICE_CODES, type AttentionCode, type OperatorAction } from '../domain/case';
import { MAX_NOTE_LENGTH, operatorActionProblem } from '../workflows/case-rules';
import { operatorUpdate } from '../workflows/definitions';
import { casesOfQuery, describeCase, parseConcurrency, progressLine, progressStep, runBounded, type CaseTarget, type Tally } from './bulk';
import { EXIT, UsageError, type CliContext, type Command, type OptionSpec, type OptionValues } from './command';
import { printJson, printTable } from './output';

export type ActionName = OperatorAction['action'];

/** Updates in flight at once in a bulk action (--concurrency). */
export const DEFAULT_CONCURRENCY = 8;
/** How long one case's Update may take (its workflow task must run on a worker). */
export const UPDATE_TIMEOUT_MS = 30_000;

export interface ActionResult {
  contract: string;
  outcome: 'done' | 'refused' | 'failed';
  /** After a done action: the case's stage and the attention it shows. */
  stage?: string;
  attention?: string;
  /** Why it was refused (the case's validator) or failed. */
  message?: string;
}

/**
 * The action the options describe, checked by the workflow validator's own rules with today's
 * Kazakhstan date. Every notice code counts as shown: whether the case shows it, the case decides.
 * A missing or invalid value is a UsageError: nothing is sent.
 */
export function actionOf(name: ActionName, values: OptionValues, today: string): OperatorAction {
  const note = typeof values.note === 'string' ? { note: values.note } : {};
  let action: OperatorAction;
  if (name === 'supply-agreement-date') {
    if (typeof values.date !== 'string') throw new UsageError('--date YYYY-MM-DD is required: the agreement date (dbz_date) the loan came without');
    action = { action: name, dbzDate: values.date, ...note };
  } else if (name === 'acknowledge') {
    if (typeof values.notice !== 'string') throw new UsageError(`--notice is required: the notice to acknowledge, one of ${NOTICE_CODES.join(', ')}`);
    action = { action: name, code: values.notice as AttentionCode, ...note };
  } else {
    action = { action: name, ...note };
  }
  const problem = operatorActionProblem(action, today, NOTICE_CODES);
  if (problem) throw new UsageError(`not sent: ${problem}`);
  return action;
}

/** A failed Update as the operator reads it: refused by the case's validator, or failed and why. */
export function failureOf(err: unknown, timeoutMs = UPDATE_TIMEOUT_MS): Pick<ActionResult, 'outcome' | 'message'> {
  if (err instanceof WorkflowUpdateFailedError) return { outcome: 'refused', message: err.cause?.message ?? err.message };
  if (err instanceof WorkflowNotFoundError) return { outcome: 'failed', message: `no running case (closed, or never started): ${err.message}` };
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return {
      outcome: 'failed',
      message: `no answer within ${timeoutMs / 1000}s (is a worker running?); the action may still apply when the case runs: check it with k2 case show`,
    };
  }
  const e = err as Error & { cause?: Error };
  return { outcome: 'failed', message: [e?.message ?? String(err), e?.cause?.message].filter(Boolean).join(': ') };
}

/** Sends the action to one case and reports its outcome (never throws). */
export async function sendAction(client: Client, target: CaseTarget, action: OperatorAction, timeoutMs = UPDATE_TIMEOUT_MS): Promise<ActionResult> {
  try {
    const status = await client.withDeadline(Date.now() + timeoutMs, () =>
      client.workflow.getHandle(target.workflowId).executeUpdate(operatorUpdate, { args: [action] }),
    );
    return { contract: target.contract, outcome: 'done', stage: status.stage, ...(status.attention ? { attention: status.attention.code } : {}) };
  } catch (err) {
    return { contract: target.contract, ...failureOf(err, timeoutMs) };
  }
}

/** The cases named (contract numbers, each once) or matched (--query): exactly one of the two. */
async function targetsOf(positionals: string[], query: string | undefined, client: () => Promise<Client>): Promise<CaseTarget[]> {
  if (positionals.length > 0 && query !== undefined) throw new UsageError('give contract numbers or --query, not both');
  if (query !== undefined) {
    if (query.trim() === '') throw new UsageError('--query is empty: give a visibility query such as K2AttentionReason="abs-unavailable"');
    return casesOfQuery(await client(), query);
  }
  if (positionals.length === 0) throw new UsageError('which case? give its contract number, or --query for every running case a visibility query matches');
  const blank = positionals.findIndex((p) => p.trim() === '');
  if (blank >= 0) throw new UsageError(`contract number ${blank + 1} is empty`);
  return [...new Set(positionals)].map((contract) => ({ contract, workflowId: caseWorkflowId(contract) }));
}

const COMMON_OPTIONS: OptionSpec = {
  query: { type: 'string', short: 'q', description: 'every running case this visibility query matches, e.g. \'K2AttentionReason="abs-unavailable"\'' },
  note: { type: 'string', description: `why, kept in the case's history (at most ${MAX_NOTE_LENGTH} characters)` },
  'dry-run': { type: 'boolean', description: 'list the cases it would go to (contract, stage, reason) and send nothing' },
  yes: { type: 'boolean', short: 'y', description: 'act on more than one case (required then)' },
  concurrency: { type: 'string', description: `Updates in flight at once (1-64, default ${DEFAULT_CONCURRENCY})` },
};

interface ActionSpec {
  name: ActionName;
  summary: string;
  extra: string;
  options: OptionSpec;
  description: string;
}

const SPECS: ActionSpec[] = [
  {
    name: 'retry',
    summary: 'run again the stage a case waits in (after ABS, EKO, the database or the data is fixed)',
    extra: '',
    options: {},
    description:
      'The case re-runs the stage that needs attention at once; if the cause is still there it parks again with the same reason (and keeps its since).',
  },
  {
    name: 'supply-agreement-date',
    summary: 'give a case the agreement date (dbz_date) the loan came without (agreement-date-missing)',
    extra: ' --date YYYY-MM-DD',
    options: { date: { type: 'string', description: 'the agreement date, YYYY-MM-DD, not in the future (Kazakhstan date)' } },
    description: "The date is checked here by the case's own rules (a real calendar date, not after today in Kazakhstan) before anything is sent.",
  },
  {
    name: 'close',
    summary: 'close a case (written off, settled outside K2); a case GKB heard of is reported as no longer overdue',
    extra: '',
    options: {},
    description: 'The case leaves whatever it waits for, reports its closure to GKB when GKB knows the contract, and ends.',
  },
  {
    name: 'acknowledge',
    summary: `clear a notice of a case (${NOTICE_CODES.join(', ')}), e.g. once the contract is put right at GKB`,
    extra: ' --notice <code>',
    options: { notice: { type: 'string', description: `the notice: ${NOTICE_CODES.join(' or ')}` } },
    description: 'A case that does not show the notice refuses (its validator says so) and nothing changes.',
  },
];

function actionCommand(spec: ActionSpec): Command {
  return {
    path: ['case', spec.name],
    summary: spec.summary,
    usage: `case ${spec.name} <contract>... | --query Q${spec.extra} [--note TEXT] [--dry-run] [--yes]`,
    description: [
      spec.description,
      "Sent as the case's operator Update: validated first (a wrong value or an over-long note is refused here, before sending), then",
      "each case's own validator decides; each case is reported done (its stage and attention after it), refused (why) or failed (why).",
      '--query acts on every running case the query matches (read first, then acted on), with bounded concurrency and a progress line on stderr;',
      'more than one case needs --yes. Exit code 0 when every case is done, 1 when any was refused or failed.',
    ].join('\n'),
    options: { ...spec.options, ...COMMON_OPTIONS },
    run: (args, ctx) => runAction(spec.name, args, ctx),
  };
}

async function runAction(name: ActionName, args: { positionals: string[]; values: OptionValues }, ctx: CliContext): Promise<number> {
  const { values } = args;
  // Checked before connecting: an invalid action sends nothing.
  const action = actionOf(name, values, kazakhstanDate(Date.now()));
  const concurrency = parseConcurrency(values.concurrency as string | undefined, DEFAULT_CONCURRENCY);
  let targets = await targetsOf(args.positionals, values.query as string | undefined, ctx.client);
  if (values['dry-run']) {
    if (values.query === undefined) {
      const client = await ctx.client();
      targets = await runBounded(targets, concurrency, (t) => describeCase(client, t.contract));
    }
    printTable(ctx, ['contract', 'stage', 'reason', 'status'], targets.map(targetRow));
    if (!ctx.json) ctx.out(`${targets.length} case(s) would get ${name}; nothing was sent (--dry-run)`);
    return EXIT.ok;
  }
  if (targets.length === 0) {
    if (ctx.json) printJson(ctx, []);
    else ctx.out('no running case matches the query; nothing was sent');
    return EXIT.ok;
  }
  if (targets.length > 1 && !values.yes) throw new UsageError(`${targets.length} cases match; add --yes to ${name} every one of them (--dry-run lists them)`);
  const client = await ctx.client();
  const tally: Tally = { done: 0, refused: 0, failed: 0 };
  const step = progressStep(targets.length);
  const results = await runBounded(
    targets,
    concurrency,
    (t) => sendAction(client, t, action),
    (finished, r) => {
      tally[r.outcome] += 1;
      if (targets.length > 1 && (finished % step === 0 || finished === targets.length)) ctx.err(progressLine(name, finished, targets.length, tally));
    },
  );
  printTable(ctx, ['contract', 'outcome', 'stage', 'attention', 'message'], results as unknown as Array<Record<string, unknown>>);
  if (!ctx.json) ctx.out(`${name}: ${results.length} case(s): ${tally.done} done, ${tally.refused} refused, ${tally.failed} failed`);
  return tally.done === results.length ? EXIT.ok : EXIT.failed;
}

function targetRow(t: CaseTarget): Record<string, unknown> {
  return { contract: t.contract, stage: t.stage, reason: t.reason, status: t.status };
}

export const actionCommands: Command[] = SPECS.map(actionCommand);

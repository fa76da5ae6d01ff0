/**
 * `case replay`: replays live or saved histories against the current workflow code (the compiled
 * dist/workflows, or --workflows), the way the worker would run them after a deploy, and reports
 * each non-determinism with the event it happened at. Exit 0: all replayed; 1: any did not.
 *
 * The bundle is built once; the histories are replayed in a child process (cli/replay-child.ts),
 * one at a time, each within --timeout: past it the child is killed (a workflow loop that never
 * yields cannot be stopped otherwise), the history is reported as timed out and the rest go on in
 * a new child. Payloads are decoded with the configuration's keys, as the worker decodes them.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { WorkflowNotFoundError } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode } from '@temporalio/worker';
import { bundleOptions } from '../worker/workflow-bundle';
import { formatPayloadKeys } from '../temporal/keys';
import { UsageError, type CliContext, type Command } from './command';
import { fetchRun, previousRunId, readHistoryFile, type History } from './case-history';
import { caseIdOf, parseLimit } from './case-filters';
import { CaseNotFound } from './case';
import { RESULT_PREFIX, type ChildResult } from './replay-child';
import { outcomeLine, outcomeOf, type ReplayOutcome } from './replay-report';
import { parseDuration, printJson } from './output';

/** The workflows of this build (dist/workflows from dist/cli). */
export function defaultWorkflowsPath(): string {
  return require.resolve(path.join(__dirname, '..', 'workflows'));
}

export interface ReplaySource {
  source: string;
  workflowId: string;
  runId?: string;
  history: History;
}

const SILENT = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} };

/** The workflow code as the worker bundles it (with K2's failure converter), written to a file for the children. */
async function bundleTo(dir: string, workflowsPath: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ ...bundleOptions(workflowsPath), logger: SILENT });
  const file = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(file, code);
  return file;
}

/** A replay child: sends one history at a time, resolves with its answer, or undefined when the limit passes (the child is killed then). */
function replayChild(bundlePath: string, payloadKeys: string) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [path.join(__dirname, 'replay-child.js'), bundlePath], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // A child killed at its limit (or crashed) must not take the CLI down with an EPIPE.
  child.stdin.on('error', () => undefined);
  child.stdin.write(`${JSON.stringify({ payloadKeys })}\n`);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
  const waiting: Array<(r: ChildResult | undefined) => void> = [];
  let exited = false;
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith(RESULT_PREFIX)) waiting.shift()?.(JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult);
  });
  child.on('exit', () => {
    exited = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  return {
    replay(source: ReplaySource, limitMs: number): Promise<ChildResult | 'crashed' | undefined> {
      if (exited) return Promise.resolve('crashed');
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(undefined);
        }, limitMs);
        waiting.push((r) => {
          clearTimeout(timer);
          resolve(r ?? (exited ? 'crashed' : undefined));
        });
        child.stdin.write(`${JSON.stringify({ name: source.source, workflowId: source.workflowId, history: JSON.parse(historyToJSON(source.history)) })}\n`);
      });
    },
    get stderr() {
      return stderr.trim();
    },
    get exited() {
      return exited;
    },
    async close(): Promise<void> {
      if (exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Replays every source, each within limitMs; a child that hangs or crashes is replaced for the rest. */
export async function replayAll(
  sources: ReplaySource[],
  opts: { workflowsPath: string; limitMs: number; payloadKeys: string; onOutcome?: (o: ReplayOutcome) => void },
): Promise<ReplayOutcome[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-replay-'));
  const outcomes: ReplayOutcome[] = [];
  let child: ReturnType<typeof replayChild> | undefined;
  try {
    const bundlePath = await bundleTo(dir, opts.workflowsPath);
    for (const source of sources) {
      child ??= replayChild(bundlePath, opts.payloadKeys);
      const answer = await child.replay(source, opts.limitMs);
      const events = source.history.events ?? [];
      const outcome =
        answer === 'crashed'
          ? {
              source: source.source,
              workflowId: source.workflowId,
              ...(source.runId ? { runId: source.runId } : {}),
              result: 'failed' as const,
              error: `the replay process ended: ${child.stderr || 'no message'}`,
            }
          : outcomeOf({ ...source, events }, answer, opts.limitMs);
      if (answer === undefined || answer === 'crashed' || child.exited) child = undefined;
      outcomes.push(outcome);
      opts.onOutcome?.(outcome);
    }
  } finally {
    await child?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return outcomes;
}

/** The live histories to replay: a case's latest run (or every run of its chain), or the executions of a visibility query. */
async function liveSources(ctx: CliContext, values: Record<string, unknown>, positionals: string[]): Promise<ReplaySource[]> {
  const client = await ctx.client();
  if (positionals.length === 1) {
    const { contract, workflowId } = caseIdOf(positionals[0]);
    const sources: ReplaySource[] = [];
    const maxRuns = values['all-runs'] === true ? 1000 : 1;
    try {
      for (let runId: string | undefined; sources.length < maxRuns;) {
        const run = await fetchRun(client, workflowId, runId);
        sources.unshift({ source: workflowId, workflowId, runId: run.runId, history: run.history });
        runId = previousRunId(run.history);
        if (!runId) break;
      }
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new CaseNotFound(contract, workflowId);
      throw e;
    }
    return sources;
  }
  const limit = parseLimit(values.limit as string | undefined, 100);
  const sources: ReplaySource[] = [];
  for await (const info of client.workflow.list({ query: String(values.query) })) {
    if (sources.length >= limit) break;
    const run = await fetchRun(client, info.workflowId, info.runId);
    sources.push({ source: info.workflowId, workflowId: info.workflowId, runId: info.runId, history: run.history });
  }
  return sources;
}

const replay: Command = {
  path: ['case', 'replay'],
  summary: 'replay live or saved histories against the current workflow code; names the event of each non-determinism',
  usage: 'case replay <contract> [--all-runs] | --file F [--file F2 …] | --query Q [--limit N]   [--timeout 60s] [--workflows PATH] [--json]',
  description: [
    'Before a deploy, or when a case hangs: replays histories against the workflow code of this build (dist/workflows, or',
    "--workflows: a candidate build's compiled workflows module) with K2's data converter, as a worker would after the deploy.",
    "  <contract>     the case's latest run from Temporal (--all-runs: every run of its continue-as-new chain)",
    "  --file F       a saved history: `k2 case history` output, or Temporal's JSON export (temporal workflow show --output json)",
    '  --query Q      every execution of a visibility query (e.g. \'WorkflowType="caseWorkflow" AND ExecutionStatus="Running"\'), at most --limit (100)',
    'Each history replays in a child process within --timeout (a replay that hangs is reported and killed).',
    'Exit 0: every history replayed; 1: at least one is non-deterministic, failed or timed out.',
  ].join('\n'),
  options: {
    file: { type: 'string', multiple: true, description: 'a saved history file (repeatable)' },
    query: { type: 'string', description: 'a visibility query: replay each matching execution' },
    limit: { type: 'string', description: 'with --query: at most this many (default 100)' },
    'all-runs': { type: 'boolean', description: 'with <contract>: every run of the chain, not only the latest' },
    timeout: { type: 'string', description: 'time limit of one replay (default 60s)' },
    workflows: { type: 'string', description: "the compiled workflows module to replay against (default: this build's dist/workflows)" },
  },
  async run({ positionals, values }, ctx) {
    const files = (values.file as string[] | undefined) ?? [];
    const given = [positionals.length > 0, files.length > 0, values.query !== undefined].filter(Boolean).length;
    if (given !== 1) throw new UsageError('give exactly one of: a contract, --file, --query');
    if (positionals.length > 1) throw new UsageError(`one contract only (got ${positionals.length})`);
    if (values.query !== undefined && String(values.query).trim() === '') throw new UsageError('--query: empty');
    const limitMs = values.timeout === undefined ? 60_000 : parseDuration(String(values.timeout), '--timeout');
    let workflowsPath = defaultWorkflowsPath();
    if (values.workflows !== undefined) {
      try {
        workflowsPath = require.resolve(path.resolve(String(values.workflows)));
      } catch {
        throw new UsageError(`--workflows ${values.workflows}: no such module`);
      }
    }
    const sources: ReplaySource[] = files.length
      ? files.map((f) => {
          const { workflowId, runId, history } = readHistoryFile(f);
          return { source: f, workflowId, ...(runId ? { runId } : {}), history };
        })
      : await liveSources(ctx, values, positionals);
    if (sources.length === 0) {
      ctx.err('k2 case replay: no history to replay (the query matched nothing)');
      return 1;
    }
    if (!ctx.json)
      ctx.out(`replaying ${sources.length} history(ies) against ${path.relative(process.cwd(), workflowsPath) || workflowsPath}, ${limitMs / 1000} s each`);
    const outcomes = await replayAll(sources, {
      workflowsPath,
      limitMs,
      payloadKeys: formatPayloadKeys(ctx.config.payloadKeys),
      onOutcome: (o) => !ctx.json && ctx.out(outcomeLine(o)),
    });
    const bad = outcomes.filter((o) => o.result !== 'replayed');
    if (ctx.json) printJson(ctx, outcomes);
    else ctx.out(`${outcomes.length - bad.length} replayed, ${bad.length} did not`);
    return bad.length === 0 ? 0 : 1;
  },
};

export const replayCommands: Command[] = [replay];

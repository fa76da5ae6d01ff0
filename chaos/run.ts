/**
 * The chaos suite (README "Chaos suite"):
 *
 *   npm run chaos -- --cases 400 --duration 10m --topology cluster --seed 42
 *   npm run chaos -- --short --topology dev            (CI: 80 cases, 2 minutes, every fault once or twice)
 *
 * Starts the topology (scripts/topology.ts) with a fast pace, plays the load (chaos/load.ts) while the
 * fault timeline (chaos/timeline.ts, from the seed) kills workers and an API replica mid-POST, restarts
 * Temporal (and PostgreSQL on the cluster) and turns the simulators' fault knobs; then clears every
 * fault, waits (bounded) until the system settles, gathers facts from independent sources
 * (chaos/collect.ts), checks them (chaos/checks.ts) and writes the report (chaos/report.ts). Exits 1
 * on any violation, naming the case; 2 when the run itself could not be made.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDuration } from '../config';
import { formatPayloadKeys, newPayloadKey } from '../temporal/keys';
import { repoRoot } from '../scripts/system';
import { parseTopologyKind, startTopology, topologyUnavailable, type RunningTopology, type TopologyKind } from '../scripts/topology';
import { checkFacts, countFacts, type Violation } from './checks';
import { collectFacts, exportHistories, openSources, waitUntilSettled, type Sources } from './collect';
import { planLoad, runLoad, type LoadRecord } from './load';
import { reportBaseName, timelineLines, writeReport, type ChaosReport, type ExecutedEvent } from './report';
import { describeEvent, missingFaultKinds, planTimeline, type ChaosEvent, type ChaosTimeline } from './timeline';

export interface ChaosOptions {
  topology: TopologyKind;
  cases: number;
  durationMs: number;
  seed: number;
  short: boolean;
  /** Where the report goes (default chaos/reports). */
  outDir: string;
  /** The longest wait for the system to settle after the faults. */
  settleMaxMs: number;
  /** Keep the data folder even when the run passes. */
  keepData: boolean;
}

export const SHORT = { cases: 80, durationMs: 120_000, settleMaxMs: 10 * 60_000 } as const;
export const FULL = { cases: 400, durationMs: 10 * 60_000, settleMaxMs: 20 * 60_000 } as const;

const USAGE = 'usage: npm run chaos -- [--cases N] [--duration 10m] [--topology dev|cluster] [--seed S] [--short] [--out DIR] [--settle 20m] [--keep]';

/** Reads the command line; every problem is named. */
export function parseArgs(argv: readonly string[], defaultSeed = Date.now() % 1_000_000): ChaosOptions {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=', 2);
    if (name === '--short' || name === '--keep') {
      flags.add(name);
      continue;
    }
    if (!['--cases', '--duration', '--topology', '--seed', '--out', '--settle'].includes(name)) throw new Error(`unknown argument "${argv[i]}"\n${USAGE}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${name}: a value is missing\n${USAGE}`);
    values.set(name, value);
  }
  const short = flags.has('--short');
  const base = short ? SHORT : FULL;
  const int = (name: string, fallback: number, min: number) => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min) throw new Error(`${name}: expected a whole number of at least ${min}, got "${raw}"`);
    return Number(raw);
  };
  const duration = (name: string, fallback: number, min: number) => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const ms = parseDuration(raw);
    if (ms === undefined || ms < min) throw new Error(`${name}: expected a duration of at least ${min / 1000}s such as 90s or 10m, got "${raw}"`);
    return ms;
  };
  return {
    topology: parseTopologyKind(values.get('--topology') ?? 'dev'),
    cases: int('--cases', base.cases, 20),
    durationMs: duration('--duration', base.durationMs, 60_000),
    seed: int('--seed', defaultSeed, 0),
    short,
    outDir: path.resolve(values.get('--out') ?? path.join(repoRoot(), 'chaos', 'reports')),
    settleMaxMs: duration('--settle', base.settleMaxMs, 60_000),
    keepData: flags.has('--keep'),
  };
}

/** The pace of a run: statuses, re-checks, GKB batches and polls in seconds; small files, so a batch has several packages. */
export function chaosEnv(): Record<string, string> {
  return {
    K2_API_AUTH: 'none',
    K2_PAYLOAD_KEYS: formatPayloadKeys([newPayloadKey('chaos')]),
    EKO_SIM_STATUS_DELAY: '2s',
    CASE_SCAN_RECHECK: '10s',
    GKB_BATCH_INTERVAL: '15s',
    GKB_POLL_INITIAL: '2s',
    GKB_POLL_MAX: '10s',
    GKB_SIM_STEP: '1s',
    GKB_SIM_PROCESSING: '3s',
    GKB_MAX_RECORDS_PER_FILE: '40',
    GKB_BATCH_MIN_RECORDS: '40',
    K2_OUTBOX_LEASE: '10s',
    // A GKB upload answered too late (uploadTimeout) is given up after 15 s and looked up (the sandbox answers 5 s after that).
    GKB_TIMEOUT_MS: '15000',
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Runs tasks of one target (a process) one after the other: a worker is never killed while it is being started. */
function serialQueues() {
  const tails = new Map<string, Promise<void>>();
  return (key: string, task: () => Promise<void>): Promise<void> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(task);
    tails.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  };
}

/** The first line of an error, for the report (a failed start quotes the end of the process's log). */
const firstLine = (err: unknown) =>
  String((err as Error)?.message ?? err)
    .split('\n')[0]
    .slice(0, 300);

/**
 * Starts a killed process again the way an orchestrator's restart policy does (compose:
 * `restart: unless-stopped`): a worker started while Temporal or PostgreSQL is down exits at once,
 * and is started again after a pause. Resolves with the attempts it took.
 */
export async function startAgain(start: () => Promise<void>, name: string, log: (s: string) => void, attempts = 10): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      return attempt;
    } catch (err) {
      if (attempt >= attempts) throw err;
      const pause = Math.min(10_000, 2_000 * attempt);
      log(`${name} did not start (attempt ${attempt}: ${firstLine(err)}); again in ${pause / 1000} s`);
      await sleep(pause);
    }
  }
}

async function simulatorFaults(url: string, knobs?: Record<string, number>): Promise<void> {
  const res = await fetch(
    `${url}/_sim/faults`,
    knobs ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(knobs) } : { method: 'DELETE' },
  );
  if (!res.ok) throw new Error(`${url}/_sim/faults: HTTP ${res.status} ${await res.text()}`);
}

/** Plays the timeline's process and knob faults (the API kill is the load's: it needs the POST in flight). */
async function playFaults(
  timeline: ChaosTimeline,
  topology: RunningTopology,
  startedAt: number,
  queue: ReturnType<typeof serialQueues>,
  executed: ExecutedEvent[],
  log: (s: string) => void,
): Promise<void> {
  const since = () => Date.now() - startedAt;
  const running: Promise<void>[] = [];
  const notes = new Map<ChaosEvent, string>();
  const act = (e: ChaosEvent): [string, () => Promise<void>] => {
    switch (e.kind) {
      case 'kill-worker':
        return [
          e.target,
          async () => {
            await topology.kill(e.target, 'SIGKILL');
            await sleep(e.downMs);
            const attempts = await startAgain(() => topology.start(e.target), e.target, log);
            if (attempts > 1) notes.set(e, `started on attempt ${attempts}`);
          },
        ];
      case 'restart-temporal':
        return ['temporal', () => topology.restartTemporal()];
      case 'restart-postgres':
        return ['postgres', () => (topology.restartPostgres ? topology.restartPostgres() : Promise.reject(new Error('this topology has no PostgreSQL')))];
      case 'set-faults':
        return [`sim-${e.system}`, () => simulatorFaults(topology.simUrls[e.system], e.knobs)];
      case 'clear-faults':
        return [`sim-${e.system}`, () => simulatorFaults(topology.simUrls[e.system])];
      case 'kill-api-mid-post':
        return ['', async () => undefined];
    }
  };
  for (const e of timeline.events) {
    if (e.kind === 'kill-api-mid-post') continue;
    await sleep(startedAt + e.at - Date.now());
    const [key, task] = act(e);
    const entry: ExecutedEvent = { plannedAt: e.at, startedAt: since(), endedAt: since(), kind: e.kind, description: describeEvent(e) };
    executed.push(entry);
    log(`fault at ${(entry.startedAt / 1000).toFixed(1)} s: ${entry.description}`);
    running.push(
      queue(key, task).then(
        () => {
          entry.endedAt = since();
          if (notes.has(e)) entry.description += ` (${notes.get(e)})`;
        },
        (err: Error) => {
          entry.endedAt = since();
          entry.error = firstLine(err);
          log(`fault failed: ${entry.description}: ${err.message}`);
        },
      ),
    );
  }
  await Promise.all(running);
}

/** After the faults: every knob cleared and every worker and API replica running. */
async function restoreAll(topology: RunningTopology, log: (s: string) => void): Promise<void> {
  for (const url of Object.values(topology.simUrls)) await simulatorFaults(url).catch((err: Error) => log(`clearing faults at ${url}: ${err.message}`));
  const running = topology.pids();
  for (const name of [...topology.workers, ...topology.apis]) {
    if (running[name] === undefined) {
      log(`${name} is not running after the faults: starting it`);
      await startAgain(() => topology.start(name), name, log);
    }
  }
}

export interface ChaosResult {
  report: ChaosReport;
  files: { json: string; md: string };
  violations: Violation[];
}

export async function runChaos(
  opts: ChaosOptions,
  log: (line: string) => void = (l) => process.stderr.write(`chaos: ${l}\n`),
  /** Given the topology once it runs (main stops it on SIGINT/SIGTERM). */
  onTopology?: (topology: RunningTopology) => void,
): Promise<ChaosResult> {
  const unavailable = topologyUnavailable(opts.topology);
  if (unavailable) throw new Error(`the ${opts.topology} topology cannot run here: ${unavailable}`);
  const runStart = Date.now();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `k2-chaos-${opts.topology}-`));
  log(`starting the ${opts.topology} topology in ${dataDir}`);
  const topology = await startTopology(opts.topology, { dataDir, env: chaosEnv() });
  onTopology?.(topology);
  let sources: Sources | undefined;
  let keep = opts.keepData;
  try {
    const startupMs = Date.now() - runStart;
    const timeline = planTimeline({
      seed: opts.seed,
      durationMs: opts.durationMs,
      workers: topology.workers,
      apis: topology.apis,
      postgres: Boolean(topology.restartPostgres),
      short: opts.short,
    });
    const missing = missingFaultKinds(timeline, { workers: topology.workers, postgres: Boolean(topology.restartPostgres) });
    if (missing.length > 0) throw new Error(`the timeline misses: ${missing.join(', ')}`);
    const apiKill = timeline.events.find((e): e is Extract<ChaosEvent, { kind: 'kill-api-mid-post' }> => e.kind === 'kill-api-mid-post');
    const plan = planLoad({ seed: opts.seed, cases: opts.cases, durationMs: opts.durationMs, apiKill });
    log(`seed ${opts.seed}: ${plan.steps.length} POSTs of ${opts.cases} loans; the timeline:\n${timelineLines(timeline).join('\n')}`);

    const startedAt = Date.now();
    const since = () => Date.now() - startedAt;
    const queue = serialQueues();
    const executed: ExecutedEvent[] = [];
    const replicaUrl = (name: string) => topology.metricsUrls.api[topology.apis.indexOf(name)].replace(/\/metrics$/, '');
    const loadRun: Promise<LoadRecord> = runLoad(
      plan,
      {
        apiUrl: topology.apiUrl,
        absUrl: topology.simUrls.abs,
        replicaUrl,
        killApi: (name) => queue(name, () => topology.kill(name, 'SIGKILL')),
        startApi: (name) => queue(name, async () => void (await startAgain(() => topology.start(name), name, log))),
      },
      { startedAt, deadline: startedAt + opts.durationMs + opts.settleMaxMs, log },
    );
    const [load] = await Promise.all([loadRun, playFaults(timeline, topology, startedAt, queue, executed, log)]);
    for (const r of load.requests.filter((q) => q.interrupted)) {
      const i = r.interrupted!;
      executed.push({
        plannedAt: apiKill?.at ?? i.at,
        startedAt: i.at,
        endedAt: i.restartedAt ?? i.at,
        kind: 'kill-api-mid-post',
        description: `${describeEvent(apiKill!)}: ${r.items} loans, ${i.outcome}`,
      });
    }
    executed.sort((a, b) => a.startedAt - b.startedAt);
    await sleep(startedAt + timeline.faultsEndMs - Date.now());
    await restoreAll(topology, log);
    log(`faults over at ${(since() / 1000).toFixed(1)} s; waiting for the system to settle (at most ${opts.settleMaxMs / 1000} s)`);

    sources = await openSources(topology);
    const settle = await waitUntilSettled(sources, { maxMs: opts.settleMaxMs, log });
    log(
      settle.settled
        ? `settled after ${(settle.tookMs / 1000).toFixed(1)} s`
        : `not settled within ${opts.settleMaxMs / 1000} s: ${JSON.stringify(settle.last ?? settle.lastError)}`,
    );
    const facts = await collectFacts(sources, plan, load);
    const violations = checkFacts(facts);
    if (!settle.settled)
      violations.push({
        rule: 'waiting-without-reason',
        detail: `the system did not settle within ${opts.settleMaxMs / 1000} s: ${JSON.stringify(settle.last ?? settle.lastError)}`,
      });

    const base = reportBaseName(opts.topology, opts.seed, new Date(runStart));
    let histories: string[] | undefined;
    // Histories of an earlier run under the same name would be taken for this one's.
    fs.rmSync(path.join(opts.outDir, `${base}.histories`), { recursive: true, force: true });
    if (violations.length > 0) {
      keep = true;
      histories = await exportHistories(
        sources.client,
        violations
          .map((v) => v.workflowId)
          .filter((id): id is string => Boolean(id))
          .slice(0, 50),
        path.join(opts.outDir, `${base}.histories`),
      );
    }
    const report: ChaosReport = {
      topology: opts.topology,
      seed: opts.seed,
      options: { cases: opts.cases, durationMs: opts.durationMs, short: opts.short, settleMaxMs: opts.settleMaxMs },
      startedAt: new Date(runStart).toISOString(),
      finishedAt: new Date().toISOString(),
      startupMs,
      runMs: Date.now() - runStart,
      timeline,
      executed,
      settle,
      counts: countFacts(facts),
      violations,
      passed: violations.length === 0,
      ...(keep ? { dataDir } : {}),
      ...(histories ? { histories: histories.map((h) => path.relative(opts.outDir, h)) } : {}),
    };
    const files = writeReport(opts.outDir, base, report);
    log(`report: ${files.md}`);
    return { report, files, violations };
  } finally {
    await sources?.close().catch(() => undefined);
    await topology.stop();
    if (!keep) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let opts: ChaosOptions;
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n(README "Chaos suite": what the run does, its options, where the reports go)\n`);
    return;
  }
  try {
    opts = parseArgs(args);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  let running: RunningTopology | undefined;
  // Interrupted: every process of the topology stops too (the data folder stays, for a look).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`chaos: ${signal}: stopping the topology\n`);
      void (running?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
    });
  }
  try {
    const { violations, files } = await runChaos(opts, undefined, (t) => (running = t));
    if (violations.length === 0) {
      process.stdout.write(`chaos: passed (${opts.topology}, seed ${opts.seed}); report ${files.md}\n`);
      return;
    }
    process.stderr.write(`chaos: ${violations.length} violation(s) (${opts.topology}, seed ${opts.seed}); report ${files.md}\n`);
    for (const v of violations) process.stderr.write(`  ${v.rule} ${v.workflowId ?? ''}${v.contract ? ` (contract ${v.contract})` : ''}: ${v.detail}\n`);
    process.exitCode = 1;
  } catch (err) {
    process.stderr.write(`chaos: the run could not be made: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 2;
  }
}

if (require.main === module) void main();

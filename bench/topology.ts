/**
 * Benchmark: K2 on each topology (scripts/topology.ts: `dev`, the Temporal dev server on SQLite with
 * one worker and one API; `cluster`, the Temporal server on PostgreSQL with two workers and two API
 * replicas behind nginx), in one run. Writes bench/reports/topology.json; bench/README.md
 * ("topology") says what each number means.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/run-all.js --only=topology
 *
 * On each topology, started fresh (temp data dir, free ports, EKO's statuses an hour away so the
 * cases wait at their demand, no GKB batch during the run):
 *   1. the bare floor: FLOOR_CASES workflows of bench/floor-workflow.ts (a happy-path case's shape,
 *      doing nothing), started by signalWithStart at the dispatchers' concurrency and executed by as
 *      many bench/floor-worker.ts processes as the topology has K2 workers; rate = workflows / (first
 *      call → all at their stage in visibility);
 *   2. happy-path cases: as many loans POSTed in POSTs of POST_SIZE; rate = cases / (first POST →
 *      all at "demand issued and GKB record queued" in visibility); ratio to the floor;
 *   3. more loans until OPEN_CASES cases are open and waiting for statuses; the workers' VmRSS and
 *      VmHWM once they have settled, against their baseline before any case;
 *   4. history events and bytes of a sample of the cases of step 2;
 *   5. cluster only: the burst hold and backlog narrowing on and off (K2 processes started by this
 *      benchmark with either setting in place of the topology's own): a 10,000-loan POST's case
 *      start rate against the floor's, and the closed-loop single-item POST p99.
 * CPU seconds of every process (PostgreSQL's backends and nginx's workers under their parent) are
 * taken from /proc around each measured run, with `not-ours` (the machine's CPU outside them).
 * A missed goal is recorded, never thrown: only a crash of the benchmark itself rejects.
 */
import fs from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { CONFIG_KEYS, loadConfig } from '../config';
import { generateLoans } from '../domain/generate';
import type { EkoLoanItem, Loan } from '../domain/loan';
import { repoRoot, freePort } from '../scripts/system';
import { startTopology, topologyUnavailable, TOPOLOGY_KINDS, type RunningTopology, type TopologyKind } from '../scripts/topology';
import { openConnection, temporalClient } from '../temporal/connection';
import { formatPayloadKeys, newPayloadKey } from '../temporal/keys';
import { loanUpdatedSignal } from '../workflows/definitions';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { benchFloor } from './floor-workflow';
import { WORKER_NODE_ARGS } from '../worker/heap';
import {
  buildLoadgen,
  cpuDelta,
  cpuSeconds,
  createPoster,
  disjointLoanSets,
  errorCodeOf,
  foldChildren,
  loansOf,
  machineInfo,
  memoryOf,
  pool,
  procsOf,
  readMetrics,
  round,
  runSinglesLoadgen,
  runSinglesNode,
  sleep,
  startBenchProcess,
  stopChild,
  waitQuiet,
  withDescendants,
  type LoanSet,
  type Machine,
  type Memory,
  type Poster,
  type ProcInfo,
  type SingleRun,
} from './measure';

export interface Goal {
  measure: string;
  value: number | string;
  unit: string;
  goal: string;
  met: boolean | null;
}

/** One measured rate: workflows (floor) or cases (K2) from the first call to all at their stage. */
export interface RateRun {
  what: string;
  workflows: number;
  /** Calls in flight: the floor client's, or the dispatchers' (K2_DISPATCH_CONCURRENCY × API replicas). */
  concurrency: number;
  /** K2: the POSTs the loans came in. */
  posts?: { count: number; size: number };
  /** First call → the last call answered (K2: the last POST; floor: the last signalWithStart). */
  sentMs: number;
  /** First call → every one at its stage (visibility). */
  ms: number;
  perSecond: number;
  /** workflows / sentMs: the floor's start rate (compared with K2's case start rate in step 5). */
  sentPerSecond: number;
  reached: number;
  progress: { ms: number; reached: number }[];
  /** K2 only: how long at least one worker was narrowed by the outbox backlog (k2_worker_narrowed, sampled every second). */
  narrowedMs?: number;
  cpuSeconds: Record<string, number>;
}

export interface WorkerMemory {
  name: string;
  /** Right after the topology started, before any case. */
  baseline: Memory | string;
  /** With `openCases` open and the worker settled. */
  open: Memory | string;
  /** VmRSS growth, MiB. */
  growthMiB: number | null;
}

export interface MemoryRun {
  openCases: number;
  /** caseWorkflow executions Running in visibility at the reading. */
  countedOpen: number | null;
  maxCachedWorkflows: number;
  settled: boolean;
  workers: WorkerMemory[];
  /** During the fill, every MEMORY_SAMPLE_MS: cases at their stage and each worker's VmRSS (MiB). */
  fill: { ms: number; atStage: number; rssMiB: Record<string, number | null> }[];
}

export interface HistoryRun {
  sampled: number;
  /** Bytes of the history as Temporal's protobuf (temporal.api.history.v1.History, payloads encrypted) and as its JSON (historyToJSON). */
  encoding: string;
  events: { min: number; max: number; mean: number };
  protobufBytes: { min: number; max: number; mean: number };
  jsonBytes: { min: number; max: number; mean: number };
  /** Event types of the first sampled case (MARKER_RECORDED carries the local activities and the patches). */
  eventTypes: Record<string, number>;
  floor: { events: number; protobufBytes: number; eventTypes: Record<string, number> } | null;
}

export interface IntakeBatchRun {
  narrowing: 'on' | 'off';
  settings: Record<string, string>;
  items: number;
  acceptMs: number;
  errorCode: number;
  /** POST sent → every item handed to Temporal (dispatched counters grown by `items`, nothing pending). */
  allRunningMs: number;
  caseStartsPerSecond: number;
  floorSentPerSecond: number;
  ratioToFloorStart: number;
  /** POST sent → every case at its stage (executed): what the narrowing costs afterwards. */
  allAtStageMs: number;
  atStagePerSecond: number;
  /** How long at least one worker was narrowed (k2_worker_narrowed, sampled every second). */
  narrowedMs: number;
  progress: { ms: number; dispatched: number; atStage: number }[];
  cpuSeconds: Record<string, number>;
}

export interface IntakeSingleRun {
  hold: 'on' | 'off';
  settings: Record<string, string>;
  run: SingleRun;
  /** k2_outbox_dispatch_held_seconds_total grown during the run (both replicas). */
  heldSeconds: number;
}

export interface IntakeRuns {
  floor: RateRun;
  batches: IntakeBatchRun[];
  singles: IntakeSingleRun[];
}

export interface TopologyRun {
  kind: TopologyKind;
  startMs: number;
  /** Wall time of each phase, seconds (waits for a quiet system included). */
  phasesS: Record<string, number>;
  workers: string[];
  apis: string[];
  floor: RateRun;
  k2: RateRun;
  /** K2 rate ÷ floor rate. */
  ratio: number;
  memory: MemoryRun;
  history: HistoryRun;
  intake?: IntakeRuns;
  notes: string[];
}

export interface TopologyReport {
  generatedAt: string;
  machine: Machine;
  settings: Record<string, string | number>;
  runs: TopologyRun[];
  /** Topologies that could not run here, and why. */
  skipped: { kind: TopologyKind; why: string }[];
  goals: Goal[];
  notes: string[];
}

export interface TopologyBenchOptions {
  topologies?: TopologyKind[];
  /** Happy-path cases measured (and floor workflows), per topology. */
  cases?: number;
  /** Loans per POST in the happy-path run and the fill. */
  postSize?: number;
  /** Cases open when the worker memory is read. */
  openCases?: number;
  historySample?: number;
  /** The cluster's intake runs: the batch POSTed with the narrowing on and off (0: skip the intake runs). */
  intakeBatch?: number;
  /** The cluster's intake runs: closed-loop single-item POSTs with the hold on and off. */
  intakeSingles?: number;
  /** K2_WORKER_MAX_CACHED_WORKFLOWS of the workers (default: the topology's). */
  maxCachedWorkflows?: number;
  keepDataDir?: boolean;
  /** Where the report is written (default bench/reports/topology.json): experiments keep the issue's report. */
  reportPath?: string;
  log?: (msg: string) => void;
}

/** Where a happy-path case is once its demand is issued and its GKB record queued (a legal entity, with nothing to report, is at reported-to-gkb). */
const CASE_AT_STAGE = 'WorkflowType="caseWorkflow" AND K2Stage IN ("demand-issued","reported-to-gkb")';
const FLOOR_AT_STAGE = 'WorkflowType="benchFloor" AND K2Stage="demand-issued"';
const OPEN_CASES = 'WorkflowType="caseWorkflow" AND ExecutionStatus="Running"';
const FLOOR_QUEUE = 'bench-floor';
/** Warm-up before each measured rate (not counted): connections, V8's optimisation, Temporal's caches. */
const WARMUP = 200;
const POLL_MS = 250;
const SINGLE_CLIENTS = 50;
const SINGLE_WARMUP = 1000;
const WARMUP_REAL_CASES = 300;
/** The settings the intake runs compare (the embedded defaults, config/index.ts, for "on"). */
const NARROWING = {
  on: { K2_WORKER_NARROW_BACKLOG: CONFIG_KEYS.K2_WORKER_NARROW_BACKLOG.default, K2_WORKER_NARROW_SLOTS: CONFIG_KEYS.K2_WORKER_NARROW_SLOTS.default },
  off: { K2_WORKER_NARROW_BACKLOG: '0' },
};
const HOLD = {
  on: { K2_DISPATCH_HOLD_RATE: CONFIG_KEYS.K2_DISPATCH_HOLD_RATE.default, K2_DISPATCH_HOLD_MAX: CONFIG_KEYS.K2_DISPATCH_HOLD_MAX.default },
  off: { K2_DISPATCH_HOLD_RATE: '0' },
};
/** The most cores each process may use for the system to count as quiet (idle Temporal servers keep some CPU busy; the cluster's more). */
const QUIET_LIMITS: Record<TopologyKind, Record<string, number>> = {
  dev: { temporal: 0.3, worker: 0.15 },
  cluster: { 'temporal-server': 0.5, postgres: 0.4, 'worker-1': 0.15, 'worker-2': 0.15 },
};
const QUIET_FOR_MS = 8_000;
const QUIET_WAIT_MS = 4 * 60_000;
/** How long a run may take to bring `n` cases or workflows to their stage before it is reported as incomplete (at least 5 a second). */
const reachDeadlineMs = (n: number) => Math.max(10 * 60_000, n * 200);

const envInt = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);

/** What a measured run needs: the topology, a client with K2's codec, the POST client, the processes to read. */
interface Ctx {
  topology: RunningTopology;
  client: Client;
  poster: Poster;
  log: (msg: string) => void;
  /** Processes started by this benchmark (floor workers, K2 processes with other settings), by name. */
  extra: Map<string, ChildProcess>;
  dispatchConcurrency: number;
  dataDir: string;
}

const procsOfCtx = (ctx: Ctx): ProcInfo[] =>
  withDescendants(
    procsOf({
      ...ctx.topology.pids(),
      ...Object.fromEntries([...ctx.extra].filter(([, c]) => c.exitCode === null && c.signalCode === null).map(([n, c]) => [n, c.pid!])),
    }),
    ['postgres', 'nginx'],
  );
const cpuNow = (ctx: Ctx) => cpuSeconds(procsOfCtx(ctx));
const cpuSince = (ctx: Ctx, a: Record<string, number>, wallMs: number) => foldChildren(cpuDelta(a, cpuNow(ctx), wallMs));
const count = async (client: Client, query: string) => (await client.workflow.count(query)).count;
const apiMetrics = (ctx: Ctx) => ctx.topology.metricsUrls.api;

/** Samples the workers' k2_worker_narrowed every second until stopped; returns how long any worker was narrowed. */
function narrowedSampler(ctx: Ctx): () => Promise<number> {
  let running = true;
  let narrowedMs = 0;
  const sampling = (async () => {
    while (running) {
      const m = await readMetrics(ctx.topology.metricsUrls.worker, ['k2_worker_narrowed']).catch(() => undefined);
      if (m && m.k2_worker_narrowed > 0) narrowedMs += 1000;
      await sleep(1000);
    }
  })();
  return async () => {
    running = false;
    await sampling;
    return narrowedMs;
  };
}

/** Waits for a quiet system (bench/measure.ts waitQuiet); a note says when it gave up. */
async function quiet(ctx: Ctx, label: string, notes: string[]): Promise<boolean> {
  const ok = await waitQuiet({
    apiMetricsUrls: apiMetrics(ctx),
    procs: () => procsOfCtx(ctx),
    limits: QUIET_LIMITS[ctx.topology.kind],
    quietForMs: QUIET_FOR_MS,
    timeoutMs: QUIET_WAIT_MS,
    log: ctx.log,
  });
  if (!ok) notes.push(`${label} started before the system was quiet (${QUIET_WAIT_MS / 60_000} min wait exceeded).`);
  return ok;
}

/** Polls a visibility count until it has grown by `n` from `before` (or the deadline); returns when, and the progress. */
async function untilCounted(
  client: Client,
  query: string,
  before: number,
  n: number,
  t0: number,
): Promise<{ ms: number; reached: number; progress: { ms: number; reached: number }[] }> {
  const target = before + n;
  const progress: { ms: number; reached: number }[] = [];
  let lastProgress = -Infinity;
  const deadline = t0 + reachDeadlineMs(n);
  for (;;) {
    const reached = await count(client, query).catch(() => -1);
    const now = performance.now();
    if (now - lastProgress >= 1000) {
      progress.push({ ms: Math.round(now - t0), reached });
      lastProgress = now;
    }
    if (reached >= target) return { ms: now - t0, reached, progress };
    if (now > deadline) return { ms: NaN, reached, progress };
    await sleep(POLL_MS);
  }
}

// --- the floor --------------------------------------------------------------------------------------

/** The floor's workers: one per K2 worker, in K2's worker's shape (bench/floor-worker.ts). */
async function startFloorWorkers(ctx: Ctx): Promise<void> {
  for (const [i] of ctx.topology.workers.entries()) {
    const name = `floor-worker-${i + 1}`;
    // With the K2 worker's heap bound too (like for like).
    ctx.extra.set(name, await startBenchProcess('floor-worker.js', [FLOOR_QUEUE, `127.0.0.1:${await freePort()}`], ctx.topology.env, WORKER_NODE_ARGS));
  }
}

async function stopFloorWorkers(ctx: Ctx): Promise<void> {
  for (const [name, child] of [...ctx.extra].filter(([n]) => n.startsWith('floor-worker-'))) {
    await stopChild(child);
    ctx.extra.delete(name);
  }
}

/** `loans.length` floor workflows, started as the dispatcher starts cases (signalWithStart, the same start input and signal). */
async function floorRate(ctx: Ctx, loans: EkoLoanItem[], tag: string, concurrency: number): Promise<RateRun> {
  const before = await count(ctx.client, FLOOR_AT_STAGE);
  const cpu0 = cpuNow(ctx);
  const t0 = performance.now();
  let sentMs = NaN;
  const sending = pool(loans.length, concurrency, async (i) => {
    const loan: Loan = { ...loans[i], debt: String(loans[i].debt) };
    const meta = { acceptedSeq: i + 1 };
    await ctx.client.workflow.signalWithStart(benchFloor, {
      taskQueue: FLOOR_QUEUE,
      workflowId: `bench-floor-${tag}-${i}`,
      args: [{ loan, meta }],
      signal: loanUpdatedSignal,
      signalArgs: [loan, meta],
      staticSummary: `Overdue loan ${loan.contract_number} (${loan.system})`,
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
        { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
      ],
    });
  }).then(() => (sentMs = performance.now() - t0));
  const done = await untilCounted(ctx.client, FLOOR_AT_STAGE, before, loans.length, t0);
  await sending;
  return rateRun(ctx, { what: 'bare floor (bench/floor-workflow.ts)', workflows: loans.length, concurrency, sentMs, done, before, cpu0 });
}

function rateRun(
  ctx: Ctx,
  r: {
    what: string;
    workflows: number;
    concurrency: number;
    sentMs: number;
    done: Awaited<ReturnType<typeof untilCounted>>;
    before: number;
    cpu0: Record<string, number>;
    posts?: RateRun['posts'];
  },
): RateRun {
  const ms = r.done.ms;
  return {
    what: r.what,
    workflows: r.workflows,
    concurrency: r.concurrency,
    ...(r.posts ? { posts: r.posts } : {}),
    sentMs: round(r.sentMs),
    ms: round(ms),
    perSecond: round(r.workflows / (ms / 1000)),
    sentPerSecond: round(r.workflows / (r.sentMs / 1000)),
    reached: r.done.reached - r.before,
    progress: r.done.progress.map((p) => ({ ms: p.ms, reached: p.reached - r.before })),
    cpuSeconds: cpuSince(ctx, r.cpu0, Number.isFinite(ms) ? ms : r.sentMs),
  };
}

// --- K2 -----------------------------------------------------------------------------------------------

async function postLoans(ctx: Ctx, loans: EkoLoanItem[], postSize: number): Promise<void> {
  const url = `${ctx.topology.apiUrl}/restapi/services/k2loan_from_eko`;
  for (let i = 0; i < loans.length; i += postSize) {
    const res = await ctx.poster.post(url, JSON.stringify(loans.slice(i, i + postSize)));
    if (res.status !== 200 || errorCodeOf(res.text) !== 0)
      throw new Error(`K2 refused a POST of ${Math.min(postSize, loans.length - i)} loans: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  }
}

/** The loans POSTed in POSTs of `postSize`, one after the other (as EKO's job sends them); rate = cases / (first POST → all at their stage). */
async function k2Rate(ctx: Ctx, loans: EkoLoanItem[], postSize: number): Promise<RateRun> {
  const before = await count(ctx.client, CASE_AT_STAGE);
  const cpu0 = cpuNow(ctx);
  const narrowed = narrowedSampler(ctx);
  const t0 = performance.now();
  let sentMs = NaN;
  const sending = postLoans(ctx, loans, postSize).then(() => (sentMs = performance.now() - t0));
  const done = await untilCounted(ctx.client, CASE_AT_STAGE, before, loans.length, t0);
  await sending;
  const concurrency = ctx.dispatchConcurrency * ctx.topology.apis.length;
  const run = rateRun(ctx, {
    what: 'K2 happy-path cases',
    workflows: loans.length,
    concurrency,
    sentMs,
    done,
    before,
    cpu0,
    posts: { count: Math.ceil(loans.length / postSize), size: postSize },
  });
  return { ...run, narrowedMs: await narrowed() };
}

// --- memory and history ----------------------------------------------------------------------------

function workerMemory(ctx: Ctx): Record<string, Memory | string> {
  const pids = ctx.topology.pids();
  return Object.fromEntries(ctx.topology.workers.map((w) => [w, pids[w] ? memoryOf(pids[w]) : 'not running']));
}

const MEMORY_SAMPLE_MS = 15_000;

/** Samples the workers' VmRSS against the cases at their stage until stopped: whether memory follows the cache or the cases. */
function memorySampler(ctx: Ctx): { stop: () => MemoryRun['fill'] } {
  const samples: MemoryRun['fill'] = [];
  const t0 = performance.now();
  const take = async () => {
    const atStage = await count(ctx.client, CASE_AT_STAGE).catch(() => -1);
    const memory = workerMemory(ctx);
    samples.push({
      ms: Math.round(performance.now() - t0),
      atStage,
      rssMiB: Object.fromEntries(Object.entries(memory).map(([w, m]) => [w, typeof m === 'object' ? m.rssMiB : null])),
    });
  };
  void take();
  const timer = setInterval(() => void take(), MEMORY_SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}

const spread = (xs: number[]) => ({ min: Math.min(...xs), max: Math.max(...xs), mean: round(xs.reduce((a, b) => a + b, 0) / (xs.length || 1)) });

function eventTypes(history: temporal.api.history.v1.IHistory): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of history.events ?? []) {
    const name = (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');
    const marker = e.markerRecordedEventAttributes?.markerName;
    const key = marker ? `${name} (${marker})` : name;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const protobufBytes = (h: temporal.api.history.v1.IHistory) => temporal.api.history.v1.History.encode(h).finish().length;

async function historyOf(ctx: Ctx, sample: number): Promise<HistoryRun> {
  const histories: temporal.api.history.v1.IHistory[] = [];
  for await (const wf of ctx.client.workflow.list({ query: 'WorkflowType="caseWorkflow" AND K2Stage="demand-issued"', pageSize: sample })) {
    histories.push(await ctx.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory());
    if (histories.length >= sample) break;
  }
  let floor: HistoryRun['floor'] = null;
  for await (const wf of ctx.client.workflow.list({ query: FLOOR_AT_STAGE, pageSize: 1 })) {
    const h = await ctx.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    floor = { events: h.events?.length ?? 0, protobufBytes: protobufBytes(h), eventTypes: eventTypes(h) };
    break;
  }
  return {
    sampled: histories.length,
    encoding: "protobuf: temporal.api.history.v1.History as fetchHistory returns it (payloads encrypted by K2's codec); JSON: historyToJSON of the same",
    events: spread(histories.map((h) => h.events?.length ?? 0)),
    protobufBytes: spread(histories.map(protobufBytes)),
    jsonBytes: spread(histories.map((h) => Buffer.byteLength(historyToJSON(h)))),
    eventTypes: histories[0] ? eventTypes(histories[0]) : {},
    floor,
  };
}

// --- K2 processes with other settings (the intake runs) -----------------------------------------

const hostPort = (url: string) => new URL(url).host;

/** Starts `node dist/<script>` with the topology's environment and `env` over it, its output in <dataDir>/logs/<name>.log; resolves when `ready` says so. */
async function startK2Process(
  ctx: Ctx,
  name: string,
  script: string,
  env: Record<string, string>,
  ready: (output: string) => boolean | Promise<boolean>,
  nodeArgs: readonly string[] = [],
): Promise<ChildProcess> {
  const log = fs.createWriteStream(path.join(ctx.topology.dataDir, 'logs', `${name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, [...nodeArgs, path.join(repoRoot(), 'dist', script)], {
    cwd: repoRoot(),
    env: { ...process.env, ...ctx.topology.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (c: Buffer) => {
    log.write(c);
    if (output.length < 1_000_000) output += c.toString('utf8');
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.once('exit', () => log.end());
  ctx.extra.set(name, child);
  const deadline = Date.now() + 120_000;
  while (!(await Promise.resolve(ready(output)).catch(() => false))) {
    if (child.exitCode !== null) throw new Error(`${name} (${script}) exited with code ${child.exitCode} before it was ready: ${output.slice(-1000)}`);
    if (Date.now() > deadline) throw new Error(`${name} (${script}) not ready after 120 s`);
    await sleep(250);
  }
  return child;
}

async function stopExtra(ctx: Ctx, names: string[]): Promise<void> {
  for (const name of names) {
    const child = ctx.extra.get(name);
    if (child) await stopChild(child);
    ctx.extra.delete(name);
  }
}

/** Replaces the topology's workers (or the benchmark's earlier ones) by workers with `env`, on the same metrics ports. */
async function swapWorkers(ctx: Ctx, env: Record<string, string>): Promise<void> {
  const { workers, metricsUrls } = ctx.topology;
  for (const name of workers) await ctx.topology.kill(name, 'SIGINT');
  await stopExtra(ctx, workers);
  for (const [i, name] of workers.entries()) {
    await startK2Process(
      ctx,
      name,
      'worker/main.js',
      { ...env, K2_WORKER_METRICS: hostPort(metricsUrls.worker[i]), K2_WORKER_HEALTH: `127.0.0.1:${await freePort()}` },
      (out) => out.includes('"worker ready"'),
      WORKER_NODE_ARGS,
    );
  }
}

/** Replaces the API replicas by replicas with `env` on the same ports (nginx keeps routing to them). */
async function swapApis(ctx: Ctx, env: Record<string, string>): Promise<void> {
  const { apis, metricsUrls } = ctx.topology;
  for (const name of apis) await ctx.topology.kill(name, 'SIGINT');
  await stopExtra(ctx, apis);
  for (const [i, name] of apis.entries()) {
    const url = new URL(metricsUrls.api[i]);
    await startK2Process(
      ctx,
      name,
      'api/main.js',
      { ...env, K2_API_PORT: url.port },
      async () => (await fetch(`${url.origin}/health`, { signal: AbortSignal.timeout(2000) })).ok,
    );
  }
  // nginx keeps a replica that failed out of rotation for fail_timeout (5 s, cluster/nginx.conf).
  await sleep(6000);
}

async function restoreWorkers(ctx: Ctx): Promise<void> {
  await stopExtra(ctx, ctx.topology.workers);
  for (const name of ctx.topology.workers) await ctx.topology.start(name);
}

/** One POST of the batch; case start rate = items / (POST → all handed to Temporal), as api-ingest measures it. */
async function intakeBatch(ctx: Ctx, loans: EkoLoanItem[], narrowing: 'on' | 'off', floorSentPerSecond: number): Promise<IntakeBatchRun> {
  const names = ['k2_outbox_dispatched_total', 'k2_outbox_pending'];
  const m0 = await readMetrics(apiMetrics(ctx), names);
  const before = await count(ctx.client, CASE_AT_STAGE);
  const cpu0 = cpuNow(ctx);
  const narrowed = narrowedSampler(ctx);
  const t0 = performance.now();
  const res = await ctx.poster.post(`${ctx.topology.apiUrl}/restapi/services/k2loan_from_eko`, JSON.stringify(loans));
  const acceptMs = performance.now() - t0;
  const errorCode = errorCodeOf(res.text);
  const progress: IntakeBatchRun['progress'] = [];
  let allRunningMs = NaN;
  let allAtStageMs = NaN;
  let lastProgress = -Infinity;
  const deadline = t0 + reachDeadlineMs(loans.length);
  while (errorCode === 0 && performance.now() < deadline && Number.isNaN(allAtStageMs)) {
    const m = await readMetrics(apiMetrics(ctx), names).catch(() => undefined);
    const atStage = (await count(ctx.client, CASE_AT_STAGE).catch(() => before)) - before;
    const now = performance.now();
    const dispatched = m ? m.k2_outbox_dispatched_total - m0.k2_outbox_dispatched_total : -1;
    if (Number.isNaN(allRunningMs) && m && dispatched >= loans.length && m.k2_outbox_pending === 0) allRunningMs = now - t0;
    if (atStage >= loans.length) allAtStageMs = now - t0;
    if (now - lastProgress >= 1000) {
      progress.push({ ms: Math.round(now - t0), dispatched, atStage });
      lastProgress = now;
    }
    await sleep(POLL_MS);
  }
  const startRate = loans.length / (allRunningMs / 1000);
  return {
    narrowing,
    settings: NARROWING[narrowing],
    items: loans.length,
    acceptMs: round(acceptMs),
    errorCode,
    allRunningMs: round(allRunningMs),
    caseStartsPerSecond: round(startRate),
    floorSentPerSecond,
    ratioToFloorStart: round(startRate / floorSentPerSecond, 3),
    allAtStageMs: round(allAtStageMs),
    atStagePerSecond: round(loans.length / (allAtStageMs / 1000)),
    narrowedMs: await narrowed(),
    progress,
    cpuSeconds: cpuSince(ctx, cpu0, Number.isFinite(allAtStageMs) ? allAtStageMs : performance.now() - t0),
  };
}

async function intakeSingles(
  ctx: Ctx,
  hold: 'on' | 'off',
  warmup: EkoLoanItem[],
  loans: EkoLoanItem[],
  loadgenBin: string | undefined,
  notes: string[],
): Promise<IntakeSingleRun> {
  const target = { apiUrl: ctx.topology.apiUrl, procs: () => procsOfCtx(ctx) };
  const closedLoop = (label: string, l: EkoLoanItem[]) =>
    loadgenBin
      ? runSinglesLoadgen(target, label, l, SINGLE_CLIENTS, { bin: loadgenBin, workDir: ctx.dataDir, log: ctx.log })
      : runSinglesNode(target, ctx.poster, label, l, SINGLE_CLIENTS);
  // Warm-up (not counted): the fresh API processes' code paths and connections; mostly repaid loans, so few cases to execute after it.
  await closedLoop(
    'warm-up',
    warmup.map((l, i) => (i < WARMUP_REAL_CASES ? l : { ...l, debt: 0 })),
  );
  await quiet(ctx, `The single-item run (hold ${hold})`, notes);
  const held0 = (await readMetrics(apiMetrics(ctx), ['k2_outbox_dispatch_held_seconds_total'])).k2_outbox_dispatch_held_seconds_total;
  const run = await closedLoop(`hold ${hold}, quiet system`, loans);
  const held1 = (await readMetrics(apiMetrics(ctx), ['k2_outbox_dispatch_held_seconds_total'])).k2_outbox_dispatch_held_seconds_total;
  run.cpuSeconds = foldChildren(run.cpuSeconds);
  return { hold, settings: HOLD[hold], run, heldSeconds: round(held1 - held0, 2) };
}

// --- one topology -----------------------------------------------------------------------------------

interface Sizes {
  cases: number;
  postSize: number;
  openCases: number;
  historySample: number;
  intakeBatch: number;
  intakeSingles: number;
  /** K2_WORKER_MAX_CACHED_WORKFLOWS for the K2 workers and the floor's (undefined: the topology's own). */
  maxCachedWorkflows?: number;
}

/** The loan sets one topology needs, disjoint (each topology runs on its own fresh system, so both may use the same seeds). */
function loanSets(s: Sizes, kind: TopologyKind) {
  const fill = Math.max(0, s.openCases - WARMUP - s.cases);
  const intake = kind === 'cluster' && s.intakeBatch > 0;
  const warm = Math.min(SINGLE_WARMUP, s.intakeSingles);
  const sizes = [
    WARMUP,
    s.cases,
    WARMUP,
    s.cases,
    fill,
    ...(intake ? [s.cases, s.intakeBatch, s.intakeBatch, warm, s.intakeSingles, warm, s.intakeSingles] : []),
  ];
  const sets = disjointLoanSets(sizes, 20_261_201);
  const [floorWarmup, floor, k2Warmup, k2, fillSet, floor2, batchOn, batchOff, warmOn, singlesOn, warmOff, singlesOff] = sets;
  return {
    floorWarmup,
    floor,
    k2Warmup,
    k2,
    fill: fillSet,
    intake: intake ? { floor: floor2, batchOn, batchOff, warmOn, singlesOn, warmOff, singlesOff } : undefined,
  };
}

async function runTopology(
  kind: TopologyKind,
  s: Sizes,
  payloadKeys: string,
  loadgenBin: string | undefined,
  options: TopologyBenchOptions,
  log: (msg: string) => void,
): Promise<TopologyRun> {
  const notes: string[] = [];
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `k2-bench-topology-${kind}-`));
  const poster = createPoster();
  let topology: RunningTopology | undefined;
  let connection: Connection | undefined;
  const extra = new Map<string, ChildProcess>();
  // Stopped by a signal, the run would skip its `finally` and leave every process of the topology running.
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${kind}: ${signal}: stopping the topology before exiting`);
    for (const child of extra.values()) child.kill('SIGKILL');
    const keep = options.keepDataDir ?? process.env.K2_BENCH_KEEP === '1';
    void Promise.resolve(topology?.stop())
      .then(() => (keep ? undefined : rm(dataDir, { recursive: true, force: true })))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`${kind}: starting the topology in ${dataDir}`);
    const t = performance.now();
    topology = await startTopology(kind, {
      dataDir,
      env: {
        K2_PAYLOAD_KEYS: payloadKeys,
        K2_API_AUTH: 'none',
        // The closed-loop clients all come from one address: the API's load limits stay out of the measurement.
        K2_API_RATE_PER_CLIENT: '0',
        K2_API_MAX_CONCURRENT: '10000',
        // Cases wait at their demand (production: EKO's statuses come hours or days later), so none of them is inside a measured span.
        EKO_SIM_STATUS_DELAY: '1h',
        // No GKB batch during the run: it would build a file of every queued record in the middle of a measurement.
        GKB_BATCH_INTERVAL: '30d',
        GKB_BATCH_MIN_RECORDS: '50000',
        ...(s.maxCachedWorkflows ? { K2_WORKER_MAX_CACHED_WORKFLOWS: String(s.maxCachedWorkflows) } : {}),
      },
    });
    const startMs = round(performance.now() - t);
    const phases: Record<string, number> = {};
    let lastMark = performance.now();
    const mark = (phase: string) => {
      phases[phase] = Math.round((performance.now() - lastMark) / 1000);
      lastMark = performance.now();
    };
    log(`${kind}: up in ${startMs} ms`);
    const config = loadConfig({ ...process.env, ...topology.env });
    connection = await openConnection(config);
    const client = temporalClient(config, connection);
    const ctx: Ctx = { topology, client, poster, log, extra, dispatchConcurrency: config.api.dispatchConcurrency, dataDir };
    const baseline = workerMemory(ctx);
    const sets = loanSets(s, kind);
    const loans = (set: LoanSet) => loansOf(poster, topology!.simUrls.abs, set);
    const concurrency = config.api.dispatchConcurrency * topology.apis.length;

    // 1. the floor (K2's workers idle: no case yet)
    await startFloorWorkers(ctx);
    log(`${kind}: floor warm-up (${WARMUP})`);
    await floorRate(ctx, generateLoans(sets.floorWarmup.seed, sets.floorWarmup.size), 'warmup', concurrency);
    await quiet(ctx, 'The floor run', notes);
    log(`${kind}: floor, ${s.cases} workflows at concurrency ${concurrency}`);
    // The floor's loans are only its payloads (nothing asks ABS about them).
    const floor = await floorRate(ctx, generateLoans(sets.floor.seed, sets.floor.size), 'run', concurrency);
    log(`${kind}: floor ${floor.perSecond}/s (started ${floor.sentPerSecond}/s)`);
    await stopFloorWorkers(ctx);

    mark('floor');

    // 2. happy-path cases
    log(`${kind}: K2 warm-up (${WARMUP} cases)`);
    await k2Rate(ctx, await loans(sets.k2Warmup), s.postSize);
    const k2Loans = await loans(sets.k2);
    await quiet(ctx, 'The happy-path run', notes);
    log(`${kind}: K2, ${s.cases} cases in POSTs of ${s.postSize}`);
    const k2 = await k2Rate(ctx, k2Loans, s.postSize);
    const ratio = round(k2.perSecond / floor.perSecond, 3);
    log(`${kind}: K2 ${k2.perSecond}/s = ${ratio} of the floor`);
    if (k2.reached < k2.workflows)
      notes.push(
        `${k2.workflows - k2.reached} of the ${k2.workflows} happy-path cases did not reach their stage within ${Math.round(reachDeadlineMs(k2.workflows) / 60_000)} min (needing attention: ${await count(client, 'WorkflowType="caseWorkflow" AND K2NeedsAttention=true').catch(() => '?')}).`,
      );

    mark('happy path');

    // 3. memory with openCases open
    const fill = memorySampler(ctx);
    if (sets.fill.size > 0) {
      log(`${kind}: filling up to ${s.openCases} open cases (${sets.fill.size} more)`);
      const before = await count(client, CASE_AT_STAGE);
      const t0 = performance.now();
      await postLoans(ctx, await loans(sets.fill), s.postSize);
      const filled = await untilCounted(client, CASE_AT_STAGE, before, sets.fill.size, t0);
      if (filled.reached < before + sets.fill.size) notes.push(`The fill reached ${filled.reached - before} of ${sets.fill.size} cases at their stage.`);
    }
    const settled = await quiet(ctx, 'The memory reading', notes);
    const open = workerMemory(ctx);
    const memory: MemoryRun = {
      openCases: s.openCases,
      countedOpen: await count(client, OPEN_CASES).catch(() => null),
      maxCachedWorkflows: config.worker.maxCachedWorkflows,
      settled,
      fill: fill.stop(),
      workers: topology.workers.map((name) => {
        const b = baseline[name];
        const o = open[name];
        return { name, baseline: b, open: o, growthMiB: typeof b === 'object' && typeof o === 'object' ? round(o.rssMiB - b.rssMiB) : null };
      }),
    };
    log(
      `${kind}: worker memory with ${memory.countedOpen} open cases: ${memory.workers.map((w) => `${w.name} ${typeof w.open === 'object' ? `${w.open.rssMiB} MiB RSS, ${w.open.hwmMiB} MiB peak` : w.open}`).join('; ')}`,
    );

    mark('memory');

    // 4. history of the happy-path cases
    const history = await historyOf(ctx, s.historySample);
    log(`${kind}: history ${history.events.mean} events, ${history.protobufBytes.mean} bytes (protobuf) per case`);
    mark('history');

    // 5. the cluster's intake runs
    const intake = sets.intake ? await intakeRuns(ctx, sets.intake, loans, loadgenBin, notes) : undefined;
    if (intake) mark('intake');

    return {
      kind,
      startMs,
      phasesS: phases,
      workers: topology.workers,
      apis: topology.apis,
      floor,
      k2,
      ratio,
      memory,
      history,
      ...(intake ? { intake } : {}),
      notes,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    poster.close();
    for (const child of extra.values()) await stopChild(child);
    await connection?.close().catch(() => undefined);
    if (topology) {
      log(`${kind}: stopping the topology`);
      await topology.stop();
    }
    if (options.keepDataDir ?? process.env.K2_BENCH_KEEP === '1') log(`${kind}: data dir kept: ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  }
}

async function intakeRuns(
  ctx: Ctx,
  sets: NonNullable<ReturnType<typeof loanSets>['intake']>,
  loans: (set: LoanSet) => Promise<EkoLoanItem[]>,
  loadgenBin: string | undefined,
  notes: string[],
): Promise<IntakeRuns> {
  const log = ctx.log;
  const concurrency = ctx.dispatchConcurrency * ctx.topology.apis.length;
  // The floor again, on the server as it is now (its databases hold the cases above): the start rate the batches are compared with.
  await startFloorWorkers(ctx);
  await quiet(ctx, 'The second floor run', notes);
  const floor = await floorRate(ctx, generateLoans(sets.floor.seed, sets.floor.size), 'intake', concurrency);
  await stopFloorWorkers(ctx);
  log(`cluster: floor again ${floor.perSecond}/s (started ${floor.sentPerSecond}/s)`);

  // Backlog narrowing on and off: both run in workers started here, so both start equally cold.
  const batches: IntakeBatchRun[] = [];
  for (const [narrowing, set] of [
    ['on', sets.batchOn],
    ['off', sets.batchOff],
  ] as const) {
    await swapWorkers(ctx, NARROWING[narrowing]);
    const batchLoans = await loans(set);
    await quiet(ctx, `The ${set.size} batch (narrowing ${narrowing})`, notes);
    log(`cluster: ${set.size} loans in one POST, narrowing ${narrowing}`);
    const run = await intakeBatch(ctx, batchLoans, narrowing, floor.sentPerSecond);
    batches.push(run);
    log(
      `cluster: narrowing ${narrowing}: all running after ${run.allRunningMs} ms = ${run.caseStartsPerSecond}/s (${run.ratioToFloorStart} of the floor's start rate), all at their stage after ${run.allAtStageMs} ms`,
    );
  }
  await restoreWorkers(ctx);

  // The burst hold on and off: both in API replicas started here.
  const singles: IntakeSingleRun[] = [];
  for (const [hold, warm, set] of [
    ['on', sets.warmOn, sets.singlesOn],
    ['off', sets.warmOff, sets.singlesOff],
  ] as const) {
    await swapApis(ctx, HOLD[hold]);
    await quiet(ctx, `The single-item warm-up (hold ${hold})`, notes);
    log(`cluster: ${set.size} single-item POSTs from ${SINGLE_CLIENTS} closed-loop clients, hold ${hold}`);
    const run = await intakeSingles(ctx, hold, await loans(warm), await loans(set), loadgenBin, notes);
    singles.push(run);
    log(
      `cluster: hold ${hold}: p50 ${run.run.latencyMs.p50} ms, p99 ${run.run.latencyMs.p99} ms, ${run.run.requestsPerSecond} req/s, held ${run.heldSeconds} s`,
    );
  }
  return { floor, batches, singles };
}

// --- the report ---------------------------------------------------------------------------------------

function goalsOf(runs: TopologyRun[]): Goal[] {
  const goals: Goal[] = [];
  for (const r of runs) {
    goals.push({
      measure: `${r.kind}: happy-path cases ÷ bare floor (POST → demand issued and GKB record queued)`,
      value: r.ratio,
      unit: '×',
      goal: '≥ 0.8',
      met: Number.isFinite(r.ratio) ? r.ratio >= 0.8 : false,
    });
    for (const w of r.memory.workers) {
      const peak = typeof w.open === 'object' ? w.open.hwmMiB : NaN;
      goals.push({
        measure: `${r.kind}: ${w.name} peak RSS (VmHWM) with ${r.memory.openCases.toLocaleString('en-US')} open cases, maxCachedWorkflows ${r.memory.maxCachedWorkflows}`,
        value: peak,
        unit: 'MiB',
        goal: '< 600 MiB',
        met: Number.isFinite(peak) ? peak < 600 : false,
      });
    }
  }
  return goals;
}

export async function runTopologyBench(options: TopologyBenchOptions = {}): Promise<TopologyReport> {
  const began = performance.now();
  const log = options.log ?? ((msg: string) => console.error(`[topology +${Math.round((performance.now() - began) / 1000)}s] ${msg}`));
  // K2_BENCH_TOPO_* overrides are for quick iterations only; reports for the issue use the defaults.
  const kinds = options.topologies ?? (process.env.K2_BENCH_TOPOLOGIES ? (process.env.K2_BENCH_TOPOLOGIES.split(',') as TopologyKind[]) : [...TOPOLOGY_KINDS]);
  const sizes: Sizes = {
    cases: options.cases ?? envInt('K2_BENCH_TOPO_CASES') ?? 2_000,
    postSize: options.postSize ?? envInt('K2_BENCH_TOPO_POST') ?? 100,
    openCases: options.openCases ?? envInt('K2_BENCH_TOPO_OPEN') ?? 10_000,
    historySample: options.historySample ?? 20,
    // api-ingest's 10,000: every case of a run is executed before the next run starts.
    intakeBatch: options.intakeBatch ?? envInt('K2_BENCH_TOPO_INTAKE_BATCH') ?? 10_000,
    intakeSingles: options.intakeSingles ?? envInt('K2_BENCH_TOPO_INTAKE_SINGLE') ?? 2_000,
    maxCachedWorkflows: options.maxCachedWorkflows ?? envInt('K2_BENCH_TOPO_MAX_CACHED'),
  };
  const machine = machineInfo();
  const payloadKeys = formatPayloadKeys([newPayloadKey('bench')]);
  const built = await buildLoadgen();
  const notes: string[] = [];
  if ('unavailable' in built)
    notes.push(
      `bench/loadgen could not be built (${built.unavailable}); the closed-loop runs were sent by the benchmark's own Node.js process, which takes CPU from the system it measures.`,
    );
  const runs: TopologyRun[] = [];
  const skipped: TopologyReport['skipped'] = [];
  for (const kind of kinds) {
    const why = topologyUnavailable(kind);
    if (why) {
      skipped.push({ kind, why });
      log(`${kind}: skipped (${why})`);
      continue;
    }
    runs.push(await runTopology(kind, sizes, payloadKeys, 'bin' in built ? built.bin : undefined, options, log));
  }
  notes.push(
    "Rates: from the first call (POST, or the floor's signalWithStart) to every case or floor workflow at its stage in Temporal's visibility (K2Stage demand-issued, or reported-to-gkb for a legal entity, which has no GKB record), polled every 250 ms. Each measured run follows a warm-up of 200 (not counted) and a wait for a quiet system.",
    "Like for like: the floor workflow has a happy-path case's shape (the dispatcher's signal, 7 local activities, 1 upsert of the same search attributes, the timer of its wait), started by signalWithStart with the same input and signal at the dispatchers' concurrency (K2_DISPATCH_CONCURRENCY × API replicas), executed by one floor worker per K2 worker with K2's worker settings (bench/floor-worker.ts), on the same server while K2's workers are idle. K2's patch markers and their TemporalChangeVersion upserts are K2's own cost and not mirrored.",
    "EKO's statuses are an hour away (EKO_SIM_STATUS_DELAY=1h) and no GKB batch runs (GKB_BATCH_INTERVAL=30d, GKB_BATCH_MIN_RECORDS=50000): the cases wait at their demand, as they do in production for hours or days, and the memory reading has every case open.",
    'Memory: VmRSS and VmHWM from /proc/<pid>/status of each worker, right after start and once the open cases are at their stage and the system is quiet; the goal is judged on VmHWM (the peak while they were opened).',
    "Intake runs (cluster): the K2 processes of each variant are started by this benchmark with the topology's environment and the variant's keys over it, on the same ports, so both variants start equally cold; the batch's case start rate (POST → every item handed to Temporal) is compared with the floor's start rate (its signalWithStarts answered) measured again just before; the single-item runs are sent by bench/loadgen from 50 closed-loop clients through nginx after a warm-up of 1,000.",
    'All processes share the machine\'s cores with whatever else runs: cpuSeconds["not-ours"] of each run is the CPU of processes outside the benchmark (noise).',
  );
  const report: TopologyReport = {
    generatedAt: new Date().toISOString(),
    machine,
    settings: { topologies: kinds.join(','), ...sizes, warmup: WARMUP, singleClients: SINGLE_CLIENTS, singleWarmup: SINGLE_WARMUP, pollMs: POLL_MS },
    runs,
    skipped,
    goals: goalsOf(runs),
    notes,
  };
  const out = options.reportPath ?? process.env.K2_BENCH_TOPO_REPORT ?? path.join(repoRoot(), 'bench', 'reports', 'topology.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + '\n');
  return report;
}

if (require.main === module) {
  runTopologyBench().then(
    (report) => console.log(JSON.stringify(report, null, 2)),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}

/**
 * Measuring helpers shared by the benchmarks (bench/api-ingest.ts, bench/topology.ts): latency
 * statistics, CPU seconds and memory of processes from /proc (and the machine's CPU outside them,
 * `not-ours`), K2's /metrics, the loan sets, the closed-loop client bench/loadgen, and the bench's
 * own worker processes. Nothing here judges a number: the benchmarks do that in their reports.
 */
import fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { generateLoans } from '../domain/generate';
import type { EkoLoanItem } from '../domain/loan';
import { repoRoot } from '../scripts/system';

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(samples: number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN);
  return {
    count: s.length,
    p50: round(q(50), 2),
    p90: round(q(90), 2),
    p99: round(q(99), 2),
    max: round(s[s.length - 1] ?? NaN, 2),
    mean: round(s.reduce((a, b) => a + b, 0) / (s.length || 1), 2),
  };
}

/** Runs `count` tasks with at most `concurrency` in flight; returns each task's latency in ms. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number[]> {
  const latencies: number[] = new Array(count);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < count; i = next++) {
      const t = performance.now();
      await task(i);
      latencies[i] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return latencies;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  platform: string;
  loadAvgAtStart: number[];
}

export function machineInfo(): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '?',
    memGiB: round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAvgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

// --- processes: CPU and memory from /proc -------------------------------------------------------

export interface ProcInfo {
  name: string;
  pid: number;
}

/** A system's processes by name (RunningSystem.pids(), RunningTopology.pids()), plus this benchmark process as `bench-client`. */
export function procsOf(pids: Record<string, number>, extra: ProcInfo[] = []): ProcInfo[] {
  return [...Object.entries(pids).map(([name, pid]) => ({ name, pid })), ...extra, { name: 'bench-client', pid: process.pid }];
}

const TICKS = 100; // USER_HZ on Linux

/**
 * CPU seconds (user + system) of each process, `machine-busy` (every busy CPU second of the machine)
 * and `machine-steal` (time the hypervisor gave to other machines while this one wanted to run: a
 * run with much of it ran on a slower machine than its neighbours, whatever its own processes did;
 * the guest may still have charged part of it to the process that was running).
 */
export function cpuSeconds(procs: ProcInfo[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of procs) {
    try {
      const stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[p.name] = (Number(fields[11]) + Number(fields[12])) / TICKS; // utime + stime
    } catch {
      out[p.name] = NaN;
    }
  }
  // Busy CPU of the whole machine (other users' processes included): user, nice, system, irq, softirq, steal (idle and iowait left out).
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  out['machine-busy'] = (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICKS;
  out['machine-steal'] = f[7] / TICKS;
  return out;
}

/** The keys of a cpuDelta that are not one of the run's processes. */
const NOT_A_PROCESS = new Set(['not-ours', 'wall']);
const isProcess = (name: string) => !name.startsWith('machine-') && !NOT_A_PROCESS.has(name);

/** A run's CPU per workflow (ms) in three parts: its workers, Temporal (with its PostgreSQL), and the rest of its processes. */
export interface CpuPerCase {
  workers: number;
  temporal: number;
  rest: number;
  total: number;
}

export function cpuPerCase(cpu: Record<string, number>, workflows: number): CpuPerCase {
  const parts = { workers: 0, temporal: 0, rest: 0 };
  for (const [name, seconds] of Object.entries(cpu)) {
    if (!isProcess(name) || !Number.isFinite(seconds)) continue;
    const part = /^(floor-)?worker(-\d+)?$/.test(name) ? 'workers' : ['temporal', 'temporal-server', 'postgres'].includes(name) ? 'temporal' : 'rest';
    parts[part] += (seconds * 1000) / workflows;
  }
  return { ...parts, total: parts.workers + parts.temporal + parts.rest };
}

/**
 * What the ratio to the floor would be if K2's workers cost only what the floor's do and the rest
 * stayed as measured. In a CPU-bound run the ratio is about the floor's CPU per case over K2's, so
 * this bounds what any work on the workers alone can reach.
 */
export function ratioWithFloorWorkers(k2: CpuPerCase, floor: CpuPerCase): number {
  return floor.total / (k2.total - k2.workers + floor.workers);
}

/**
 * CPU seconds each process used between two readings, plus `not-ours` (the machine's busy CPU that
 * none of them used: other people's builds and tests, and steal not charged to a process, i.e. noise), `wall`
 * and `machine-capacity`.
 */
export function cpuDelta(a: Record<string, number>, b: Record<string, number>, wallMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  let ours = 0;
  for (const k of Object.keys(b)) {
    out[k] = round(b[k] - (a[k] ?? 0), 2);
    if (!k.startsWith('machine-') && Number.isFinite(out[k])) ours += out[k];
  }
  out['not-ours'] = round(Math.max(0, out['machine-busy'] - ours), 2);
  out['wall'] = round(wallMs / 1000, 2);
  out['machine-capacity'] = round((os.cpus().length * wallMs) / 1000, 2);
  return out;
}

/**
 * CPU of the processes of a system that a process-tree reading misses: PostgreSQL's backends are
 * children of the postmaster that live as long as their connection, so their CPU shows in the
 * postmaster's counters only once they exit. Adds every live descendant of the named processes.
 */
export function withDescendants(procs: ProcInfo[], names: string[]): ProcInfo[] {
  const parents = new Map<number, string>(procs.filter((p) => names.includes(p.name)).map((p) => [p.pid, p.name]));
  if (parents.size === 0) return procs;
  const out = [...procs];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const parent = parents.get(ppid);
      if (parent) out.push({ name: `${parent}:${entry}`, pid: Number(entry) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Folds per-child entries (`name:pid`, see withDescendants) into their parent's name. */
export function foldChildren(cpu: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu)) {
    const name = k.includes(':') ? k.slice(0, k.indexOf(':')) : k;
    out[name] = round((out[name] ?? 0) + (Number.isFinite(v) ? v : 0), 2);
  }
  return out;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

export function vmHwmMiB(pid: number): number | string {
  try {
    const kib = statusKiB(pid, 'VmHWM');
    return kib === undefined ? 'VmHWM not reported' : round(kib / 1024);
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

export interface Memory {
  /** Resident set now (VmRSS) and its peak since the process started (VmHWM), MiB. */
  rssMiB: number;
  hwmMiB: number;
}

export function memoryOf(pid: number): Memory | string {
  try {
    const rss = statusKiB(pid, 'VmRSS');
    const hwm = statusKiB(pid, 'VmHWM');
    if (rss === undefined || hwm === undefined) return 'VmRSS/VmHWM not reported';
    return { rssMiB: round(rss / 1024), hwmMiB: round(hwm / 1024) };
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

// --- HTTP -----------------------------------------------------------------------------------------

export interface Poster {
  post(url: string, body: string, timeoutMs?: number): Promise<{ status: number; text: string }>;
  close(): void;
}

/** JSON POSTs over keep-alive connections (one agent per benchmark run). */
export function createPoster(maxSockets = 64): Poster {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    post: (url, body, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          url,
          { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }, timeout: timeoutMs },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/** The sum over every /metrics URL (each API replica) of each named metric's samples (all label sets). */
export async function readMetrics(urls: string[], names: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const url of urls) {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
    for (const name of names) {
      for (const line of text.split('\n')) {
        if (line.startsWith(name + ' ') || line.startsWith(name + '{')) out[name] += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return out;
}

/** The `error_code` of a K2 service answer (-1 when the answer is not K2's JSON). */
export function errorCodeOf(text: string): number {
  try {
    const code = JSON.parse(text).error_code;
    return typeof code === 'number' ? code : -1;
  } catch {
    return -1;
  }
}

/** Until the outbox is drained on every replica: two zero readings of k2_outbox_pending 1.2 s apart (the gauge is refreshed each dispatcher round). */
export async function waitDrained(apiMetricsUrls: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let zeros = 0;
  while (Date.now() < deadline && zeros < 2) {
    zeros = (await readMetrics(apiMetricsUrls, ['k2_outbox_pending'])).k2_outbox_pending === 0 ? zeros + 1 : 0;
    if (zeros < 2) await sleep(1200);
  }
  return zeros >= 2;
}

export interface QuietOptions {
  apiMetricsUrls: string[];
  procs: () => ProcInfo[];
  /** Process name → the most cores it may use, in each 2-s window, for the system to count as quiet (a process not found counts as quiet). */
  limits: Record<string, number>;
  /** How long every window must stay under the limits. */
  quietForMs: number;
  timeoutMs: number;
  log: (msg: string) => void;
}

/**
 * Waits until the outbox is drained and the cases of earlier phases are done with their work (each
 * limited process under its limit in every 2-s window for `quietForMs`), so a run on a "quiet
 * system" does not share the cores with them. One quiet window is not enough: cases waiting for
 * the EKO simulator's statuses leave lulls, and the statuses then arrive during the run.
 */
export async function waitQuiet(o: QuietOptions): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  await waitDrained(o.apiMetricsUrls, o.timeoutMs);
  let lastLog = 0;
  let quietSince: number | undefined;
  while (Date.now() < deadline) {
    const procs = o.procs();
    const a = { at: Date.now(), cpu: foldChildren(cpuSeconds(procs)) };
    await sleep(2000);
    const b = foldChildren(cpuSeconds(procs));
    const busy = Object.keys(o.limits).map((name) => [name, (b[name] - a.cpu[name]) / 2] as const);
    if (busy.every(([name, cores]) => !(cores >= o.limits[name]))) {
      quietSince ??= a.at;
      if (Date.now() - quietSince >= o.quietForMs) return true;
      continue;
    }
    quietSince = undefined;
    if (Date.now() - lastLog >= 30_000) {
      lastLog = Date.now();
      o.log(
        `waiting for a quiet system: ${busy.map(([n, c]) => `${n} ${round(c, 2)}`).join(', ')} cores (${Math.round((deadline - Date.now()) / 1000)} s left)`,
      );
    }
  }
  return false;
}

// --- loans ----------------------------------------------------------------------------------------

export interface LoanSet {
  seed: number;
  size: number;
}

/**
 * Seeds for several sets of loans with no contract number shared between sets. Only the seeds are
 * kept: each set is generated again just before its phase, so the benchmark client does not carry
 * 100,000 loans on its heap (its garbage collection would show up in the latencies it measures).
 */
export function disjointLoanSets(sizes: number[], firstSeed: number): LoanSet[] {
  const seen = new Set<string>();
  const out: LoanSet[] = [];
  let seed = firstSeed;
  for (const size of sizes) {
    for (; ; seed++) {
      const loans = generateLoans(seed, size);
      if (loans.some((l) => seen.has(l.contract_number))) continue;
      for (const l of loans) seen.add(l.contract_number);
      out.push({ seed, size });
      seed++;
      break;
    }
  }
  return out;
}

/** Registers the loans' clients, accounts and statements with the ABS simulator, so their cases find them. */
export async function registerWithAbs(poster: Poster, absUrl: string, loans: EkoLoanItem[]): Promise<void> {
  for (let i = 0; i < loans.length; i += 20_000) {
    const res = await poster.post(`${absUrl}/_sim/loans`, JSON.stringify(loans.slice(i, i + 20_000)));
    if (res.status !== 200) throw new Error(`ABS simulator refused the loan book: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  }
}

/** A set's loans, generated from its seed and registered with the ABS simulator. */
export async function loansOf(poster: Poster, absUrl: string, set: LoanSet): Promise<EkoLoanItem[]> {
  const loans = generateLoans(set.seed, set.size);
  await registerWithAbs(poster, absUrl, loans);
  return loans;
}

// --- closed-loop single-item POSTs ----------------------------------------------------------------

export interface SingleRun {
  label: string;
  /** closed-loop: `concurrency` clients, each sending when answered; open-loop: requests sent at `targetPerSecond` whatever the answers. */
  mode: 'closed-loop' | 'open-loop';
  targetPerSecond: number | null;
  requests: number;
  /** closed-loop: clients; open-loop: the most requests that were in flight at once. */
  concurrency: number;
  ms: number;
  requestsPerSecond: number;
  nonZero: number;
  latencyMs: LatencyStats;
  cpuSeconds: Record<string, number>;
  /** Who sent the requests: bench/loadgen (Go) for the closed loops when Go is there, else this Node.js process. */
  client: string;
}

export const NODE_CLIENT = 'the benchmark process (Node.js)';
export const LOADGEN_CLIENT = 'bench/loadgen (Go)';

const execFileP = promisify(execFile);

/**
 * Builds the closed-loop client bench/loadgen (Go, standard library only, so no download) into
 * .tools/bin. It spends a fraction of the CPU per request that this Node.js process does, CPU the
 * measured API and Temporal would otherwise lose to their own load generator on the same 2 cores.
 */
export async function buildLoadgen(): Promise<{ bin: string } | { unavailable: string }> {
  const bin = path.join(repoRoot(), '.tools', 'bin', 'k2-loadgen');
  try {
    await execFileP('go', ['build', '-o', bin, '.'], {
      cwd: path.join(repoRoot(), 'bench', 'loadgen'),
      timeout: 300_000,
      env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
    });
    return { bin };
  } catch (err) {
    return { unavailable: (err as Error).message.split('\n')[0] };
  }
}

export interface Loadgen {
  bin: string;
  workDir: string;
  log: (msg: string) => void;
}

export interface SingleTarget {
  apiUrl: string;
  procs: () => ProcInfo[];
}

/** A closed-loop run sent by bench/loadgen: the bodies go to it in a file, the latencies come back as JSON. */
export async function runSinglesLoadgen(sys: SingleTarget, label: string, loans: EkoLoanItem[], concurrency: number, loadgen: Loadgen): Promise<SingleRun> {
  const bodies = path.join(loadgen.workDir, 'single-bodies.jsonl');
  await writeFile(bodies, loans.map((l) => JSON.stringify([l])).join('\n') + '\n');
  const url = `${sys.apiUrl}/restapi/services/k2loan_from_eko`;
  const procs = sys.procs();
  const cpu0 = cpuSeconds(procs);
  const started = performance.now();
  const { stdout } = await execFileP(loadgen.bin, ['-url', url, '-bodies', bodies, '-clients', String(concurrency), '-timeout', '30s'], {
    maxBuffer: 256 << 20,
    timeout: 900_000,
  });
  const out = JSON.parse(stdout) as { latenciesMs: number[]; nonZero: number; cpuSeconds: number; firstError?: string };
  if (out.firstError) loadgen.log(`loadgen (${label}): first failed request: ${out.firstError}`);
  const run = singleRun({
    label,
    mode: 'closed-loop',
    targetPerSecond: null,
    concurrency,
    nonZero: out.nonZero,
    latencies: out.latenciesMs,
    started,
    cpu0,
    procs,
    client: LOADGEN_CLIENT,
  });
  // The client is a child process, outside the /proc sampling: its CPU comes from its own report.
  run.cpuSeconds.loadgen = round(out.cpuSeconds, 2);
  run.cpuSeconds['not-ours'] = round(Math.max(0, run.cpuSeconds['not-ours'] - out.cpuSeconds), 2);
  return run;
}

/** A closed-loop run sent by this process (when Go is missing). */
export async function runSinglesNode(sys: SingleTarget, poster: Poster, label: string, loans: EkoLoanItem[], concurrency: number): Promise<SingleRun> {
  const bodies = loans.map((l) => JSON.stringify([l]));
  let nonZero = 0;
  const url = `${sys.apiUrl}/restapi/services/k2loan_from_eko`;
  const procs = sys.procs();
  const cpu0 = cpuSeconds(procs);
  const started = performance.now();
  const latencies = await pool(bodies.length, concurrency, async (i) => {
    const res = await poster.post(url, bodies[i], 30_000);
    if (res.status !== 200 || errorCodeOf(res.text) !== 0) nonZero++;
  });
  return singleRun({ label, mode: 'closed-loop', targetPerSecond: null, concurrency, nonZero, latencies, started, cpu0, procs, client: NODE_CLIENT });
}

/** A single-item run's report, from its latencies and the time and CPU counters taken at its start. */
export function singleRun(
  r: Pick<SingleRun, 'label' | 'mode' | 'targetPerSecond' | 'concurrency' | 'nonZero' | 'client'> & {
    latencies: number[];
    started: number;
    cpu0: Record<string, number>;
    procs: ProcInfo[];
  },
): SingleRun {
  const ms = performance.now() - r.started;
  return {
    label: r.label,
    mode: r.mode,
    targetPerSecond: r.targetPerSecond,
    requests: r.latencies.length,
    concurrency: r.concurrency,
    ms: round(ms),
    requestsPerSecond: Math.round(r.latencies.length / (ms / 1000)),
    nonZero: r.nonZero,
    latencyMs: stats(r.latencies),
    cpuSeconds: cpuDelta(r.cpu0, cpuSeconds(r.procs), ms),
    client: r.client,
  };
}

// --- the benchmark's own processes ---------------------------------------------------------------

/** Starts `node dist/bench/<script>` with the system's environment (the same payload keys and Temporal TLS as K2's processes); resolves once it prints "ready". */
export async function startBenchProcess(script: string, args: string[], env: Record<string, string>, nodeArgs: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (code ${code}) before it was ready`)));
  });
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
}

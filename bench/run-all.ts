/**
 * Runs every benchmark and writes bench/reports/<name>.json (each benchmark writes its own) plus
 * bench/reports/summary.md: one table of measure, value, goal, met?.
 *
 *   npm run bench          (installs/builds first; see scripts/bench.sh)
 *   node dist/bench/run-all.js [--only gkb-files,api-ingest,topology]
 *
 * Benchmarks measure: a missed goal is reported, not an error. The exit code is 1 only when a
 * benchmark itself crashed (its row in summary.md says so).
 *
 * Order: gkb-files first, because it samples this process's RSS and must not see the memory the
 * API benchmark's client holds (60,000 generated loans). topology runs last: it starts both
 * topologies (the cluster's PostgreSQL and Temporal server) one after the other.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runApiIngestBench, type ApiIngestReport } from './api-ingest';
import { runGkbFilesBench, type GkbFilesReport } from './gkb-files';
import { cpuPerCase, ratioWithFloorWorkers, type CpuPerCase } from './measure';
import { runTopologyBench, type TopologyReport } from './topology';
import { repoRoot } from '../scripts/system';

interface Row {
  bench: string;
  measure: string;
  value: string;
  goal: string;
  met: string;
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: 2 }) : String(n));
const metText = (met: boolean | null) => (met === null ? '—' : met ? '✅ yes' : '❌ no');

function apiIngestRows(r: ApiIngestReport): Row[] {
  const rows: Row[] = [];
  const add = (measure: string, value: string, goal = '—', met: boolean | null = null) =>
    rows.push({ bench: 'api-ingest', measure, value, goal, met: metText(met) });
  for (const g of r.goals) add(g.measure, `${fmt(Number(g.value))} ${g.unit}`, g.goal, g.met);
  for (const b of r.bare)
    add(
      `bare Temporal ${b.kind} rate, ${b.conditions ?? 'worker running'} (${b.workflows} workflows, concurrency ${b.concurrency})`,
      `${fmt(b.perSecond)} /s (p50 ${fmt(b.latencyMs.p50)} ms)`,
    );
  for (const b of r.batches) {
    const what = `${fmt(b.items)} loans${b.conditions ? `, ${b.conditions}` : ''}`;
    add(`${what} (${fmt(b.bodyMiB)} MiB): accepted items/s`, `${fmt(b.acceptedItemsPerSecond)} /s (${fmt(b.acceptMs)} ms)`);
    add(`${what}: POST → all cases running`, `${fmt(b.allRunningMs)} ms (dispatch alone ${fmt(b.dispatchItemsPerSecond)} /s)`);
    add(
      `${what}: case start rate ÷ bare signalWithStart / ÷ bare start${b.bareConditions ? ` (bare: ${b.bareConditions})` : ''}`,
      `${fmt(b.ratioToBareSignalWithStart)} / ${fmt(b.ratioToBareStart)}`,
    );
    add(
      `${what}: caseWorkflow count in Temporal (expected)`,
      `${b.temporalCaseCount ?? 'n/a'} (${b.temporalCaseCountExpected})`,
      '= expected',
      b.temporalCaseCount === b.temporalCaseCountExpected,
    );
  }
  for (const s of r.single) {
    const how =
      s.mode === 'open-loop'
        ? `open loop at ${fmt(s.targetPerSecond ?? NaN)} req/s, at most ${s.concurrency} in flight`
        : `${s.concurrency} closed-loop clients, sent by ${s.client ?? 'the benchmark process'}`;
    add(
      `single-item POSTs, ${s.label}: p50 / p99 / max (${s.requests} requests, ${how})`,
      `${fmt(s.latencyMs.p50)} / ${fmt(s.latencyMs.p99)} / ${fmt(s.latencyMs.max)} ms, ${fmt(s.requestsPerSecond)} req/s, ${s.nonZero} not error_code 0`,
    );
  }
  for (const [name, v] of Object.entries(r.peakRssMiB)) add(`peak RSS (VmHWM) of ${name}`, typeof v === 'number' ? `${fmt(v)} MiB` : v);
  return rows;
}

function gkbRows(r: GkbFilesReport): Row[] {
  const rows: Row[] = [];
  const add = (measure: string, value: string) => rows.push({ bench: 'gkb-files', measure, value, goal: '—', met: '—' });
  for (const run of r.runs) {
    const what = `${fmt(run.contracts)} contracts${run.atRest ? ' at rest (payload key: XML unnamed, ZIP encrypted)' : ''}`;
    add(`${what} → ${run.files} file(s): end to end`, `${fmt(run.totalMs)} ms, ${fmt(run.contractsPerSecondEndToEnd)} contracts/s`);
    add(`${what}: build / validate / zip`, `${fmt(run.buildMs)} / ${fmt(run.validateMs)} / ${fmt(run.zipMs)} ms`);
    add(`${what}: peak RSS (sampled)`, `${fmt(run.peakRssMiB)} MiB`);
  }
  add('RSS growth 10k → 50k (should stay near 0, see bench/gkb-files.ts)', `${fmt(r.rssGrowth10kTo50kMiB)} MiB`);
  if (r.rssGrowth10kTo50kAtRestMiB !== undefined) add('RSS growth 10k → 50k at rest', `${fmt(r.rssGrowth10kTo50kAtRestMiB)} MiB`);
  return rows;
}

function topologyRows(r: TopologyReport): Row[] {
  const rows: Row[] = [];
  const add = (measure: string, value: string, goal = '—', met: boolean | null = null) =>
    rows.push({ bench: 'topology', measure, value, goal, met: metText(met) });
  const mib = (m: { rssMiB: number; hwmMiB: number } | string) => (typeof m === 'string' ? m : `${fmt(m.rssMiB)} / ${fmt(m.hwmMiB)} MiB`);
  const notOurs = (cpu: Record<string, number>) =>
    `not-ours CPU ${fmt(cpu['not-ours'])} s of ${fmt(cpu['machine-capacity'])}` +
    (cpu['machine-steal'] === undefined ? '' : `; hypervisor steal ${fmt(cpu['machine-steal'])} s`);
  for (const g of r.goals) add(g.measure, `${fmt(Number(g.value))} ${g.unit}`, g.goal, g.met);
  for (const t of r.runs) {
    const k = t.kind;
    add(
      `${k}: happy-path cases/s, POST → demand issued and GKB record queued (${fmt(t.k2.workflows)} cases in POSTs of ${t.k2.posts?.size ?? '?'})`,
      `${fmt(t.k2.perSecond)} /s (${notOurs(t.k2.cpuSeconds)})`,
    );
    add(
      `${k}: bare floor/s, signalWithStart → at its stage (${fmt(t.floor.workflows)} workflows, concurrency ${t.floor.concurrency}, ${t.workers.length} floor worker(s))`,
      `${fmt(t.floor.perSecond)} /s (${notOurs(t.floor.cpuSeconds)})`,
    );
    const k2Cpu = cpuPerCase(t.k2.cpuSeconds, t.k2.workflows);
    const floorCpu = cpuPerCase(t.floor.cpuSeconds, t.floor.workflows);
    const ms = (part: keyof CpuPerCase) => `${fmt(Math.round(k2Cpu[part]))} / ${fmt(Math.round(floorCpu[part]))}`;
    add(
      `${k}: CPU ms per case, K2 / floor: workers; Temporal${k === 'cluster' ? ' + PostgreSQL' : ''}; the rest (API, simulators, bench client); all`,
      `${ms('workers')}; ${ms('temporal')}; ${ms('rest')}; ${ms('total')}`,
    );
    add(
      `${k}: floor's CPU per case ÷ K2's (≈ the ratio when the run is CPU-bound): as measured; if K2's workers cost what the floor's do, the rest as measured`,
      `${(floorCpu.total / k2Cpu.total).toFixed(2)}; ${ratioWithFloorWorkers(k2Cpu, floorCpu).toFixed(2)}`,
    );
    for (const w of t.memory.workers)
      add(`${k}: ${w.name} VmRSS / VmHWM, baseline → ${fmt(t.memory.countedOpen ?? NaN)} open cases`, `${mib(w.baseline)} → ${mib(w.open)}`);
    const h = t.history;
    add(
      `${k}: history per happy-path case at its GKB queue (${h.sampled} sampled): events / protobuf bytes / JSON bytes`,
      `${fmt(h.events.mean)} / ${fmt(h.protobufBytes.mean)} / ${fmt(h.jsonBytes.mean)}${h.floor ? ` (floor: ${h.floor.events} events, ${fmt(h.floor.protobufBytes)} bytes)` : ''}`,
    );
    if (t.intake) {
      add(`${k}: floor start rate before the intake runs (signalWithStarts answered)`, `${fmt(t.intake.floor.sentPerSecond)} /s`);
      for (const b of t.intake.batches)
        add(
          `${k}: backlog narrowing ${b.narrowing}: ${fmt(b.items)}-loan POST, case start rate (÷ floor start rate); all at their stage`,
          `${fmt(b.caseStartsPerSecond)} /s (${fmt(b.ratioToFloorStart)}); ${fmt(b.allAtStageMs)} ms (${notOurs(b.cpuSeconds)})`,
        );
      for (const s of t.intake.singles)
        add(
          `${k}: burst hold ${s.hold}: single-item POSTs p50 / p99 / max (${s.run.requests}, ${s.run.concurrency} closed-loop clients)`,
          `${fmt(s.run.latencyMs.p50)} / ${fmt(s.run.latencyMs.p99)} / ${fmt(s.run.latencyMs.max)} ms, ${fmt(s.run.requestsPerSecond)} req/s, held ${fmt(s.heldSeconds)} s, ${s.run.nonZero} not error_code 0 (${notOurs(s.run.cpuSeconds)})`,
        );
    }
  }
  for (const s of r.skipped) add(`${s.kind}: not run`, s.why.replace(/\|/g, '\\|'));
  return rows;
}

const BENCHES: { name: string; run: () => Promise<Row[]>; rowsOf: (report: never) => Row[] }[] = [
  { name: 'gkb-files', run: async () => gkbRows(await runGkbFilesBench()), rowsOf: gkbRows },
  { name: 'api-ingest', run: async () => apiIngestRows(await runApiIngestBench()), rowsOf: apiIngestRows },
  { name: 'topology', run: async () => topologyRows(await runTopologyBench()), rowsOf: topologyRows },
];

/** Rows of a benchmark left out by --only, from its last report (so summary.md keeps every benchmark). */
async function earlierRows(bench: (typeof BENCHES)[number]): Promise<{ rows: Row[]; generatedAt: string } | undefined> {
  try {
    const report = JSON.parse(await readFile(path.join(repoRoot(), 'bench', 'reports', `${bench.name}.json`), 'utf8'));
    return { rows: bench.rowsOf(report as never), generatedAt: String(report.generatedAt ?? '?') };
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const onlyArg = process.argv.find((a) => a.startsWith('--only'));
  const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : process.argv[process.argv.indexOf(onlyArg) + 1]).split(',') : undefined;
  const rows: Row[] = [];
  const crashed: string[] = [];
  const durations: string[] = [];
  for (const bench of BENCHES) {
    if (only && !only.includes(bench.name)) {
      const earlier = await earlierRows(bench);
      if (earlier) {
        rows.push(...earlier.rows);
        durations.push(`${bench.name} not run (rows from its report of ${earlier.generatedAt})`);
      }
      continue;
    }
    console.error(`[run-all] ${bench.name}`);
    const t = performance.now();
    try {
      rows.push(...(await bench.run()));
    } catch (err) {
      crashed.push(bench.name);
      console.error(`[run-all] ${bench.name} crashed:`, err);
      rows.push({
        bench: bench.name,
        measure: 'benchmark crashed',
        value: String((err as Error)?.message ?? err)
          .replace(/\|/g, '\\|')
          .slice(0, 300),
        goal: '—',
        met: '—',
      });
    }
    durations.push(`${bench.name} ${Math.round((performance.now() - t) / 1000)} s`);
  }
  const cpus = os.cpus();
  const lines = [
    '# K2 benchmarks — summary',
    '',
    `Generated ${new Date().toISOString()} by \`npm run bench\` on ${cpus.length} × ${cpus[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}; load average at the end ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}.`,
    `Durations: ${durations.join(', ')}. Details: \`bench/reports/<name>.json\`; meaning of each number: \`bench/README.md\`.`,
    '',
    '| bench | measure | value | goal | met? |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.bench} | ${r.measure} | ${r.value} | ${r.goal} | ${r.met} |`),
    '',
  ];
  const out = path.join(repoRoot(), 'bench', 'reports', 'summary.md');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, lines.join('\n'));
  console.log(lines.join('\n'));
  return crashed.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);

/**
 * The chaos run's report: chaos/reports/<topology>-<date>-seed<seed>.json (everything) and .md (for
 * reading): the options, the fault timeline as planned and as it ran, the settling, the counts and
 * every violation naming its case. No personal data: contract numbers, references, codes and counts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Counts, Violation } from './checks';
import { describeEvent, type ChaosEvent, type ChaosTimeline } from './timeline';

/** One fault as it ran. */
export interface ExecutedEvent {
  /** Planned time, ms from the start. */
  plannedAt: number;
  startedAt: number;
  endedAt: number;
  kind: ChaosEvent['kind'];
  description: string;
  error?: string;
}

export interface ChaosReport {
  topology: string;
  seed: number;
  options: { cases: number; durationMs: number; short: boolean; settleMaxMs: number };
  startedAt: string;
  finishedAt: string;
  /** How long the topology took to start, and the whole run. */
  startupMs: number;
  runMs: number;
  timeline: ChaosTimeline;
  executed: ExecutedEvent[];
  settle: { settled: boolean; tookMs: number; last?: unknown; lastError?: string };
  counts: Counts | undefined;
  violations: Violation[];
  passed: boolean;
  /** Kept when the run failed: the data folder (logs, databases) and exported histories. */
  dataDir?: string;
  histories?: string[];
}

export function reportBaseName(topology: string, seed: number, at: Date): string {
  return `${topology}-${at.toISOString().slice(0, 10)}-seed${seed}`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function countsTable(counts: Counts): string[] {
  const lines = ['| source | count | value |', '| --- | --- | --- |'];
  for (const [source, group] of Object.entries(counts)) {
    for (const [name, value] of Object.entries(group))
      lines.push(`| ${source} | ${name} | ${cell(typeof value === 'object' ? JSON.stringify(value) : String(value))} |`);
  }
  return lines;
}

export function reportMarkdown(r: ChaosReport): string {
  const out = [
    `# Chaos run: ${r.topology}, seed ${r.seed} — ${r.passed ? 'passed' : `FAILED (${r.violations.length} violations)`}`,
    '',
    `${r.startedAt} to ${r.finishedAt}: ${r.options.cases} cases, ${seconds(r.options.durationMs)} of faults and load${r.options.short ? ' (short run)' : ''}, then settling ` +
      `(${r.settle.settled ? `settled after ${seconds(r.settle.tookMs)}` : `did not settle within ${seconds(r.options.settleMaxMs)}`}). Topology started in ${seconds(r.startupMs)}; the whole run took ${seconds(r.runMs)}.`,
    '',
    `Replay this timeline: \`npm run chaos -- --topology ${r.topology} --seed ${r.seed} --cases ${r.options.cases} --duration ${Math.round(r.options.durationMs / 1000)}s${r.options.short ? ' --short' : ''}\``,
    '',
    '## Fault timeline',
    '',
    '| planned | ran | took | fault |',
    '| --- | --- | --- | --- |',
    ...r.executed.map(
      (e) =>
        `| ${seconds(e.plannedAt)} | ${seconds(e.startedAt)} | ${seconds(e.endedAt - e.startedAt)} | ${cell(e.description)}${e.error ? ` — **error**: ${cell(e.error)}` : ''} |`,
    ),
    '',
    '## Violations',
    '',
    ...(r.violations.length === 0
      ? ['None.']
      : r.violations.map((v) => `- **${v.rule}** ${v.workflowId ?? ''}${v.contract ? ` (contract ${v.contract})` : ''}: ${v.detail}`)),
    '',
  ];
  if (r.counts) out.push('## Counts', '', ...countsTable(r.counts), '');
  if (!r.settle.settled) out.push('## Not settled', '', `Last reading: ${JSON.stringify(r.settle.last ?? r.settle.lastError)}`, '');
  if (r.dataDir)
    out.push(
      `Data folder kept for inspection: \`${r.dataDir}\`${r.histories?.length ? `; ${r.histories.length} histories exported beside the report` : ''}.`,
      '',
    );
  return out.join('\n');
}

/** Writes <outDir>/<base>.json and .md; returns their paths. */
export function writeReport(outDir: string, base: string, r: ChaosReport): { json: string; md: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const json = path.join(outDir, `${base}.json`);
  const md = path.join(outDir, `${base}.md`);
  fs.writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  fs.writeFileSync(md, reportMarkdown(r));
  return { json, md };
}

/** The planned timeline as report lines (for the log before the run). */
export function timelineLines(t: ChaosTimeline): string[] {
  return t.events.map((e) => `${seconds(e.at).padStart(8)}  ${describeEvent(e)}`);
}

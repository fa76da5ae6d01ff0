/**
 * Output of the operator CLI: aligned tables for people, one JSON document for scripts (--json),
 * ages and durations in the units an operator reads at 3 a.m.
 */
import { parseDuration as parseConfigDuration } from '../config';
import { UsageError, type CliContext } from './command';

/** A cell as text: nothing → '-', dates as ISO, objects as compact JSON. */
export function cellText(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The table's lines: a header of the column names, then one aligned line per row (the last column unpadded). */
export function tableLines(columns: string[], rows: ReadonlyArray<object>): string[] {
  const cells = rows.map((row) => columns.map((c) => cellText((row as Record<string, unknown>)[c]).replace(/\s*\n\s*/g, ' ')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)];
}

/** Rows as an aligned table, or with --json the rows themselves as one JSON array (every field, not only the columns). */
export function printTable(ctx: Pick<CliContext, 'json' | 'out'>, columns: string[], rows: ReadonlyArray<object>): void {
  if (ctx.json) return printJson(ctx, rows);
  if (rows.length === 0) return ctx.out('(none)');
  for (const l of tableLines(columns, rows)) ctx.out(l);
}

/** One JSON document on stdout (indented: scripts parse it, people can still read it). */
export function printJson(ctx: Pick<CliContext, 'out'>, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** An age in its two largest units: '45s', '12m 05s', '2h 05m', '3d 04h'; a negative age is '0s'. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${pad2(h)}h`;
  if (h > 0) return `${h}h ${pad2(m)}m`;
  if (m > 0) return `${m}m ${pad2(s % 60)}s`;
  return `${s}s`;
}

/**
 * An option's duration ('30s', '15m', '2h', '3d': the configuration's format, config/index.ts) in
 * milliseconds; a malformed or zero one is a UsageError naming the option.
 */
export function parseDuration(text: string, option = 'duration'): number {
  const ms = parseConfigDuration(text);
  if (ms === undefined || ms <= 0) throw new UsageError(`${option}: "${text}" is not a duration (expected e.g. 30s, 15m, 2h or 3d)`);
  return ms;
}

/**
 * A case's history as the CLI reads it: fetched run by run (a case continues as new to keep its
 * history bounded), every payload decoded through K2's codec (a bare client sees only
 * ciphertext), written to a private file outside the repository, and read back from such a file or
 * from Temporal's own JSON export (`temporal workflow show --output json`, the Web UI's download).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { LoadedDataConverter, Payload } from '@temporalio/common';
import { decode } from '@temporalio/common/lib/internal-non-workflow';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { UsageError } from './command';

export type History = temporal.api.history.v1.IHistory;
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The `case history` file: Temporal's JSON history (payloads decoded) under `history`, with where it came from. */
export const HISTORY_FILE_FORMAT = 'k2-case-history/1';

export const PERSONAL_DATA_WARNING = 'holds personal data (the loan: IIN, name, IBAN): keep it off shared drives and out of git, delete it when done';

/** One run of a case's chain. */
export interface RunHistory {
  workflowId: string;
  runId: string;
  history: History;
}

/** The converter of a client (K2's codec when the client came from temporal/connection.ts). */
export function converterOf(client: Client): LoadedDataConverter {
  return client.options.loadedDataConverter;
}

/** The class of decoded Payload messages (@temporalio/proto is a reflection root: its types are not classes). */
const PayloadMessage = (temporal.api.common.v1.Payload as unknown as { ctor: new () => object }).ctor;

/** Every payload of the history, in place: the proto messages of type Payload anywhere in it (of a decoded copy: plain objects are not told apart). */
function payloadsIn(
  value: unknown,
  found: Array<{ holder: Record<string | number, unknown>; key: string | number }>,
  holder?: Record<string | number, unknown>,
  key?: string | number,
): void {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
  if (value instanceof PayloadMessage) {
    if (holder !== undefined && key !== undefined) found.push({ holder, key });
    return;
  }
  for (const [k, v] of Object.entries(value)) payloadsIn(v, found, value as Record<string, unknown>, Array.isArray(value) ? Number(k) : k);
}

/**
 * The history with every payload decoded by the converter's codecs (inputs, results, signals,
 * markers, failures' encoded attributes); payloads that are not encoded stay as they are. The
 * result is still a Temporal history: it replays, and Temporal's tools read its JSON.
 */
export async function decodeHistory(history: History, converter: LoadedDataConverter): Promise<History> {
  const copy = temporal.api.history.v1.History.decode(temporal.api.history.v1.History.encode(history).finish());
  if (converter.payloadCodecs.length === 0) return copy;
  const found: Array<{ holder: Record<string | number, unknown>; key: string | number }> = [];
  payloadsIn(copy, found);
  const decoded = await decode(
    converter.payloadCodecs,
    found.map(({ holder, key }) => holder[key] as Payload),
  );
  found.forEach(({ holder, key }, i) => (holder[key] = temporal.api.common.v1.Payload.create(decoded[i] as temporal.api.common.v1.IPayload)));
  return copy;
}

/** The value of one decoded payload (JSON), undefined when there is none. */
export function payloadValue(converter: LoadedDataConverter, payload: temporal.api.common.v1.IPayload | null | undefined): unknown {
  if (!payload) return undefined;
  try {
    return converter.payloadConverter.fromPayload(payload as Payload);
  } catch {
    return '(not readable: encrypted with a key this configuration does not hold?)';
  }
}

/** The values of decoded payloads (`Payloads.payloads`). */
export function payloadValues(converter: LoadedDataConverter, payloads: temporal.api.common.v1.IPayloads | null | undefined): unknown[] {
  return (payloads?.payloads ?? []).map((p) => payloadValue(converter, p));
}

/** One run's raw history (runId undefined: the latest run). */
export async function fetchRun(client: Client, workflowId: string, runId?: string): Promise<RunHistory> {
  const handle = client.workflow.getHandle(workflowId, runId);
  const history = await handle.fetchHistory();
  const started = history.events?.[0];
  const resolvedRunId = runId ?? (await handle.describe()).runId;
  if (!started) throw new Error(`${workflowId}: the history is empty`);
  return { workflowId, runId: resolvedRunId, history };
}

/** The run this run continued from (undefined: the first of the chain). */
export function previousRunId(history: History): string | undefined {
  return history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
}

/** The latest run and up to `maxRuns - 1` runs before it, oldest first, each decoded. */
export async function fetchChain(client: Client, workflowId: string, maxRuns: number): Promise<{ runs: RunHistory[]; truncated: boolean }> {
  const converter = converterOf(client);
  const runs: RunHistory[] = [];
  let next: string | undefined;
  for (let run = await fetchRun(client, workflowId); ; run = await fetchRun(client, workflowId, next)) {
    runs.unshift({ ...run, history: await decodeHistory(run.history, converter) });
    next = previousRunId(run.history);
    if (!next || runs.length >= maxRuns) break;
  }
  return { runs, truncated: next !== undefined };
}

/**
 * For people: the values of each event's payloads (a Temporal history keeps them as base64),
 * by event id, for the events that have any.
 */
export function readableValues(history: History, converter: LoadedDataConverter): Array<{ eventId: number; eventType: string; values: unknown[] }> {
  return (history.events ?? []).flatMap((e) => {
    const found: Array<{ holder: Record<string | number, unknown>; key: string | number }> = [];
    payloadsIn(e, found);
    if (found.length === 0) return [];
    const eventType = (temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? '').replace(/^EVENT_TYPE_/, '');
    return [{ eventId: Number(e.eventId), eventType, values: found.map(({ holder, key }) => payloadValue(converter, holder[key] as Payload)) }];
  });
}

/** The text of a `case history` file (the run decoded by decodeHistory). */
export function historyFileText(run: RunHistory, exportedAt: Date, converter: LoadedDataConverter): string {
  const history = JSON.parse(historyToJSON(run.history)) as unknown;
  const file = {
    format: HISTORY_FILE_FORMAT,
    workflowId: run.workflowId,
    runId: run.runId,
    exportedAt: exportedAt.toISOString(),
    warning: `this file ${PERSONAL_DATA_WARNING}`,
    history,
    values: readableValues(run.history, converter),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * A saved history: a `case history` file, or Temporal's JSON export (`{"events": [...]}`). The
 * workflow id is the file's, or taken from the file name (`case-<contract>.json`) for an export.
 */
export function readHistoryFile(file: string): { workflowId: string; runId?: string; history: History } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--file ${file}: not a readable JSON file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const obj = parsed as { format?: string; workflowId?: string; runId?: string; history?: unknown; events?: unknown };
  const raw = obj?.format === HISTORY_FILE_FORMAT ? obj.history : obj;
  if (!raw || !Array.isArray((raw as { events?: unknown }).events))
    throw new UsageError(`--file ${file}: neither a \`k2 case history\` file nor Temporal's JSON history export (no "events" array)`);
  let history: History;
  try {
    history = historyFromJSON(raw);
  } catch (e) {
    throw new UsageError(`--file ${file}: the events are not a Temporal history (${(e as Error).message})`);
  }
  const workflowId = obj.format === HISTORY_FILE_FORMAT && obj.workflowId ? obj.workflowId : path.basename(file).replace(/\.json$/i, '');
  return { workflowId, ...(obj.format === HISTORY_FILE_FORMAT && obj.runId ? { runId: obj.runId } : {}), history };
}

/** The repository root holding `dir` (a folder with package.json and .git above it), undefined when none. */
function repositoryOf(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, '.git'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * Why a file of personal data may not be written to `file` (undefined: it may): inside a git
 * work tree (this repository's or any other: personal data must not land in git).
 */
export function privateFileProblem(file: string, repoRoot: string): string | undefined {
  const parent = realDir(path.dirname(path.resolve(file))) ?? path.dirname(path.resolve(file));
  const target = path.join(parent, path.basename(file));
  const root = realDir(repoRoot) ?? repoRoot;
  if (target === root || target.startsWith(root + path.sep))
    return `${file} is inside the repository (${root}): personal data must not land in git; write it outside, e.g. under your home folder`;
  const git = repositoryOf(parent);
  if (git) return `${file} is inside a git work tree (${git}): personal data must not land in git; write it outside any repository`;
  return undefined;
}

function realDir(dir: string): string | undefined {
  try {
    return fs.realpathSync(dir);
  } catch {
    return undefined;
  }
}

/**
 * Writes a file of personal data: refused inside a repository, mode 0600 (a file that exists is
 * replaced only with --force), and the warning on stderr.
 */
export function writePrivateFile(file: string, content: string | Buffer, opts: { repoRoot: string; force: boolean; err: (line: string) => void }): void {
  const problem = privateFileProblem(file, opts.repoRoot);
  if (problem) throw new UsageError(`--out ${problem}`);
  if (!realDir(path.dirname(path.resolve(file)))) throw new UsageError(`--out ${file}: the folder ${path.dirname(path.resolve(file))} does not exist`);
  if (fs.existsSync(file) && !opts.force) throw new UsageError(`--out ${file} exists (give --force to replace it)`);
  if (fs.existsSync(file)) fs.rmSync(file);
  // 'wx' with mode 0600: created by us, readable by the operator only, whatever the umask.
  fs.writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
  fs.chmodSync(file, 0o600);
  opts.err(`warning: ${file} ${PERSONAL_DATA_WARNING}`);
}

/** The repository (or installed package) root of this CLI: the folder of package.json above this file. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

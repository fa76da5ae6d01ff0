/**
 * What a replay's outcome means, for `case replay`'s report. Pure (test/unit/cli-replay-report.test.ts).
 */
import { temporal } from '@temporalio/proto';

export type ReplayVerdict = 'replayed' | 'nondeterministic' | 'failed' | 'timed-out';

export interface ReplayOutcome {
  source: string;
  workflowId: string;
  runId?: string;
  result: ReplayVerdict;
  /** The event the non-determinism was found at, when the SDK's message names it. */
  eventId?: number;
  eventType?: string;
  error?: string;
}

type EventLike = temporal.api.history.v1.IHistoryEvent;

/** The event id a non-determinism message names (Core writes `HistoryEvent(id: 12, …)`, or `event 12`, or `event_id: 12`). */
export function eventIdIn(message: string): number | undefined {
  const m = /HistoryEvent\(id: (\d+)/.exec(message) ?? /event[ _]id[:=]?\s*(\d+)/i.exec(message) ?? /\bevent (\d+)\b/i.exec(message);
  return m ? Number(m[1]) : undefined;
}

/** The patch id of a patch marker (core_patch; its patch-data is written by Core, never through the codec). */
function patchIdOf(e: EventLike): string | undefined {
  const a = e.markerRecordedEventAttributes;
  const data = a?.markerName === 'core_patch' ? a.details?.['patch-data']?.payloads?.[0]?.data : undefined;
  try {
    return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { id?: string }).id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The event a non-determinism happened at: the one the message names by id; else the marker of the
 * patch it names ("patch marker encountered for change X"); else the first event scheduling the
 * activity it names ("activity type ... 'X'"). Undefined when the message names none of these.
 */
export function nondeterminismEvent(message: string, events: readonly EventLike[]): EventLike | { eventId: number } | undefined {
  const id = eventIdIn(message);
  if (id !== undefined) return events.find((e) => Number(e.eventId) === id) ?? { eventId: id };
  const patch = /patch marker encountered for change ([\w.-]+)/i.exec(message)?.[1];
  if (patch) return events.find((e) => patchIdOf(e) === patch);
  const activity = /activity type[^']*'([^']+)'/i.exec(message)?.[1];
  if (activity) return events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  return undefined;
}

/** An event type as people read it: 'EVENT_TYPE_MARKER_RECORDED' → 'MarkerRecorded'. */
export function eventTypeName(type: number | null | undefined): string | undefined {
  const name = type === null || type === undefined ? undefined : temporal.api.enums.v1.EventType[type];
  if (!name) return undefined;
  return name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

/** The outcome of one replay from the child's answer (undefined: no answer within the limit). */
export function outcomeOf(
  source: { source: string; workflowId: string; runId?: string; events: readonly EventLike[] },
  answer: { ok: boolean; error?: { name: string; message: string } } | undefined,
  limitMs: number,
): ReplayOutcome {
  const base = { source: source.source, workflowId: source.workflowId, ...(source.runId ? { runId: source.runId } : {}) };
  if (!answer)
    return {
      ...base,
      result: 'timed-out',
      error: `did not replay within ${limitMs / 1000} s: the workflow code loops or waits without yielding on this history (a change not guarded by patched()?)`,
    };
  if (answer.ok) return { ...base, result: 'replayed' };
  const message = `${answer.error?.name ?? 'Error'}: ${answer.error?.message ?? ''}`;
  if (!/DeterminismViolation|nondetermin/i.test(message)) return { ...base, result: 'failed', error: message };
  const event = nondeterminismEvent(answer.error?.message ?? '', source.events);
  const eventId = event?.eventId === undefined || event.eventId === null ? undefined : Number(event.eventId);
  const eventType = event && 'eventType' in event ? eventTypeName(event.eventType) : undefined;
  return { ...base, result: 'nondeterministic', ...(eventId !== undefined ? { eventId } : {}), ...(eventType ? { eventType } : {}), error: message };
}

/** One line of the report for people (the SDK's long preamble of a non-determinism cut to its reason). */
export function outcomeLine(o: ReplayOutcome): string {
  const where = o.eventId !== undefined ? ` at event ${o.eventId}${o.eventType ? ` (${o.eventType})` : ''}` : ' (the SDK names no event)';
  const what =
    o.result === 'replayed' ? 'replayed' : o.result === 'nondeterministic' ? `NON-DETERMINISTIC${where}` : o.result === 'timed-out' ? 'TIMED OUT' : 'FAILED';
  return `${o.source}${o.runId ? ` run ${o.runId}` : ''}: ${what}${o.error ? ` — ${shortReason(o.error)}` : ''}`;
}

/** The reason inside the SDK's non-determinism text (Core wraps it in a Rust debug dump: `message: "[TMPRL1100] …"`). */
export function shortReason(error: string): string {
  const inner = /message: "((?:[^"\\]|\\.)*)"/.exec(error)?.[1];
  return inner ? inner.replace(/\\"/g, '"') : error;
}

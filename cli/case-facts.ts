/**
 * A case's history turned into the few facts `case show` reports, each with its time: what the
 * case started with, what it published to visibility (stage, attention), the signals it received,
 * its local calls that failed (their retries happen inside a workflow task and never show as
 * pending activities), the runs of its chain. Reading payloads and failures needs the converter;
 * what is made of the facts is pure (cli/case-view.ts).
 */
import type { LoadedDataConverter } from '@temporalio/common';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { decodeFailure } from '@temporalio/common/lib/internal-non-workflow';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { payloadValue, payloadValues, type HistoryEvent, type RunHistory } from './case-history';

const EventType = temporal.api.enums.v1.EventType;

/** The visible attributes at a moment (absent: not set by that event). */
export interface Visible {
  stage?: string;
  /** null: cleared. */
  attention?: string | null;
  stageSince?: string;
  absSystem?: string;
}

export type CaseFact =
  | { type: 'started'; at: string; runId: string; eventId: number; visible: Visible; input: unknown; continued: boolean }
  | { type: 'visible'; at: string; runId: string; eventId: number; visible: Visible }
  | { type: 'signal'; at: string; runId: string; eventId: number; name: string; args: unknown[] }
  | { type: 'local-call-failed'; at: string; runId: string; eventId: number; activity: string; attempt: number; error: string }
  | { type: 'activity-failed'; at: string; runId: string; eventId: number; activity: string; attempt: number; error: string }
  | { type: 'workflow-task-failed'; at: string; runId: string; eventId: number; cause: string; error: string }
  | { type: 'closed'; at: string; runId: string; eventId: number; how: string };

const at = (e: HistoryEvent) => new Date(optionalTsToMs(e.eventTime) ?? 0).toISOString();
const id = (e: HistoryEvent) => Number(e.eventId ?? 0);

/** The failure as one line: each cause's type (when it has one) and message, outermost first. */
export async function failureText(converter: LoadedDataConverter, failure: temporal.api.failure.v1.IFailure | null | undefined): Promise<string> {
  if (!failure) return '';
  const decoded = await decodeFailure(converter.payloadCodecs, failure);
  const parts: string[] = [];
  for (let err: unknown = converter.failureConverter.failureToError(decoded, converter.payloadConverter); err instanceof Error; err = (err as Error).cause) {
    const type = err instanceof ApplicationFailure ? err.type : undefined;
    // The wrappers' own texts ("Activity task failed", "Encoded failure") say nothing to an operator.
    if (!(err instanceof TemporalFailure) || err instanceof ApplicationFailure || !/^(activity task failed|encoded failure)$/i.test(err.message))
      parts.push(type ? `${type}: ${err.message}` : err.message);
    if (parts.length > 4) break;
  }
  return parts.join(' ← ');
}

/** The K2 search attributes among indexed fields (a start's, or an upsert's). */
export function visibleOf(converter: LoadedDataConverter, fields: Record<string, temporal.api.common.v1.IPayload> | null | undefined): Visible {
  const get = (name: string) => (fields && name in fields ? payloadValue(converter, fields[name]) : undefined);
  const one = (v: unknown) => (Array.isArray(v) ? v[0] : v);
  const visible: Visible = {};
  const stage = one(get(SEARCH_ATTRIBUTES.stage.name));
  if (typeof stage === 'string') visible.stage = stage;
  if (fields && SEARCH_ATTRIBUTES.attentionReason.name in fields) {
    const reason = one(get(SEARCH_ATTRIBUTES.attentionReason.name));
    visible.attention = typeof reason === 'string' ? reason : null;
  }
  const since = one(get(SEARCH_ATTRIBUTES.stageSince.name));
  if (typeof since === 'string') visible.stageSince = since;
  const system = one(get(SEARCH_ATTRIBUTES.absSystem.name));
  if (typeof system === 'string') visible.absSystem = system;
  return visible;
}

/** The facts of one decoded run (cli/case-history.ts decodeHistory), in event order. */
export async function factsOf(run: RunHistory, converter: LoadedDataConverter): Promise<CaseFact[]> {
  const facts: CaseFact[] = [];
  const scheduled = new Map<number, string>();
  const base = (e: HistoryEvent) => ({ at: at(e), runId: run.runId, eventId: id(e) });
  for (const e of run.history.events ?? []) {
    switch (e.eventType) {
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: {
        const a = e.workflowExecutionStartedEventAttributes!;
        facts.push({
          type: 'started',
          ...base(e),
          visible: visibleOf(converter, a.searchAttributes?.indexedFields),
          input: payloadValues(converter, a.input)[0],
          continued: Boolean(a.continuedExecutionRunId),
        });
        break;
      }
      case EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        facts.push({
          type: 'visible',
          ...base(e),
          visible: visibleOf(converter, e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields),
        });
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: {
        const a = e.workflowExecutionSignaledEventAttributes!;
        facts.push({ type: 'signal', ...base(e), name: a.signalName ?? '', args: payloadValues(converter, a.input) });
        break;
      }
      case EventType.EVENT_TYPE_MARKER_RECORDED: {
        const a = e.markerRecordedEventAttributes!;
        if (a.markerName !== 'core_local_activity' || !a.failure) break;
        const data = payloadValues(converter, a.details?.data)[0] as { activity_type?: string; attempt?: number } | undefined;
        facts.push({
          type: 'local-call-failed',
          ...base(e),
          activity: data?.activity_type ?? '?',
          attempt: data?.attempt ?? 0,
          error: await failureText(converter, a.failure),
        });
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        scheduled.set(id(e), e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
        break;
      case EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: {
        const a = e.activityTaskFailedEventAttributes!;
        facts.push({
          type: 'activity-failed',
          ...base(e),
          activity: scheduled.get(Number(a.scheduledEventId ?? 0)) ?? '?',
          attempt: 0,
          error: await failureText(converter, a.failure),
        });
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: {
        const a = e.workflowTaskFailedEventAttributes!;
        facts.push({
          type: 'workflow-task-failed',
          ...base(e),
          cause: temporal.api.enums.v1.WorkflowTaskFailedCause[a.cause ?? 0] ?? String(a.cause),
          error: await failureText(converter, a.failure),
        });
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        facts.push({
          type: 'closed',
          ...base(e),
          how: (EventType[e.eventType] ?? '').replace('EVENT_TYPE_WORKFLOW_EXECUTION_', '').toLowerCase().replace(/_/g, '-'),
        });
        break;
      default:
        break;
    }
  }
  return facts;
}

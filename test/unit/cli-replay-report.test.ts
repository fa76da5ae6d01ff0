/** cli/replay-report.ts: a replay's answer as a verdict, with the event a non-determinism happened at. */
import { temporal } from '@temporalio/proto';
import { eventIdIn, eventTypeName, nondeterminismEvent, outcomeLine, outcomeOf, shortReason } from '../../cli/replay-report';

const T = temporal.api.enums.v1.EventType;
const patchMarker = (eventId: number, id: string) => ({
  eventId,
  eventType: T.EVENT_TYPE_MARKER_RECORDED,
  markerRecordedEventAttributes: {
    markerName: 'core_patch',
    details: { 'patch-data': { payloads: [{ data: Buffer.from(JSON.stringify({ id, deprecated: false })) }] } },
  },
});
// Event ids as numbers (a history from JSON has them so); the proto type says Long.
const events = [
  { eventId: 1, eventType: T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED },
  patchMarker(5, 'case-local-first'),
  patchMarker(6, 'case-right-on-every-path'),
  { eventId: 9, eventType: T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, activityTaskScheduledEventAttributes: { activityType: { name: 'sendDemand' } } },
] as unknown as temporal.api.history.v1.IHistoryEvent[];
const source = { source: 'case-KD1', workflowId: 'case-KD1', runId: 'r1', events };
const CORE =
  'Replay failed with a nondeterminism error. Details: Workflow activation completion failed: Failure { failure: Some(Failure { message: "[TMPRL1100] Nondeterminism error: Non-deprecated patch marker encountered for change case-right-on-every-path, but there is no corresponding change command!", source: "" }) }';

test('the event of a non-determinism: named by id, or the marker of the patch named, or the first scheduling of the activity named', () => {
  expect(eventIdIn('No command scheduled for event HistoryEvent(id: 9, ActivityTaskScheduled)')).toBe(9);
  expect(nondeterminismEvent(CORE, events)).toBe(events[2]);
  expect(nondeterminismEvent("Activity type of scheduled event 'sendDemand' does not match activity type of activity command 'issueDemand'", events)).toBe(
    events[3],
  );
  expect(nondeterminismEvent('something else entirely', events)).toBeUndefined();
  expect(eventTypeName(T.EVENT_TYPE_MARKER_RECORDED)).toBe('MarkerRecorded');
});

test('verdicts: replayed, non-deterministic at its event, failed, timed out', () => {
  expect(outcomeOf(source, { ok: true }, 60_000)).toEqual({ source: 'case-KD1', workflowId: 'case-KD1', runId: 'r1', result: 'replayed' });
  const nd = outcomeOf(source, { ok: false, error: { name: 'DeterminismViolationError', message: CORE } }, 60_000);
  expect(nd).toMatchObject({ result: 'nondeterministic', eventId: 6, eventType: 'MarkerRecorded' });
  expect(outcomeLine(nd)).toBe(
    'case-KD1 run r1: NON-DETERMINISTIC at event 6 (MarkerRecorded) — [TMPRL1100] Nondeterminism error: Non-deprecated patch marker encountered for change case-right-on-every-path, but there is no corresponding change command!',
  );
  expect(outcomeOf(source, { ok: false, error: { name: 'TypeError', message: 'x is undefined' } }, 60_000)).toMatchObject({
    result: 'failed',
    error: 'TypeError: x is undefined',
  });
  expect(outcomeOf(source, undefined, 5000)).toMatchObject({ result: 'timed-out', error: expect.stringContaining('did not replay within 5 s') });
  expect(shortReason('plain message')).toBe('plain message');
});

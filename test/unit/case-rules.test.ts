/** The case workflow's pure rules (workflows/case-rules.ts). */
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import {
  acceptedText,
  afterApplying,
  attentionFor,
  CallFailed,
  caseKeyOf,
  gkbWaitLeftMs,
  isStaleItem,
  MAX_NOTE_LENGTH,
  operatorActionProblem,
  parkingFor,
  shownAttention,
  withNotice,
  withoutNotice,
  earlyStatusesFor,
  MAX_EARLY_DEMAND_STATUSES,
  withEarlyStatus,
  type EarlyDemandStatus,
} from '../../workflows/case-rules';

const activityFailed = (cause: Error, activityType = 'checkClient') =>
  new ActivityFailure('Activity task failed', activityType, undefined, RetryState.NON_RETRYABLE_FAILURE, undefined, cause);
/** A retry horizon that ran out, as this SDK builds it from the server's failure: the last attempt's failure only in the proto (`failure.cause`). */
function horizonRanOut(last?: { type?: string; message: string }) {
  const timeout = new TimeoutFailure('activity ScheduleToClose timeout', undefined, TimeoutType.SCHEDULE_TO_CLOSE);
  timeout.failure = {
    message: timeout.message,
    timeoutFailureInfo: {},
    cause: last ? { message: last.message, applicationFailureInfo: { type: last.type } } : undefined,
  };
  return new ActivityFailure('Activity task timed out', 'sendDemand', undefined, RetryState.TIMEOUT, undefined, timeout);
}

describe('parkingFor: the failure type decides, not the activity', () => {
  test('each type of the vocabulary parks with its own code, whichever call failed', () => {
    expect(parkingFor(new CallFailed('abs', activityFailed(ApplicationFailure.nonRetryable('db refused', 'K2DatabaseError'))))).toEqual({
      code: 'k2-database-error',
      reason: 'db refused',
    });
    expect(parkingFor(new CallFailed('k2', activityFailed(ApplicationFailure.nonRetryable('queue refused', 'GkbQueueError'), 'enqueueGkbReport'))).code).toBe(
      'gkb-queue-error',
    );
    expect(parkingFor(new CallFailed('eko', ApplicationFailure.nonRetryable('EKO payment demand: HTTP 422', 'EkoRejected'))).code).toBe('eko-rejected');
    expect(parkingFor(ApplicationFailure.nonRetryable('ABS client info: fullname missing', 'AbsProtocolError')).code).toBe('abs-protocol');
  });

  test("a retry horizon that ran out is judged by the last attempt's failure (the timeout's cause)", () => {
    const parked = parkingFor(new CallFailed('eko', horizonRanOut({ type: 'K2DatabaseUnavailable', message: 'demand lookup: database is locked' })));
    expect(parked.code).toBe('k2-database-unavailable');
    expect(parked.reason).toMatch(/beyond the retry horizon; the last error: demand lookup: database is locked/);
  });

  test('a retryable failure whose next retry would pass the horizon is that failure itself, with retry state TIMEOUT', () => {
    const last = new ActivityFailure(
      'Activity task failed',
      'sendDemand',
      undefined,
      RetryState.TIMEOUT,
      undefined,
      ApplicationFailure.retryable('demand lookup: busy', 'K2DatabaseUnavailable'),
    );
    expect(parkingFor(new CallFailed('eko', last))).toEqual({
      code: 'k2-database-unavailable',
      reason: 'the call kept failing beyond the retry horizon; the last error: demand lookup: busy',
    });
    const untyped = new ActivityFailure(
      'Activity task failed',
      'checkClient',
      undefined,
      RetryState.TIMEOUT,
      undefined,
      ApplicationFailure.retryable('ABS answered HTTP 503', 'Error'),
    );
    expect(parkingFor(new CallFailed('abs', untyped)).code).toBe('abs-unavailable');
  });

  test('without a typed last failure, the integration the call went to decides', () => {
    expect(parkingFor(new CallFailed('eko', horizonRanOut())).code).toBe('eko-unavailable');
    expect(parkingFor(new CallFailed('abs', horizonRanOut({ message: 'activity StartToClose timeout' }))).code).toBe('abs-unavailable');
    expect(parkingFor(new CallFailed('gkb-queue', horizonRanOut({ type: 'Error', message: 'ECONNRESET' }))).code).toBe('gkb-queue-unavailable');
  });

  test("types of the code before the vocabulary (old histories) park as the integration's refusal", () => {
    expect(
      parkingFor(new CallFailed('eko', activityFailed(ApplicationFailure.nonRetryable('payment demand PTP… is not in the database', 'DemandMissing')))).code,
    ).toBe('eko-rejected');
    expect(parkingFor(new CallFailed('abs', activityFailed(ApplicationFailure.nonRetryable('ABS scan: bad', 'PermanentError')))).code).toBe('abs-protocol');
    expect(parkingFor(new CallFailed('k2', activityFailed(ApplicationFailure.nonRetryable('x', 'TypeError')))).code).toBe('k2-database-error');
  });

  test('anything else parks visibly as unclassified-failure instead of failing the workflow task', () => {
    const parked = parkingFor(new TypeError("Cannot read properties of undefined (reading 'iban')"));
    expect(parked.code).toBe('unclassified-failure');
    expect(parked.reason).toMatch(/^unexpected failure TypeError: Cannot read properties/);
  });
});

test('attention keeps the moment the case first needed it for that reason', () => {
  const first = attentionFor(undefined, { code: 'scan-missing', reason: 'no scan' }, 'account-checked', '2026-01-01T00:00:00.000Z');
  const again = attentionFor(first, { code: 'scan-missing', reason: 'still no scan' }, 'account-checked', '2026-03-01T00:00:00.000Z');
  expect(again).toEqual({ code: 'scan-missing', reason: 'still no scan', stage: 'account-checked', since: '2026-01-01T00:00:00.000Z' });
  const other = attentionFor(again, { code: 'abs-unavailable', reason: 'ABS away' }, 'account-checked', '2026-03-02T00:00:00.000Z');
  expect(other.since).toBe('2026-03-02T00:00:00.000Z');
});

test('an outbox item not newer than the applied one is stale; items without meta are applied as before', () => {
  expect(isStaleItem(10, { acceptedSeq: 9 })).toBe(true);
  expect(isStaleItem(10, { acceptedSeq: 10 })).toBe(true);
  expect(isStaleItem(10, { acceptedSeq: 11 })).toBe(false);
  expect(isStaleItem(undefined, { acceptedSeq: 1 })).toBe(false);
  expect(isStaleItem(10, undefined)).toBe(false);
  expect(afterApplying({ appliedSeq: 3, lastOverdueSeq: 3 }, { acceptedSeq: 7 }, false)).toEqual({ appliedSeq: 7, lastOverdueSeq: 3 });
  expect(afterApplying({ appliedSeq: 3, lastOverdueSeq: 3 }, { acceptedSeq: 7 }, true)).toEqual({ appliedSeq: 7, lastOverdueSeq: 7 });
  expect(afterApplying({ appliedSeq: 3 }, undefined, true)).toEqual({ appliedSeq: 3 });
});

describe('operatorActionProblem', () => {
  const today = '2026-12-01';
  test.each([
    [{ action: 'retry' }],
    [{ action: 'retry', note: 'ABS fixed' }],
    [{ action: 'close', note: 'written off' }],
    [{ action: 'supply-agreement-date', dbzDate: '2020-02-29' }],
    [{ action: 'supply-agreement-date', dbzDate: today }],
    [{ action: 'acknowledge', code: 'gkb-new-contract' }],
  ])('%j is accepted', (action) => {
    expect(operatorActionProblem(action, today, ['gkb-new-contract'])).toBeUndefined();
  });
  test.each([
    [{ action: 'supply-agreement-date', dbzDate: '2021-02-29' }, /is not a calendar date YYYY-MM-DD/],
    [{ action: 'supply-agreement-date', dbzDate: '2020.01.01' }, /is not a calendar date/],
    [{ action: 'supply-agreement-date' }, /is not a calendar date/],
    [{ action: 'supply-agreement-date', dbzDate: '2026-12-02' }, /is in the future \(today is 2026-12-01\)/],
    [{ action: 'reopen' }, /unknown action "reopen"/],
    [null, /an operator action is an object/],
    [{ action: 'retry', note: 'x'.repeat(MAX_NOTE_LENGTH + 1) }, /note is 501 characters long; at most 500/],
    [{ action: 'retry', note: 7 }, /note must be text/],
    [{ action: 'acknowledge', code: 'scan-missing' }, /only a notice can be acknowledged/],
    [{ action: 'acknowledge', code: 'gkb-waiting' }, /has no notice gkb-waiting/],
  ])('%j is refused', (action, message) => {
    expect(operatorActionProblem(action, today, ['gkb-new-contract'])).toMatch(message);
  });
});

test("notices: one per code, keeping its first since; a parked stage's attention wins", () => {
  const n1 = withNotice([], 'gkb-waiting', 'late', 'reported-to-gkb', 't1');
  const n2 = withNotice(n1, 'gkb-waiting', 'still late', 'reported-to-gkb', 't2');
  expect(n2).toEqual([{ code: 'gkb-waiting', reason: 'still late', stage: 'reported-to-gkb', since: 't1' }]);
  const both = withNotice(n2, 'gkb-new-contract', 'created', 'reported-to-gkb', 't3');
  expect(withoutNotice(both, 'gkb-waiting').map((n) => n.code)).toEqual(['gkb-new-contract']);
  const parked = { code: 'gkb-rejected' as const, reason: 'r', stage: 'closed' as const, since: 't4' };
  expect(shownAttention(parked, both)).toBe(parked);
  expect(shownAttention(undefined, both)).toBe(both[0]);
  expect(shownAttention(undefined, [])).toBeUndefined();
});

test('a skipped record reads as accepted "skipped"', () => {
  expect(acceptedText({ text: '', skipped: true })).toBe('skipped');
  expect(acceptedText({ text: 'Контракт обновлен.' })).toBe('Контракт обновлен.');
});

test('the first episode keeps the key of running cases; later episodes get their own', () => {
  expect(caseKeyOf('case-KD1', 'run-1', 1)).toBe('case-KD1/run-1');
  expect(caseKeyOf('case-KD1', 'run-1', 2)).toBe('case-KD1/run-1/episode-2');
  expect(caseKeyOf('case-KD1', 'run-1', 3)).not.toBe(caseKeyOf('case-KD1', 'run-1', 2));
});

test('the GKB result horizon counts from the queueing', () => {
  const queuedAt = '2026-01-01T00:00:00.000Z';
  expect(gkbWaitLeftMs(queuedAt, 3600_000, Date.parse(queuedAt) + 600_000)).toBe(3000_000);
  expect(gkbWaitLeftMs(queuedAt, 3600_000, Date.parse(queuedAt) + 7200_000)).toBe(0);
});

describe('early demand statuses (patch case-early-demand-status)', () => {
  const s = (reference: string, status: 'PC1' | 'PC3') => ({ reference, status });

  it('keeps them in arrival order, the newest MAX_EARLY_DEMAND_STATUSES at most', () => {
    let early: EarlyDemandStatus[] = [];
    for (let i = 0; i < MAX_EARLY_DEMAND_STATUSES + 3; i++) early = withEarlyStatus(early, s(`PTP${i}`, 'PC1'));
    expect(early).toHaveLength(MAX_EARLY_DEMAND_STATUSES);
    expect(early[0].reference).toBe('PTP3');
    expect(early[early.length - 1].reference).toBe(`PTP${MAX_EARLY_DEMAND_STATUSES + 2}`);
  });

  it('gives the statuses of the demand now known, and the others apart', () => {
    const early = [s('PTP1', 'PC1'), s('PTP2', 'PC3'), s('PTP1', 'PC3')];
    expect(earlyStatusesFor(early, 'PTP1')).toEqual({ matching: ['PC1', 'PC3'], others: [s('PTP2', 'PC3')] });
    expect(earlyStatusesFor(early, 'PTP9')).toEqual({ matching: [], others: early });
  });
});

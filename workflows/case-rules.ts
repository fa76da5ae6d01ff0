/**
 * The case workflow's rules, as small pure functions: what a failure means, how long attention
 * lasts, which outbox item is newer, what an operator may ask. No workflow APIs here (only the
 * failure classes, which are plain data), so they are unit-tested directly (test/unit/case-rules.test.ts).
 */
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import type { GkbRecordResult } from '../activities/gkb';
import { Attention, AttentionCode, CaseStage, LoanMeta, NOTICE_CODES, NoticeCode } from '../domain/case';
import type { DemandStatusCode } from '../domain/demand-status';
import { ATTENTION_FOR_FAILURE, isFailureType } from '../domain/failures';
import { isIsoDate } from '../domain/dates';

/** The integration a call goes to; each has its own activity options (proxy) in the case. */
export type CallGroup = 'abs' | 'eko' | 'k2' | 'gkb-queue';

/** A call's failure, with the integration it went to (the fallback when the failure names no type of domain/failures.ts). */
export class CallFailed extends Error {
  constructor(
    readonly via: CallGroup,
    readonly failure: unknown,
  ) {
    super(failure instanceof Error ? failure.message : String(failure));
    this.name = 'CallFailed';
  }
}

export interface Parking {
  code: AttentionCode;
  reason: string;
}

/** When the last failure names no type (a timeout, or an error of the code before the failure vocabulary), the integration's own code. */
const UNAVAILABLE_VIA: Record<CallGroup, AttentionCode> = {
  abs: 'abs-unavailable',
  eko: 'eko-unavailable',
  k2: 'k2-database-unavailable',
  'gkb-queue': 'gkb-queue-unavailable',
};
const REFUSED_VIA: Record<CallGroup, AttentionCode> = {
  abs: 'abs-protocol',
  eko: 'eko-rejected',
  k2: 'k2-database-error',
  'gkb-queue': 'gkb-queue-error',
};

/**
 * What a failed call means for the operator, decided by the failure's type (domain/failures.ts).
 * - A retry horizon that ran out is a TimeoutFailure whose cause is the last attempt's failure:
 *   its type decides; without a typed cause (a hung last attempt, an untyped error) the
 *   integration the call went to decides.
 * - A non-retryable ApplicationFailure of a known type parks with that type's code. Types of the
 *   code before the vocabulary ('PermanentError', error class names such as 'EkoRejectedError',
 *   'DemandMissing', still in old histories) park as the integration's refusal.
 * - Anything else (not an activity's failure at all: a defect) parks as 'unclassified-failure'
 *   and waits for an operator: visible, no loop, and the workflow task does not fail forever.
 */
export function parkingFor(err: unknown): Parking {
  const via = err instanceof CallFailed ? err.via : undefined;
  const raw = err instanceof CallFailed ? err.failure : err;
  const failure = raw instanceof ActivityFailure ? raw.cause : raw;
  const ranOut = failure instanceof TimeoutFailure || (raw instanceof ActivityFailure && RAN_OUT.has(raw.retryState));
  if (ranOut) {
    // The server ends a retryable failure whose next retry would pass the horizon with that failure itself, an attempt still running at it with a TimeoutFailure.
    const last =
      failure instanceof TimeoutFailure
        ? lastAttemptOf(failure)
        : failure instanceof ApplicationFailure
          ? { type: failure.type ?? undefined, message: failure.message }
          : undefined;
    const reason = `the call kept failing beyond the retry horizon${last ? `; the last error: ${last.message}` : ''}`;
    if (last && isFailureType(last.type)) return { code: ATTENTION_FOR_FAILURE[last.type], reason };
    if (via) return { code: UNAVAILABLE_VIA[via], reason };
  }
  if (failure instanceof ApplicationFailure) {
    if (isFailureType(failure.type)) return { code: ATTENTION_FOR_FAILURE[failure.type], reason: failure.message };
    if (via) return { code: REFUSED_VIA[via], reason: failure.message };
  }
  const name = failure instanceof Error ? (failure instanceof ApplicationFailure && failure.type ? failure.type : failure.name) : typeof failure;
  const message = failure instanceof Error ? failure.message : String(failure);
  return { code: 'unclassified-failure', reason: `unexpected failure ${name}: ${message}; an operator retries once it is understood` };
}

const RAN_OUT: ReadonlySet<RetryState | undefined> = new Set([RetryState.TIMEOUT, RetryState.MAXIMUM_ATTEMPTS_REACHED]);

/**
 * The last attempt's failure behind a retry horizon that ran out. The server sends it as the
 * timeout's cause; this SDK (1.24) builds the TimeoutFailure without its cause but keeps the
 * proto it came from (`failure`), so the cause is read there when the error has none.
 */
export function lastAttemptOf(timeout: TimeoutFailure): { type?: string; message: string } | undefined {
  const cause = timeout.cause;
  if (cause) return { type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : cause.name, message: cause.message };
  const proto = timeout.failure?.cause;
  if (!proto) return undefined;
  return { type: proto.applicationFailureInfo?.type ?? undefined, message: proto.message ?? '' };
}

/** The attention of a stage that parks: a stage parking again for the same reason keeps the moment it first needed attention. */
export function attentionFor(previous: Attention | undefined, parking: Parking, stage: CaseStage, now: string): Attention {
  const since = previous && previous.code === parking.code ? previous.since : now;
  return { code: parking.code, reason: parking.reason, stage, since };
}

/** An outbox item the case has already seen something newer than (or the same): ignored. Items without meta are applied as before. */
export function isStaleItem(appliedSeq: number | undefined, meta: LoanMeta | undefined): boolean {
  return meta !== undefined && appliedSeq !== undefined && meta.acceptedSeq <= appliedSeq;
}

/** The newest seq of the applied items, and of those with positive debt. */
export function afterApplying(
  seqs: { appliedSeq?: number; lastOverdueSeq?: number },
  meta: LoanMeta | undefined,
  overdue: boolean,
): { appliedSeq?: number; lastOverdueSeq?: number } {
  if (!meta) return seqs;
  return { appliedSeq: meta.acceptedSeq, lastOverdueSeq: overdue ? meta.acceptedSeq : seqs.lastOverdueSeq };
}

export const MAX_NOTE_LENGTH = 500;
const ACTIONS = ['retry', 'supply-agreement-date', 'close', 'acknowledge'] as const;

/**
 * Why an operator action is refused, or undefined when it may be applied. `today` is the
 * Kazakhstan date of workflow time; `notices` the notice codes the case shows now.
 */
export function operatorActionProblem(action: unknown, today: string, notices: readonly string[]): string | undefined {
  if (typeof action !== 'object' || action === null) return 'an operator action is an object such as {"action":"retry"}';
  const a = action as Record<string, unknown>;
  if (typeof a.action !== 'string' || !(ACTIONS as readonly string[]).includes(a.action))
    return `unknown action ${JSON.stringify(a.action)}: one of ${ACTIONS.join(', ')}`;
  if (a.note !== undefined && typeof a.note !== 'string') return 'note must be text';
  if (typeof a.note === 'string' && a.note.length > MAX_NOTE_LENGTH) return `note is ${a.note.length} characters long; at most ${MAX_NOTE_LENGTH}`;
  if (a.action === 'supply-agreement-date') {
    if (!isIsoDate(a.dbzDate)) return `dbzDate ${JSON.stringify(a.dbzDate)} is not a calendar date YYYY-MM-DD`;
    if (a.dbzDate > today) return `dbzDate ${a.dbzDate} is in the future (today is ${today})`;
  }
  if (a.action === 'acknowledge') {
    if (typeof a.code !== 'string' || !(NOTICE_CODES as readonly string[]).includes(a.code))
      return `only a notice can be acknowledged (${NOTICE_CODES.join(', ')}), not ${JSON.stringify(a.code)}`;
    if (!notices.includes(a.code)) return `the case has no notice ${a.code} to acknowledge`;
  }
  return undefined;
}

/** Adds (or keeps, with its first `since`) a notice of that code. */
export function withNotice(notices: readonly Attention[], code: NoticeCode, reason: string, stage: CaseStage, now: string): Attention[] {
  const kept = notices.find((n) => n.code === code);
  return [...notices.filter((n) => n.code !== code), { code, reason, stage, since: kept?.since ?? now }];
}

export function withoutNotice(notices: readonly Attention[], code: AttentionCode): Attention[] {
  return notices.filter((n) => n.code !== code);
}

/** The attention the case shows: a parked stage's wins over a notice while it lasts. */
export function shownAttention(parked: Attention | undefined, notices: readonly Attention[]): Attention | undefined {
  return parked ?? notices[0];
}

/** What an accepted GKB result reads in the case (a skipped record: GKB already had this state). */
export function acceptedText(result: Pick<GkbRecordResult, 'text' | 'skipped'>): string {
  return result.skipped ? 'skipped' : result.text;
}

/** The case's key in K2's database (demand, GKB reports): the first episode keeps the original key, so running cases keep theirs. */
export function caseKeyOf(workflowId: string, firstExecutionRunId: string, episode: number): string {
  return episode > 1 ? `${workflowId}/${firstExecutionRunId}/episode-${episode}` : `${workflowId}/${firstExecutionRunId}`;
}

/** Milliseconds the pending GKB record may still wait before the case needs attention (0: overdue already). */
export function gkbWaitLeftMs(queuedAt: string, horizonMs: number, nowMs: number): number {
  return Math.max(0, Date.parse(queuedAt) + horizonMs - nowMs);
}

/**
 * When the run's stage was entered (K2StageSince), at the start of a run: the attribute the run
 * started with when it is of the same stage (the dispatcher's start, or a predecessor of a
 * continue-as-new), now for a fresh run (a new case, a new episode), unknown for a continued run
 * whose predecessor never published it (started before the patch 'case-stage-since').
 */
export function stageSinceAtStart(startedWith: { stage?: string; since?: Date }, stage: CaseStage, continued: boolean, now: Date): Date | undefined {
  if (startedWith.since && startedWith.stage === stage) return startedWith.since;
  return continued ? undefined : now;
}

/** A demand status EKO reported before the case knew its demand (patch 'case-early-demand-status'). */
export interface EarlyDemandStatus {
  reference: string;
  status: DemandStatusCode;
}

/** EKO sends two statuses per demand; a few repeats at most. More is noise, and history stays small. */
export const MAX_EARLY_DEMAND_STATUSES = 8;

/** The early statuses with `status` added, the newest MAX_EARLY_DEMAND_STATUSES kept. */
export function withEarlyStatus(early: readonly EarlyDemandStatus[], status: EarlyDemandStatus): EarlyDemandStatus[] {
  return [...early, status].slice(-MAX_EARLY_DEMAND_STATUSES);
}

/** Splits the early statuses into those of the demand now known (in arrival order) and those of other references. */
export function earlyStatusesFor(early: readonly EarlyDemandStatus[], reference: string): { matching: DemandStatusCode[]; others: EarlyDemandStatus[] } {
  return { matching: early.filter((s) => s.reference === reference).map((s) => s.status), others: early.filter((s) => s.reference !== reference) };
}

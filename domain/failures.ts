/**
 * The failure vocabulary of K2's calls: one pair of types per integration (ABS, EKO, K2's own
 * database, the GKB queue). Activities throw an ApplicationFailure whose `type` is one of these;
 * the case decides what a failure means from that type alone, never from which activity failed.
 * Pure: no I/O, no Temporal imports (the workflow bundle and the activities both use it).
 */
import type { AttentionCode } from './case';

export const FAILURE_TYPES = {
  /** ABS away: network error, timeout, 5xx, 408, 429. Retryable. */
  absUnavailable: 'AbsUnavailable',
  /** ABS answered something the contract does not allow (malformed body, unexpected status). Not retryable. */
  absProtocol: 'AbsProtocolError',
  /** EKO away. Retryable. */
  ekoUnavailable: 'EkoUnavailable',
  /** EKO refused the demand (4xx). Not retryable. */
  ekoRejected: 'EkoRejected',
  /** K2's own database unreachable or busy. Retryable. */
  k2DatabaseUnavailable: 'K2DatabaseUnavailable',
  /** K2's own database refused the statement or holds inconsistent data (a defect or a bad restore). Not retryable. */
  k2DatabaseError: 'K2DatabaseError',
  /** The GKB record queue (K2's database behind it) unreachable or busy. Retryable. */
  gkbQueueUnavailable: 'GkbQueueUnavailable',
  /** The GKB queue refused the record. Not retryable. */
  gkbQueueError: 'GkbQueueError',
} as const;

export type FailureType = (typeof FAILURE_TYPES)[keyof typeof FAILURE_TYPES];

export const RETRYABLE_FAILURE_TYPES: ReadonlySet<string> = new Set<FailureType>([
  FAILURE_TYPES.absUnavailable,
  FAILURE_TYPES.ekoUnavailable,
  FAILURE_TYPES.k2DatabaseUnavailable,
  FAILURE_TYPES.gkbQueueUnavailable,
]);

/** The attention code a failure type parks a case with. */
export const ATTENTION_FOR_FAILURE: Readonly<Record<FailureType, AttentionCode>> = {
  AbsUnavailable: 'abs-unavailable',
  AbsProtocolError: 'abs-protocol',
  EkoUnavailable: 'eko-unavailable',
  EkoRejected: 'eko-rejected',
  K2DatabaseUnavailable: 'k2-database-unavailable',
  K2DatabaseError: 'k2-database-error',
  GkbQueueUnavailable: 'gkb-queue-unavailable',
  GkbQueueError: 'gkb-queue-error',
};

export function isFailureType(type: string | undefined | null): type is FailureType {
  return typeof type === 'string' && Object.prototype.hasOwnProperty.call(ATTENTION_FOR_FAILURE, type);
}

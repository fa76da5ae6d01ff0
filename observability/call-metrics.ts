/**
 * Latency and outcome of every call K2 makes to ABS, EKO and GKB (recorded by the clients in
 * integrations/, in the worker that runs them):
 *
 *   k2_call_duration_seconds{system, call}     histogram: from the request to the answer (for a scan, to its first bytes)
 *   k2_calls_total{system, call, outcome}      counter: one per call
 *
 * `outcome` is `ok`, `business-answer` (ABS answered error_code ≠ 0: the system works, the case
 * decides), `cancelled` (K2 itself gave up the call: a local attempt's timeout, a shutdown), or the
 * error class: the failure type K2 turns the error into, as the Web UI shows it (domain/failures.ts
 * for ABS and EKO: AbsUnavailable, AbsProtocolError, EkoUnavailable, EkoRejected; for GKB the batch
 * activities' types: GkbTransientError, or the fault kind ScbBusinessFault, ScbValidationFault,
 * Authentication, http, Protocol). A demand sent is `{system="eko", call="sendDemand", outcome="ok"}`.
 */
import type { MetricsRegistry } from './metrics';

export type ExternalSystem = 'abs' | 'eko' | 'gkb';

export const CALL_DURATION_METRIC = 'k2_call_duration_seconds';
/** Seconds: ABS answers in tens of milliseconds, GKB uploads may take a minute (GKB_TIMEOUT_MS). */
export const CALL_SECONDS_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Every histogram K2 declares, with its buckets (the worker installs them in the SDK's Runtime). */
export const K2_HISTOGRAM_BUCKETS: Readonly<Record<string, readonly number[]>> = { [CALL_DURATION_METRIC]: CALL_SECONDS_BUCKETS };

export interface CallMetrics {
  record(system: ExternalSystem, call: string, seconds: number, outcome: string): void;
}

export function createCallMetrics(registry: MetricsRegistry): CallMetrics {
  const duration = registry.histogram(
    CALL_DURATION_METRIC,
    'Calls to ABS, EKO and GKB: seconds from the request to the answer, by system and call.',
    CALL_SECONDS_BUCKETS,
  );
  const calls = registry.counter(
    'k2_calls_total',
    'Calls to ABS, EKO and GKB by system, call and outcome (ok, business-answer, cancelled, or the error class).',
  );
  return {
    record(system, call, seconds, outcome) {
      duration.observe(seconds, { system, call });
      calls.inc({ system, call, outcome });
    },
  };
}

/** How a client names the outcome of a call: the error class of what it threw, and optionally a business answer among its results. */
export interface CallClassifier<T> {
  errorClass(err: unknown): string;
  resultOutcome?(result: T): string;
}

/**
 * Runs one call and records it. A call whose caller's signal has aborted is `cancelled`, whatever it
 * threw. Without metrics it only runs the call.
 */
export async function timedCall<T>(
  metrics: CallMetrics | undefined,
  system: ExternalSystem,
  call: string,
  signal: AbortSignal | undefined,
  classifier: NoInfer<CallClassifier<T>>,
  fn: () => Promise<T>,
): Promise<T> {
  if (!metrics) return fn();
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const result = await fn();
    metrics.record(system, call, seconds(), classifier.resultOutcome?.(result) ?? 'ok');
    return result;
  } catch (err) {
    metrics.record(system, call, seconds(), signal?.aborted ? 'cancelled' : classifier.errorClass(err));
    throw err;
  }
}

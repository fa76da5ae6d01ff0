/**
 * Start-up steps that need Temporal or K2's database wait out their short outages: a worker started
 * while the server restarts or fails over (no connection yet, UNAVAILABLE, DEADLINE_EXCEEDED) or
 * while PostgreSQL is not up yet tries again instead of exiting, within a bound; any other failure,
 * or the bound passed, ends start-up. Nothing here loads @temporalio/worker: the API migrates through
 * this module too (temporal/native-connection.ts has the worker's own isTemporalUnreachable).
 */
import { isGrpcServiceError } from '@temporalio/client';
import { type Db, migrate } from '../db';
import { isTransientDbError } from '../db/errors';

/** How long a process waits at start for Temporal or its database before it gives up and exits. */
export const STARTUP_WAIT_MS = 120_000;

/** gRPC status codes (grpc/status.h): DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14. */
export const GRPC_TRANSIENT_CODES: readonly number[] = [4, 8, 14];
const TRANSIENT = new Set<number>(GRPC_TRANSIENT_CODES);

/** True for a gRPC answer that says "not now" rather than "no". */
export function isTransientTemporalError(err: unknown): boolean {
  return isGrpcServiceError(err) && TRANSIENT.has(err.code);
}

export interface StartupRetryOptions {
  /** Total time allowed for the step. */
  limitMs: number;
  onRetry: (attempt: number, err: unknown) => void;
  /** Which failures are worth another try (default: isTransientTemporalError). */
  isTransient?: (err: unknown) => boolean;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** Runs `step`, again after 1, 2, 4 … (at most 15) seconds while it fails transiently and `limitMs` allows. */
export async function retryingTransient<T>(step: () => Promise<T>, opts: StartupRetryOptions): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const isTransient = opts.isTransient ?? isTransientTemporalError;
  const deadline = now() + opts.limitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      const waitMs = Math.min(1000 * 2 ** (attempt - 1), 15_000);
      if (!isTransient(err) || now() + waitMs > deadline) throw err;
      opts.onRetry(attempt, err);
      await sleep(waitMs);
    }
  }
}

/** K2's database migrated, once PostgreSQL answers: the worker and the API may start before it is up (a whole system started at once). */
export async function migrateWhenReady(db: Db, onRetry: StartupRetryOptions['onRetry'], limitMs = STARTUP_WAIT_MS): Promise<void> {
  await retryingTransient(() => migrate(db), { limitMs, isTransient: isTransientDbError, onRetry });
}

import { NativeConnection } from '@temporalio/worker';
import { isTransientDbError } from '../../db/errors';
import { isTemporalUnreachable } from '../../temporal/native-connection';
import { retryingTransient } from '../../worker/startup-retry';

/** gRPC status codes (grpc/status.h). */
const status = { PERMISSION_DENIED: 7, UNAVAILABLE: 14 };

/** An error as @temporalio/client's isGrpcServiceError recognises it. */
const grpcError = (code: number) => Object.assign(new Error(`gRPC ${code}`), { name: 'ServiceError', code, details: 'x', metadata: {} });

function clock() {
  let t = 0;
  const waits: number[] = [];
  return { now: () => t, sleep: async (ms: number) => void (waits.push(ms), (t += ms)), waits };
}

test("an UNAVAILABLE server is waited out with growing pauses, and the step's value returned", async () => {
  const c = clock();
  let calls = 0;
  const retries: number[] = [];
  const value = await retryingTransient(
    async () => {
      if (++calls < 4) throw grpcError(status.UNAVAILABLE);
      return 'ok';
    },
    { limitMs: 60_000, onRetry: (a) => retries.push(a), ...c },
  );
  expect(value).toBe('ok');
  expect(c.waits).toEqual([1000, 2000, 4000]);
  expect(retries).toEqual([1, 2, 3]);
});

test('a refusal (not transient) ends start-up at once', async () => {
  const c = clock();
  await expect(
    retryingTransient(
      async () => {
        throw grpcError(status.PERMISSION_DENIED);
      },
      { limitMs: 60_000, onRetry: () => undefined, ...c },
    ),
  ).rejects.toThrow('gRPC 7');
  expect(c.waits).toEqual([]);
});

test('an outage longer than the limit ends start-up with the last error', async () => {
  const c = clock();
  await expect(
    retryingTransient(
      async () => {
        throw grpcError(status.UNAVAILABLE);
      },
      { limitMs: 10_000, onRetry: () => undefined, ...c },
    ),
  ).rejects.toThrow('gRPC 14');
  expect(c.waits).toEqual([1000, 2000, 4000]);
});

test('another kind of step waits out what its own predicate calls transient, and only that', async () => {
  const c = clock();
  let calls = 0;
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const value = await retryingTransient(
    async () => {
      if (++calls < 3) throw refused;
      return 'migrated';
    },
    { limitMs: 60_000, onRetry: () => undefined, isTransient: isTransientDbError, ...c },
  );
  expect(value).toBe('migrated');
  expect(c.waits).toEqual([1000, 2000]);
  // With its own predicate, an UNAVAILABLE is not waited out.
  await expect(
    retryingTransient(
      async () => {
        throw grpcError(status.UNAVAILABLE);
      },
      { limitMs: 60_000, onRetry: () => undefined, isTransient: isTransientDbError, ...c },
    ),
  ).rejects.toThrow('gRPC 14');
});

test("the worker's connection to a server that is not up yet is a TransportError: waited out", async () => {
  const refused = await NativeConnection.connect({ address: '127.0.0.1:1' }).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isTemporalUnreachable(refused)).toBe(true);
  expect(isTemporalUnreachable(grpcError(status.UNAVAILABLE))).toBe(false);
});

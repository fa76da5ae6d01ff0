/**
 * The worker's V8 heap bound. Without one, V8 on a big machine lets each heap (the main thread's and
 * the workflow thread's) grow to gigabytes before it collects hard, so a worker's memory follows the
 * cases it has worked rather than the cases it keeps: bench/README.md ("topology", worker memory).
 * Every launch of the worker (scripts/system.ts, scripts/cluster.ts, docker-compose.yml) passes
 * WORKER_NODE_ARGS; the worker refuses to start when its heap is too small for its cache.
 */
import v8 from 'node:v8';

/** Each V8 heap of the worker process (main thread and workflow thread) is bounded by this. */
export const WORKER_HEAP_MIB = 384;
export const WORKER_NODE_ARGS: readonly string[] = [`--max-old-space-size=${WORKER_HEAP_MIB}`];

/** What the workflow thread's heap holds besides the cached cases (the bundle, the SDK's state). */
const HEAP_BASE_MIB = 96;
/** A cached case in the workflow thread's heap, with room: the bench measured about 0.35 MiB of the process's memory per cached case. */
const HEAP_PER_CACHED_CASE_MIB = 0.5;

export function heapNeededMiB(maxCachedWorkflows: number): number {
  return Math.ceil(HEAP_BASE_MIB + maxCachedWorkflows * HEAP_PER_CACHED_CASE_MIB);
}

export function heapLimitMiB(): number {
  return Math.floor(v8.getHeapStatistics().heap_size_limit / 2 ** 20);
}

/** Why the worker must not start with this cache and heap (null: it may). A worker that ran out of heap would crash mid-task, over and over. */
export function heapProblem(maxCachedWorkflows: number, limitMiB: number): string | null {
  const needed = heapNeededMiB(maxCachedWorkflows);
  if (limitMiB >= needed) return null;
  return (
    `K2_WORKER_MAX_CACHED_WORKFLOWS=${maxCachedWorkflows} needs a V8 heap of at least ${needed} MiB, and this worker has ${limitMiB} MiB: ` +
    `lower K2_WORKER_MAX_CACHED_WORKFLOWS, or start the worker with node --max-old-space-size=${needed} (or more)`
  );
}

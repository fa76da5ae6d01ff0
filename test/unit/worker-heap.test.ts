/** The worker's heap bound against its cache (worker/heap.ts). */
import { spawnSync } from 'node:child_process';
import { heapLimitMiB, heapNeededMiB, heapProblem, WORKER_HEAP_MIB, WORKER_NODE_ARGS } from '../../worker/heap';
import { CONFIG_KEYS } from '../../config';

describe('heapProblem', () => {
  it('accepts the default cache in the heap every launch gives the worker', () => {
    const defaultCache = Number(CONFIG_KEYS.K2_WORKER_MAX_CACHED_WORKFLOWS.default);
    expect(heapProblem(defaultCache, WORKER_HEAP_MIB)).toBeNull();
  });

  it('refuses a cache the heap cannot hold, naming both fixes', () => {
    expect(heapProblem(2000, WORKER_HEAP_MIB)).toBe(
      `K2_WORKER_MAX_CACHED_WORKFLOWS=2000 needs a V8 heap of at least ${heapNeededMiB(2000)} MiB, and this worker has ${WORKER_HEAP_MIB} MiB: ` +
        `lower K2_WORKER_MAX_CACHED_WORKFLOWS, or start the worker with node --max-old-space-size=${heapNeededMiB(2000)} (or more)`,
    );
  });

  it('needs more heap for a bigger cache', () => {
    expect(heapNeededMiB(1000)).toBeGreaterThan(heapNeededMiB(500));
    expect(heapProblem(0, heapNeededMiB(0))).toBeNull();
    expect(heapProblem(1, heapNeededMiB(0))).not.toBeNull();
  });
});

describe('heapLimitMiB', () => {
  it('reads the bound WORKER_NODE_ARGS set in a process started with them', () => {
    const r = spawnSync(process.execPath, [...WORKER_NODE_ARGS, '-p', "Math.floor(require('v8').getHeapStatistics().heap_size_limit / 2 ** 20)"], {
      encoding: 'utf8',
    });
    const limit = Number(r.stdout.trim());
    expect(limit).toBeGreaterThanOrEqual(WORKER_HEAP_MIB);
    expect(limit).toBeLessThan(WORKER_HEAP_MIB + 128);
    // This test process has no such bound (V8's default on this machine is far larger).
    expect(heapLimitMiB()).toBeGreaterThan(0);
  });
});

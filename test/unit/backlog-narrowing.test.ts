/** The worker's backlog-narrowing slots (worker/backlog-narrowing.ts): how many workflow tasks it may run at once. */
import { NarrowingSlots, watchOutboxBacklog } from '../../worker/backlog-narrowing';

const ctx = {};
/** Resolves to 'reserved' if the reservation completes within a few turns of the event loop, else 'waiting'. */
async function settles(p: Promise<unknown>): Promise<'reserved' | 'waiting'> {
  return Promise.race([p.then(() => 'reserved' as const), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 20))]);
}

test('hands out maxSlots permits, then makes the next reservation wait until one is released', async () => {
  const slots = new NarrowingSlots({ maxSlots: 3, narrowSlots: 2 });
  const signal = new AbortController().signal;
  for (let i = 0; i < 3; i++) await slots.reserveSlot(ctx, signal);
  expect(slots.inUse).toBe(3);
  expect(slots.tryReserveSlot()).toBeNull();
  const fourth = slots.reserveSlot(ctx, signal);
  expect(await settles(fourth)).toBe('waiting');
  slots.releaseSlot();
  expect(await settles(fourth)).toBe('reserved');
  expect(slots.inUse).toBe(3);
});

test('while narrowed only narrowSlots are handed out; permits already held are not taken back', async () => {
  const slots = new NarrowingSlots({ maxSlots: 4, narrowSlots: 2 });
  const signal = new AbortController().signal;
  for (let i = 0; i < 3; i++) await slots.reserveSlot(ctx, signal);
  expect(slots.setNarrowed(true)).toBe(true);
  expect(slots.setNarrowed(true)).toBe(false);
  expect(slots.limit).toBe(2);
  expect(slots.inUse).toBe(3);

  const next = slots.reserveSlot(ctx, signal);
  slots.releaseSlot(); // 2 held: still at the narrowed limit
  expect(await settles(next)).toBe('waiting');
  slots.releaseSlot(); // 1 held
  expect(await settles(next)).toBe('reserved');
  expect(slots.tryReserveSlot()).toBeNull();
});

test('widening again lets waiting reservations through at once, up to maxSlots', async () => {
  const slots = new NarrowingSlots({ maxSlots: 4, narrowSlots: 2 });
  const signal = new AbortController().signal;
  slots.setNarrowed(true);
  await slots.reserveSlot(ctx, signal);
  await slots.reserveSlot(ctx, signal);
  const waiting = [1, 2, 3].map(() => slots.reserveSlot(ctx, signal));
  expect(await Promise.all(waiting.map(settles))).toEqual(['waiting', 'waiting', 'waiting']);
  slots.setNarrowed(false);
  const outcome = await Promise.all(waiting.map(settles));
  expect(outcome.filter((o) => o === 'reserved')).toHaveLength(2);
  expect(slots.inUse).toBe(4);
  slots.releaseSlot();
  expect(await Promise.all(waiting.map(settles))).toEqual(['reserved', 'reserved', 'reserved']);
});

test('an aborted reservation rejects with the abort reason and holds no permit', async () => {
  const slots = new NarrowingSlots({ maxSlots: 2, narrowSlots: 2 });
  const free = new AbortController().signal;
  await slots.reserveSlot(ctx, free);
  await slots.reserveSlot(ctx, free);
  const abort = new AbortController();
  const pending = slots.reserveSlot(ctx, abort.signal);
  const reason = new Error('poller gone');
  abort.abort(reason);
  await expect(pending).rejects.toBe(reason);
  slots.releaseSlot();
  expect(slots.inUse).toBe(1);
  // The released slot went to nobody: the aborted reservation no longer waits for it.
  expect(slots.tryReserveSlot()).toEqual({});
  expect(slots.inUse).toBe(2);
});

test('narrowSlots must lie between 1 and maxSlots', () => {
  expect(() => new NarrowingSlots({ maxSlots: 4, narrowSlots: 5 })).toThrow(RangeError);
  expect(() => new NarrowingSlots({ maxSlots: 4, narrowSlots: 0 })).toThrow(RangeError);
});

test('the backlog watcher narrows and widens and reports each switch once; failed checks change nothing and are reported once per run', async () => {
  jest.useFakeTimers();
  try {
    const slots = new NarrowingSlots({ maxSlots: 40, narrowSlots: 4 });
    const answers: Array<boolean | Error> = [true, true, new Error('database is locked'), new Error('database is locked'), false, new Error('gone again')];
    const changes: boolean[] = [];
    const errors: unknown[] = [];
    const stop = watchOutboxBacklog(
      slots,
      async () => {
        const a = answers.shift();
        if (a instanceof Error) throw a;
        return a ?? false;
      },
      { everyMs: 1000, onChange: (narrowed) => changes.push(narrowed), onError: (e) => errors.push(e) },
    );
    const tick = async () => {
      await jest.advanceTimersByTimeAsync(1000);
    };
    await tick();
    expect(slots.limit).toBe(4);
    await tick();
    await tick();
    await tick();
    expect(slots.narrowed).toBe(true);
    expect(errors).toHaveLength(1);
    await tick();
    expect(slots.limit).toBe(40);
    expect(changes).toEqual([true, false]);
    await tick();
    expect(errors).toHaveLength(2);
    stop();
    await tick();
    expect(changes).toEqual([true, false]);
  } finally {
    jest.useRealTimers();
  }
});

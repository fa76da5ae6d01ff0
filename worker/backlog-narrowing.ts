/**
 * Backlog narrowing: while accepted loans wait in the outbox for their case to start, the worker runs
 * fewer workflow tasks at once (the API's counterpart, the burst hold, is api/burst-hold.ts).
 *
 * Why: every case the worker executes costs Temporal about as much as starting one (its workflow
 * task, its search attributes, then EKO's statuses and GKB's result). While the outbox holds a
 * backlog of accepted loans whose cases are not started yet, Temporal divides its capacity between
 * starting those and executing the ones already started; on the 2-core reference machine (one
 * SQLite-backed dev server) a worker executing at full speed cut the start rate of a 10,000-loan
 * batch to about 0.6 of the bare rate, a worker running 4 workflow tasks at once left it at about
 * 0.9 (bench/README.md, api-ingest); on the cluster (Temporal server on PostgreSQL, two workers) a
 * 3,000-loan POST started at 0.83 of the floor's rate narrowed, 0.59 at full width (bench/README.md,
 * topology). An accepted loan whose case has not started is only an outbox row: the
 * operator cannot find it in the Web UI yet. So starting every case comes first, and executing
 * them catches up once the backlog is gone.
 *
 * Rule: the worker runs at most `maxSlots` workflow tasks at once; while the outbox holds at least
 * `backlog` rows not yet handed to Temporal (checked every `everyMs`), at most `narrowSlots`. The
 * worker never stops: cases, EKO's statuses and GKB's results keep moving, more slowly. A slot
 * already handed out is not taken back; the limit applies to the next ones. The backlog comes from
 * K2_WORKER_NARROW_BACKLOG (worker/main.ts; 0 turns the rule off).
 */
import type { CustomSlotSupplier, SlotPermit, WorkflowSlotInfo } from '@temporalio/worker';

export interface NarrowingSlotSettings {
  maxSlots: number;
  narrowSlots: number;
}

/** The worker's workflow-task slots (a Temporal SDK custom slot supplier). */
export class NarrowingSlots implements CustomSlotSupplier<WorkflowSlotInfo> {
  readonly type = 'custom' as const;
  /** Permits handed out and not yet released (reserved for a poll or running a task). */
  private held = 0;
  private narrow = false;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly settings: NarrowingSlotSettings) {
    if (settings.narrowSlots < 1 || settings.narrowSlots > settings.maxSlots) throw new RangeError('narrowSlots must be between 1 and maxSlots');
  }

  /** Whether the outbox holds a backlog; returns true when that changed. */
  setNarrowed(busy: boolean): boolean {
    if (busy === this.narrow) return false;
    this.narrow = busy;
    this.wake();
    return true;
  }

  get narrowed(): boolean {
    return this.narrow;
  }

  get limit(): number {
    return this.narrow ? this.settings.narrowSlots : this.settings.maxSlots;
  }

  get inUse(): number {
    return this.held;
  }

  async reserveSlot(_ctx: unknown, abortSignal: AbortSignal): Promise<SlotPermit> {
    while (this.held >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        if (abortSignal.aborted) return reject(abortSignal.reason);
        const onAbort = () => {
          const i = this.waiting.indexOf(ready);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(abortSignal.reason);
        };
        const ready = () => {
          abortSignal.removeEventListener('abort', onAbort);
          resolve();
        };
        abortSignal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(ready);
      });
    }
    this.held += 1;
    return {};
  }

  tryReserveSlot(): SlotPermit | null {
    if (this.held >= this.limit) return null;
    this.held += 1;
    return {};
  }

  markSlotUsed(): void {
    // Nothing to track: a reserved slot counts against the limit whether it runs a task or waits in a poll.
  }

  releaseSlot(): void {
    this.held = Math.max(0, this.held - 1);
    this.wake();
  }

  /** Lets as many waiting reservations retry as the limit now allows. */
  private wake(): void {
    let free = this.limit - this.held;
    while (free > 0 && this.waiting.length > 0) {
      this.waiting.shift()!();
      free -= 1;
    }
  }
}

/**
 * Checks the outbox backlog every `everyMs` and narrows or widens the slots; `onChange` hears each
 * switch (for the log and the metric). A failed check leaves the mode as it was; `onError` hears the
 * first failure of a run of them, not one a second while the database is away. Returns the stop
 * function.
 */
export function watchOutboxBacklog(
  slots: NarrowingSlots,
  hasBacklog: () => Promise<boolean>,
  options: { everyMs: number; onChange: (narrowed: boolean) => void; onError: (err: unknown) => void },
): () => void {
  let checking = false;
  let failing = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    hasBacklog()
      .then((busy) => {
        failing = false;
        if (slots.setNarrowed(busy)) options.onChange(busy);
      })
      .catch((err) => {
        if (!failing) options.onError(err);
        failing = true;
      })
      .finally(() => {
        checking = false;
      });
  }, options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

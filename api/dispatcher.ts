/**
 * Drains the loan outbox into Temporal. Why an outbox rather than starting workflows in the request:
 * EKO sends up to 50,000 loans at once and must get its answer in seconds, and "error_code 0" must
 * mean durably accepted even if Temporal is briefly unreachable. The API commits the items in one
 * database transaction and answers; this loop then signals-with-start each case, at its own pace,
 * retrying until Temporal has it. Re-dispatching a row after a crash is harmless: the case ignores
 * an update identical to what it already has.
 *
 * A continuous pipeline, not rounds with a barrier: up to K2_DISPATCH_CONCURRENCY calls are in
 * flight at all times; rows are read ahead (K2_DISPATCH_BATCH at a time, after the last id read)
 * whenever fewer than a batch are waiting, so one slow call never holds up the others. Rows of one
 * contract go strictly one after another, in id order; different contracts go in parallel. A row is
 * marked dispatched only after Temporal accepted it (marks are written in batches, one transaction
 * each). After a failure the failed row and the later rows of its contract are left pending; when
 * the calls in flight have finished, the dispatcher backs off and reads again from the oldest
 * pending row.
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';
import { markDispatched, markDispatchFailed, pendingLoans, countPending, OutboxRow } from '../db/outbox';
import { caseWorkflowId, CaseSettings } from '../domain/case';
import type { Loan } from '../domain/loan';
import { isZeroMoney } from '../domain/money';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { IntakeFirst, type ArrivalRate } from './intake-first';

export function caseSettingsFrom(config: Config): CaseSettings {
  return { absHorizonMs: config.abs.transientHorizonMs, scanRecheckMs: config.abs.scanRecheckMs, maxHistoryEvents: 2000 };
}

/** A nudge wakes the idle dispatcher after this delay, so a burst of small commits causes one read. */
const NUDGE_DEBOUNCE_MS = 5;
const IDLE_POLL_MS = 1000;
/** Dispatched marks are written when this many are due, or this long after the first one. */
const MARK_BATCH = 500;
const MARK_EVERY_MS = 100;
/** How often the pending gauge is recounted while a backlog is being drained. */
const RECOUNT_EVERY_MS = 1000;
/** While holding back for a burst of requests (intake-first.ts), how often the dispatcher looks again. */
const HOLD_RECHECK_MS = 50;

export class OutboxDispatcher {
  private running = false;
  private wake?: () => void;
  private nudgeTimer?: NodeJS.Timeout;
  /** New rows may exist after the last read (a nudge came). */
  private moreMayExist = true;
  private loop?: Promise<void>;
  private readonly dispatched;
  private readonly failures;
  private readonly pending;

  // pipeline state
  /** Highest id read so far; reads continue after it. */
  private cursor = 0;
  /** Contracts whose rows are read but not yet handed over, each in id order; the head is in flight or next. */
  private readonly chains = new Map<string, OutboxRow[]>();
  /** Contracts ready to go (no row of theirs in flight), in arrival order. */
  private readonly ready: string[] = [];
  /** Rows read and not yet finished, the ones in flight included. */
  private queuedRows = 0;
  private inFlight = 0;
  /** Contracts with a failed row in this epoch: their later rows wait for the next read from the start. */
  private readonly blocked = new Set<string>();
  private failedSinceReset = false;
  private doneIds: number[] = [];
  private markTimer?: NodeJS.Timeout;
  private marking: Promise<void> = Promise.resolve();
  private lastRecount = 0;
  /** The last read returned fewer rows than asked: every pending row is in memory. */
  private exhausted = false;
  private readonly intakeFirst: IntakeFirst;

  constructor(
    private readonly db: Db,
    private readonly client: Client,
    private readonly config: Config,
    private readonly logger: Logger,
    metrics: Metrics,
    /** The service requests' arrivals (intake first); without it the dispatcher never holds back. */
    private readonly arrivals?: ArrivalRate,
  ) {
    const held = metrics.counter('k2_outbox_dispatch_held_seconds_total', 'Time the dispatcher held back for bursts of EKO requests (intake first).');
    this.intakeFirst = new IntakeFirst(
      { rateLimit: config.api.dispatchHoldRate, maxHoldMs: config.api.dispatchHoldMaxMs, batch: config.api.dispatchBatch },
      (ms) => held.inc(undefined, ms / 1000),
    );
    this.dispatched = metrics.counter('k2_outbox_dispatched_total', 'Outbox items handed to Temporal.');
    this.failures = metrics.counter('k2_outbox_dispatch_failures_total', 'Failed attempts to hand an outbox item to Temporal.');
    this.pending = metrics.gauge('k2_outbox_pending', 'Accepted loan items not yet handed to Temporal.');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Connect now (the API's connection is lazy): the first loans should not wait for the gRPC set-up,
    // nor the first requests behind it. A failure here is only logged; the calls retry anyway.
    void Promise.resolve()
      .then(() => this.client.connection.ensureConnected())
      .catch((err) => this.logger.warn('Temporal not reachable yet; the outbox keeps the loans', { err }));
    this.loop = this.run();
  }

  /** Called after a commit so new items go out at once instead of at the next poll (debounced). */
  nudge(): void {
    this.moreMayExist = true;
    if (!this.running) {
      this.wakeNow();
      return;
    }
    if (this.nudgeTimer) return;
    this.nudgeTimer = setTimeout(() => {
      this.nudgeTimer = undefined;
      this.wakeNow();
    }, NUDGE_DEBOUNCE_MS);
  }

  private wakeNow(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.nudgeTimer) clearTimeout(this.nudgeTimer);
    this.nudgeTimer = undefined;
    this.wakeNow();
    await this.loop;
  }

  /** Waits until woken (a nudge, a finished call) or ms passed. */
  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.running) {
      try {
        // Read ahead while fewer than a batch of rows wait (and new rows may exist).
        if (!this.failedSinceReset && this.queuedRows < this.lowWater() && (this.moreMayExist || !this.exhausted)) {
          await this.readMore();
        }
        this.pump();
        if (this.intakeFirst.holding && this.ready.length > 0) {
          await this.idle(HOLD_RECHECK_MS);
          continue;
        }
        if (this.inFlight === 0 && this.queuedRows === 0) {
          await this.flushMarks();
          if (this.failedSinceReset) {
            // Every call of this epoch finished: back off, then read again from the oldest pending row.
            backoffMs = Math.min(Math.max(backoffMs * 2, 500), 30_000);
            this.resetEpoch();
            await this.idle(backoffMs);
            continue;
          }
          backoffMs = 0;
          // Drained: the next read starts from the oldest pending row again (on PostgreSQL a row
          // with a lower id can commit after one with a higher id was read).
          this.cursor = 0;
          if (this.exhausted && !this.moreMayExist) {
            this.pending.set(0);
            await this.idle(IDLE_POLL_MS);
            // after a quiet poll period, look again (rows of another process, retries)
            this.moreMayExist = true;
          }
          continue;
        }
        // Calls are in flight: wait for one to finish (it wakes us) or a nudge.
        if (this.queuedRows >= this.lowWater() || this.failedSinceReset || (this.exhausted && !this.moreMayExist) || this.inFlight >= this.config.api.dispatchConcurrency) {
          await this.idle(IDLE_POLL_MS);
        }
      } catch (err) {
        this.logger.error('outbox round failed', { err });
        await this.idle(2000);
      }
    }
    // Stopping: let the calls in flight end and record what Temporal accepted.
    while (this.inFlight > 0) await this.idle(100);
    await this.flushMarks().catch((err) => this.logger.error('outbox marks not written', { err }));
  }

  /** Rows are read ahead when fewer than this many are waiting (counting those in flight). */
  private lowWater(): number {
    return Math.max(1, Math.ceil(this.config.api.dispatchBatch / 2), Math.min(this.config.api.dispatchBatch, this.config.api.dispatchConcurrency * 2));
  }

  private resetEpoch(): void {
    this.cursor = 0;
    this.chains.clear();
    this.ready.length = 0;
    this.queuedRows = 0;
    this.blocked.clear();
    this.failedSinceReset = false;
    this.exhausted = false;
    this.moreMayExist = true;
  }

  private async readMore(): Promise<void> {
    const limit = this.config.api.dispatchBatch;
    this.moreMayExist = false;
    // Marks must be written before a read from the start could see rows already handed over.
    if (this.cursor === 0) await this.flushMarks();
    const rows = await pendingLoans(this.db, limit, this.cursor);
    this.exhausted = rows.length < limit;
    for (const row of rows) {
      this.cursor = Math.max(this.cursor, row.id);
      if (this.blocked.has(row.contract_number)) continue;
      const chain = this.chains.get(row.contract_number);
      if (chain) chain.push(row);
      else {
        this.chains.set(row.contract_number, [row]);
        this.ready.push(row.contract_number);
      }
      this.queuedRows++;
    }
    const now = Date.now();
    if (this.exhausted) this.pending.set(this.queuedRows);
    else if (now - this.lastRecount >= RECOUNT_EVERY_MS) {
      this.lastRecount = now;
      this.pending.set(Math.max(0, (await countPending(this.db)) - this.doneIds.length));
    }
  }

  /** Starts calls for ready contracts while there are free slots. */
  private pump(): void {
    const max = this.config.api.dispatchConcurrency;
    while (this.inFlight < max && this.ready.length && this.running && !this.holdsForIntake()) {
      const contract = this.ready.shift()!;
      const chain = this.chains.get(contract);
      const row = chain?.[0];
      if (!row) continue;
      this.intakeFirst.started();
      this.inFlight++;
      void this.dispatchRow(contract, row);
    }
  }

  private holdsForIntake(): boolean {
    if (!this.arrivals) return false;
    const now = Date.now();
    return this.intakeFirst.holds(now, this.arrivals.perSecond(now), this.arrivals.activeSince());
  }

  private async dispatchRow(contract: string, row: OutboxRow): Promise<void> {
    let ok = false;
    try {
      await this.dispatchLoan(row.loan);
      ok = true;
    } catch (err) {
      this.failures.inc();
      this.failedSinceReset = true;
      this.blocked.add(contract);
      await markDispatchFailed(this.db, row.id, String((err as Error).message ?? err)).catch((e) => this.logger.error('outbox failure not recorded', { outboxId: row.id, err: e }));
      this.logger.warn('outbox item not yet dispatched', { outboxId: row.id, attempts: row.attempts + 1, err });
    }
    const chain = this.chains.get(contract)!;
    chain.shift();
    this.queuedRows--;
    if (ok) {
      this.doneIds.push(row.id);
      if (this.doneIds.length >= MARK_BATCH) void this.flushMarks().catch((err) => this.logger.error('outbox marks not written', { err }));
      else if (!this.markTimer) this.markTimer = setTimeout(() => void this.flushMarks().catch((err) => this.logger.error('outbox marks not written', { err })), MARK_EVERY_MS);
    }
    if (!ok || this.blocked.has(contract)) {
      // keep this contract's later rows behind the failed one: they are read again after the backoff
      this.queuedRows -= chain.length;
      this.chains.delete(contract);
    } else if (chain.length) this.ready.push(contract);
    else this.chains.delete(contract);
    this.inFlight--;
    this.pump();
    this.wakeNow();
  }

  /** Writes the pending dispatched marks (one transaction); calls never overlap. */
  private flushMarks(): Promise<void> {
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = undefined;
    const ids = this.doneIds;
    if (!ids.length) return this.marking;
    this.doneIds = [];
    const write = this.marking.then(async () => {
      await markDispatched(this.db, ids);
      this.dispatched.inc(undefined, ids.length);
      if (this.exhausted) this.pending.set(this.queuedRows);
    });
    this.marking = write.catch((err) => {
      // not written: keep them for the next flush (re-dispatching would also be harmless)
      this.doneIds.push(...ids);
      throw err;
    }).catch(() => undefined);
    return write;
  }

  async dispatchLoan(loan: Loan): Promise<void> {
    const workflowId = caseWorkflowId(loan.contract_number);
    if (isZeroMoney(loan.debt)) {
      // A repaid loan closes its open case; with no open case there is nothing to start.
      try {
        await this.client.workflow.getHandle(workflowId).signal('loanUpdated', loan);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        this.logger.info('repaid loan has no open case', { workflowId });
      }
      return;
    }
    await this.client.workflow.signalWithStart('caseWorkflow', {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      args: [{ loan, settings: caseSettingsFrom(this.config) }],
      signal: 'loanUpdated',
      // Shown in the Web UI's list and header; no personal data.
      staticSummary: `Overdue loan ${loan.contract_number} (${loan.system})`,
      // Listed under its stage from the start, even before a worker has run it.
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
        { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
      ],
      signalArgs: [loan],
    });
  }
}

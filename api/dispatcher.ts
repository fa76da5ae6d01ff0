/**
 * Drains the loan outbox into Temporal. Why an outbox rather than starting workflows in the request:
 * EKO sends up to 50,000 loans at once and must get its answer in seconds, and "error_code 0" must
 * mean durably accepted even if Temporal is briefly unreachable. The API commits the items in one
 * database transaction and answers; this loop then signals-with-start each case, at its own pace,
 * retrying until Temporal has it. Re-dispatching a row after a crash is harmless: Temporal takes each
 * row once (the row's request id, api/dispatch-request-ids.ts), and the case ignores an item not
 * newer than what it applied.
 *
 * A continuous pipeline, not rounds with a barrier: up to K2_DISPATCH_CONCURRENCY calls are in
 * flight at all times; rows are read ahead (K2_DISPATCH_BATCH at a time, after the last id read)
 * whenever fewer than a batch are waiting, so one slow call never holds up the others. Rows of one
 * contract go strictly one after another, in id order; different contracts go in parallel. A row is
 * marked dispatched only after Temporal accepted it (marks are written in batches, one transaction
 * each). Every call sends the case's messages by their definitions (workflows/definitions.ts), with
 * the row's meta: its outbox id, K2's acceptance order, by which a case ignores an item older than
 * what it applied.
 *
 * Failures are decided by their kind (classifyDispatchFailure):
 *  - Temporal unavailable (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, connection errors) is
 *    not the item's fault: the failed row and the later rows of its contract are left pending; when
 *    the calls in flight have finished, the dispatcher backs off for all rows and reads again from
 *    the oldest pending row. No attempt is counted.
 *  - Temporal refusing this item (INVALID_ARGUMENT, FAILED_PRECONDITION, any other gRPC status, a
 *    payload it cannot take) counts an attempt for that row only: the row waits (next_attempt_at,
 *    doubling) and holds back only its contract's later rows, everything else flows. After
 *    K2_OUTBOX_MAX_ATTEMPTS refusals the row is a dead letter (dead_at, last_error): out of the
 *    flow, counted in /metrics, listed and requeued by `npm run outbox`. Its contract's later rows
 *    then go on: they carry EKO's newer state of the loan, and a requeued dead letter that is older
 *    than what its case applied is ignored by the case.
 *
 * One demand per overdue episode: each row is read with its contract's last closed case
 * (case_episodes, one join). An item that closed case already applied, or a late re-send of the
 * last overdue item it applied, is stale: marked done (stale_reason, k2_outbox_stale_total) and
 * never started, so it cannot open a second run with a second demand.
 *
 * Several API replicas, one outbox: each dispatcher claims the rows it reads (db/outbox.ts
 * claimLoans: one statement per batch, FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
 * SQLite) under a lease of K2_OUTBOX_LEASE, so each row is handed over by exactly one replica at a
 * time. A row is claimed only when every earlier live row of its contract is ours too, so
 * per-contract order holds across replicas. The dispatcher renews its claims every third of the
 * lease, clears them as it marks rows (and gives back the rows it holds back), and starts no call
 * on a claim it could not renew in time: a crashed replica's rows are taken by another once their
 * lease has passed, and a live one never races the replica that took them.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';
import { staleReason } from '../activities/episodes';
import { createColumnSealer, type ColumnSealer } from '../db/sealed';
import { claimLoans, countPending, deadLetterStats, markDispatched, markDispatchFailed, markStale, OutboxRow, releaseClaims, renewClaims } from '../db/outbox';
import { caseWorkflowId, CaseSettings, LoanMeta } from '../domain/case';
import type { Loan } from '../domain/loan';
import { isZeroMoney } from '../domain/money';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { caseWorkflow } from '../workflows/case';
import { loanUpdatedSignal } from '../workflows/definitions';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { BurstHold, type ArrivalRate } from './burst-hold';
import { outboxRequestId, stampRequestIds, withRequestId } from './dispatch-request-ids';

export function caseSettingsFrom(config: Config): CaseSettings {
  return {
    absHorizonMs: config.abs.transientHorizonMs,
    scanRecheckMs: config.abs.scanRecheckMs,
    maxHistoryEvents: 2000,
    localAttemptMs: config.abs.localAttemptMs,
    gkbResultHorizonMs: config.gkb.resultHorizonMs,
  };
}

// ---- pure rules ---------------------------------------------------------------------------------

/** gRPC status codes by number (grpc/status.h). */
const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
/**
 * Statuses that say Temporal (or the way to it) is in trouble, not that it refuses this item.
 * CANCELLED and ABORTED come with a closing connection or a conflict; UNKNOWN and INTERNAL with a
 * server in trouble: counting those against items would turn an outage into dead letters.
 */
const TEMPORAL_UNAVAILABLE_STATUSES: ReadonlySet<string> = new Set([
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'CANCELLED',
  'ABORTED',
  'UNKNOWN',
  'INTERNAL',
]);
/** Network errors without a gRPC status (the connection could not be made at all). */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

export type DispatchFailure = { kind: 'temporal-unavailable' } | { kind: 'item-refused'; error: string };

/** Personal data that could appear in an error text (an IIN/BIN, an IBAN) is cut out before it is stored or logged. */
export function redactedErrorText(text: string, max = 300): string {
  const clean = text
    .replace(/KZ\d{2}[0-9A-Z]{16}/gi, '[iban]')
    .replace(/\d{12}/g, '[number]')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** The gRPC status in the error or its cause chain (the client wraps the gRPC error in a ServiceError). */
function grpcStatusOf(err: unknown): { status: string; message: string } | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, details, message } = e as { code?: unknown; details?: unknown; message?: unknown };
    if (typeof code === 'number' && GRPC_STATUS_NAMES[code]) return { status: GRPC_STATUS_NAMES[code], message: String(details || message || '') };
  }
  return undefined;
}

function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
    if (name === 'TransportError' || (typeof message === 'string' && /failed to connect/i.test(message))) return true;
  }
  return false;
}

/**
 * Whose fault a failed hand-over is: Temporal unavailable (back off for all rows, count nothing), or
 * Temporal refusing this item (count an attempt for its row). The error text for the row names the
 * gRPC status and a short message, without personal data.
 */
export function classifyDispatchFailure(err: unknown): DispatchFailure {
  const grpc = grpcStatusOf(err);
  if (grpc) {
    if (TEMPORAL_UNAVAILABLE_STATUSES.has(grpc.status)) return { kind: 'temporal-unavailable' };
    return { kind: 'item-refused', error: redactedErrorText(`${grpc.status}: ${grpc.message}`) };
  }
  if (isConnectionError(err)) return { kind: 'temporal-unavailable' };
  const e = err as { name?: string; message?: string };
  return { kind: 'item-refused', error: redactedErrorText(`${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`) };
}

/** The wait before a refused row's next attempt: base, doubling per attempt, at most 10 minutes. */
export function retryDelayMs(attempts: number, baseMs = 1000): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempts - 1), 10 * 60_000);
}

export interface DispatcherOptions {
  /** First wait after Temporal refused an item; doubles per attempt (tests shorten it). */
  retryBaseMs?: number;
  /** This dispatcher's name in the outbox's claims (default: host, process id and a random part; no personal data). */
  owner?: string;
}

/** A dispatcher's claim name: unique per process start, at most 64 characters (loan_outbox.claimed_by). */
export function dispatcherOwner(): string {
  return `${os.hostname().slice(0, 40)}-${process.pid}-${randomBytes(4).toString('hex')}`.slice(0, 64);
}

/** A nudge wakes the idle dispatcher after this delay, so a burst of small commits causes one read. */
const NUDGE_DEBOUNCE_MS = 5;
const IDLE_POLL_MS = 1000;
/** Dispatched marks are written when this many are due, or this long after the first one. */
const MARK_BATCH = 500;
const MARK_EVERY_MS = 100;
/** How often the pending gauge is recounted while a backlog is being drained. */
const RECOUNT_EVERY_MS = 1000;
/** While holding back for a burst of requests (burst-hold.ts), how often the dispatcher looks again. */
const HOLD_RECHECK_MS = 50;
/** How often the dead-letter gauges are recounted (also at once when a row dies). */
const DEAD_LETTER_RECOUNT_MS = 5000;

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
  private readonly stale;
  private readonly deadLetters;
  private readonly deadLetterOldest;
  private lastDeadLetterCount = 0;
  private readonly retryBaseMs: number;

  // claims (several replicas)
  readonly owner: string;
  private readonly leaseMs: number;
  /** Opens the loans the outbox holds sealed (db/sealed.ts). */
  private readonly columns: ColumnSealer;
  /** Rows claimed by us and not yet given up: those in memory, and those handed over whose marks are not yet written. */
  private claims = new Set<number>();
  /** Rows we claimed and hold back: their claims are cleared with the next marks (so any replica may take them). */
  private releaseIds: number[] = [];
  /** Local time until which every claim in `claims` certainly holds (taken before the statement that set the lease). */
  private claimsValidUntil = 0;
  /** Start of a claim statement under way (a renewal meanwhile does not cover its rows). */
  private claimStartedAt?: number;
  private renewTimer?: NodeJS.Timeout;

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
  /**
   * Contracts with a failed or waiting row in this pass over the outbox: their later rows are not
   * taken until the next read from the start (which sees that row first again, in id order).
   */
  private readonly blocked = new Set<string>();
  /** Rows read in this pass but held back (waiting for their next attempt, or behind such a row). */
  private heldRows = 0;
  private failedSinceReset = false;
  private doneIds: number[] = [];
  private markTimer?: NodeJS.Timeout;
  private marking: Promise<void> = Promise.resolve();
  private lastRecount = 0;
  /** The last read returned fewer rows than asked: every pending row is in memory. */
  private exhausted = false;
  private readonly burstHold: BurstHold;

  constructor(
    private readonly db: Db,
    private readonly client: Client,
    private readonly config: Config,
    private readonly logger: Logger,
    metrics: Metrics,
    /** The service requests' arrivals (burst hold); without it the dispatcher never holds back. */
    private readonly arrivals?: ArrivalRate,
    options: DispatcherOptions = {},
  ) {
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.owner = options.owner ?? dispatcherOwner();
    stampRequestIds(client);
    this.leaseMs = config.api.outboxLeaseMs;
    this.columns = createColumnSealer(config.payloadKeys);
    const held = metrics.counter('k2_outbox_dispatch_held_seconds_total', 'Time the dispatcher held back for bursts of EKO requests (burst hold).');
    this.burstHold = new BurstHold({ rateLimit: config.api.dispatchHoldRate, maxHoldMs: config.api.dispatchHoldMaxMs, batch: config.api.dispatchBatch }, (ms) =>
      held.inc(undefined, ms / 1000),
    );
    this.dispatched = metrics.counter('k2_outbox_dispatched_total', 'Outbox items handed to Temporal.');
    this.failures = metrics.counter('k2_outbox_dispatch_failures_total', 'Failed attempts to hand an outbox item to Temporal.');
    this.pending = metrics.gauge('k2_outbox_pending', 'Accepted loan items not yet handed to Temporal (dead letters not counted).');
    this.stale = metrics.counter('k2_outbox_stale_total', 'Outbox items not handed to Temporal because their closed case already had them, by reason.');
    this.deadLetters = metrics.gauge(
      'k2_outbox_dead_letters',
      'Outbox items Temporal refused K2_OUTBOX_MAX_ATTEMPTS times, waiting for an operator (npm run outbox -- dead-letters).',
    );
    this.deadLetterOldest = metrics.gauge('k2_outbox_dead_letter_oldest_seconds', 'Age of the oldest dead letter since K2 accepted it (0 when there is none).');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Connect now (the API's connection is lazy): the first loans should not wait for the gRPC set-up,
    // nor the first requests behind it. A failure here is only logged; the calls retry anyway.
    void Promise.resolve()
      .then(() => this.client.connection.ensureConnected())
      .catch((err) => this.logger.warn('Temporal not reachable yet; the outbox keeps the loans', { err }));
    void this.recountDeadLetters();
    this.renewTimer = setInterval(() => void this.renewLease(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.renewTimer.unref();
    this.loop = this.run();
  }

  /** Extends the lease of every row we hold; serialised with the marks, so a row is never renewed after its claim was cleared. */
  private renewLease(): Promise<void> {
    const renewal = this.marking.then(async () => {
      const ids = [...this.claims];
      if (!ids.length) return;
      const startedAt = Math.min(Date.now(), this.claimStartedAt ?? Infinity);
      await renewClaims(this.db, this.owner, ids, this.leaseMs);
      this.claimsValidUntil = startedAt + this.leaseMs;
    });
    this.marking = renewal.catch((err) => this.logger.warn('outbox claims not renewed', { err }));
    return this.marking;
  }

  /** Whether our claims still hold long enough to start a call on one (a third of the lease to spare). */
  private claimsValid(): boolean {
    return this.claims.size === 0 || Date.now() < this.claimsValidUntil - this.leaseMs / 3;
  }

  /**
   * Our claims could not be renewed in time (the database away, or we stalled): another replica may take the rows, so
   * we start none of them; once the calls in flight ended, we drop them and read again from the start after a back-off.
   */
  private leaseLapsed(): void {
    if (!this.failedSinceReset) this.logger.warn('outbox claims not renewed in time; holding back until they are claimed again', { rows: this.claims.size });
    this.failedSinceReset = true;
    if (this.inFlight > 0 || this.queuedRows === 0) return;
    for (const chain of this.chains.values()) for (const row of chain) this.releaseIds.push(row.id);
    this.chains.clear();
    this.ready.length = 0;
    this.queuedRows = 0;
    this.claims = new Set(this.doneIds);
  }

  private lastDeadLetterRecount = 0;
  /** Refreshes the dead-letter gauges (a requeue or a new dead letter may have changed them). */
  private async recountDeadLetters(): Promise<void> {
    this.lastDeadLetterRecount = Date.now();
    try {
      const { count, oldestAcceptedAt } = await deadLetterStats(this.db);
      this.deadLetters.set(count);
      this.deadLetterOldest.set(oldestAcceptedAt ? Math.max(0, Math.round((Date.now() - oldestAcceptedAt.getTime()) / 1000)) : 0);
      if (count > this.lastDeadLetterCount) this.logger.warn('outbox has dead letters', { count });
      this.lastDeadLetterCount = count;
    } catch (err) {
      this.logger.error('dead letters not counted', { err });
    }
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

  /**
   * Stops after the calls in flight ended and their marks are written, and gives back the rows still claimed, so another
   * replica takes them at once. `releaseClaims: false` leaves them claimed, as a crash would (tests).
   */
  async stop(opts: { releaseClaims?: boolean } = {}): Promise<void> {
    this.running = false;
    if (this.nudgeTimer) clearTimeout(this.nudgeTimer);
    this.nudgeTimer = undefined;
    this.wakeNow();
    await this.loop;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    if (opts.releaseClaims === false) return;
    const ids = [...new Set([...this.releaseIds, ...[...this.claims].filter((id) => !this.doneIds.includes(id))])];
    await releaseClaims(this.db, this.owner, ids).catch((err) => this.logger.warn('outbox claims not given back; they pass with their lease', { err }));
    this.releaseIds = [];
    this.claims.clear();
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
        if (!this.claimsValid()) this.leaseLapsed();
        // Read ahead while fewer than a batch of rows wait (and new rows may exist).
        if (!this.failedSinceReset && this.queuedRows < this.lowWater() && (this.moreMayExist || !this.exhausted)) {
          await this.readMore();
        }
        this.pump();
        if (this.burstHold.holding && this.ready.length > 0) {
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
          // Every row read so far was held back, and more lie after the cursor: read on from there.
          if (!this.exhausted) continue;
          // Drained: the next read starts from the oldest pending row again (on PostgreSQL a row
          // with a lower id can commit after one with a higher id was read).
          this.startOver();
          if (Date.now() - this.lastDeadLetterRecount >= DEAD_LETTER_RECOUNT_MS) await this.recountDeadLetters();
          if (!this.moreMayExist) {
            // The whole outbox: rows other replicas hold, or that wait for their next attempt, are not in our memory.
            this.pending.set(await countPending(this.db));
            await this.idle(IDLE_POLL_MS);
            // after a quiet poll period, look again (rows of another process, retries)
            this.moreMayExist = true;
          }
          continue;
        }
        // Calls are in flight: wait for one to finish (it wakes us) or a nudge.
        if (
          this.queuedRows >= this.lowWater() ||
          this.failedSinceReset ||
          (this.exhausted && !this.moreMayExist) ||
          this.inFlight >= this.config.api.dispatchConcurrency
        ) {
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

  /** The next read starts from the oldest pending row: held rows are looked at again. */
  private startOver(): void {
    this.cursor = 0;
    this.blocked.clear();
    this.heldRows = 0;
  }

  private resetEpoch(): void {
    this.startOver();
    this.chains.clear();
    this.ready.length = 0;
    this.queuedRows = 0;
    this.failedSinceReset = false;
    this.exhausted = false;
    this.moreMayExist = true;
  }

  private async readMore(): Promise<void> {
    const limit = this.config.api.dispatchBatch;
    this.moreMayExist = false;
    // Marks must be written before a read from the start could see rows already handed over; and claims we give back
    // must be cleared before a claim could take them again (else the clearing would undo the new claim).
    if (this.cursor === 0 || this.releaseIds.length) await this.flushMarks();
    const startedAt = Date.now();
    this.claimStartedAt = startedAt;
    let claim;
    try {
      claim = await claimLoans(this.db, this.owner, { limit, leaseMs: this.leaseMs, afterId: this.cursor }, this.columns);
    } finally {
      this.claimStartedAt = undefined;
    }
    const rows = claim.rows;
    if (rows.length && this.claims.size === 0) this.claimsValidUntil = startedAt + this.leaseMs;
    this.exhausted = claim.windowSize < limit;
    // Rows of the window not taken: another replica holds an earlier row of their contract, or it waits (strict id order).
    this.heldRows += claim.windowSize - rows.length;
    this.cursor = Math.max(this.cursor, claim.windowLastId);
    const now = Date.now();
    for (const row of rows) {
      this.claims.add(row.id);
      this.cursor = Math.max(this.cursor, row.id);
      // A row waiting for its next attempt holds back its contract's later rows (strict id order).
      if (row.nextAttemptAt !== undefined && row.nextAttemptAt > now) this.blocked.add(row.contract_number);
      if (this.blocked.has(row.contract_number)) {
        this.heldRows++;
        this.giveBack(row.id);
        continue;
      }
      const chain = this.chains.get(row.contract_number);
      if (chain) chain.push(row);
      else {
        this.chains.set(row.contract_number, [row]);
        this.ready.push(row.contract_number);
      }
      this.queuedRows++;
    }
    if (this.exhausted) this.pending.set(this.queuedRows + this.heldRows);
    else if (now - this.lastRecount >= RECOUNT_EVERY_MS) {
      this.lastRecount = now;
      this.pending.set(Math.max(0, (await countPending(this.db)) - this.doneIds.length));
    }
  }

  /** A claimed row we do not hand over now: its claim is cleared with the next marks. */
  private giveBack(id: number): void {
    this.claims.delete(id);
    this.releaseIds.push(id);
  }

  /** Starts calls for ready contracts while there are free slots (and our claims hold). */
  private pump(): void {
    const max = this.config.api.dispatchConcurrency;
    while (this.inFlight < max && this.ready.length && this.running && this.claimsValid() && !this.holdsForBurst()) {
      const contract = this.ready.shift()!;
      const chain = this.chains.get(contract);
      const row = chain?.[0];
      if (!row) continue;
      this.burstHold.started();
      this.inFlight++;
      void this.dispatchRow(contract, row);
    }
  }

  private holdsForBurst(): boolean {
    if (!this.arrivals) return false;
    const now = Date.now();
    return this.burstHold.holds(now, this.arrivals.perSecond(now), this.arrivals.activeSince());
  }

  private async dispatchRow(contract: string, row: OutboxRow): Promise<void> {
    // 'sent': Temporal has it (mark it dispatched); 'done': finished otherwise (stale, dead); 'held': the contract waits.
    const outcome = await this.handOver(contract, row);
    const chain = this.chains.get(contract)!;
    chain.shift();
    this.queuedRows--;
    if (outcome === 'sent') {
      this.doneIds.push(row.id);
      if (this.doneIds.length >= MARK_BATCH) void this.flushMarks().catch((err) => this.logger.error('outbox marks not written', { err }));
      else if (!this.markTimer)
        this.markTimer = setTimeout(() => void this.flushMarks().catch((err) => this.logger.error('outbox marks not written', { err })), MARK_EVERY_MS);
    }
    if (outcome === 'done') this.claims.delete(row.id); // its mark (stale, failed, dead) cleared the claim
    if (outcome === 'held') this.giveBack(row.id);
    if (outcome === 'held' || this.blocked.has(contract)) {
      // keep this contract's later rows behind the failed one: they are read again with it
      for (const later of chain) this.giveBack(later.id);
      this.queuedRows -= chain.length;
      this.chains.delete(contract);
    } else if (chain.length) this.ready.push(contract);
    else this.chains.delete(contract);
    this.inFlight--;
    this.pump();
    this.wakeNow();
  }

  /** One row: skipped as stale, handed to Temporal, or failed (classified: all rows back off, or only this one waits). */
  private async handOver(contract: string, row: OutboxRow): Promise<'sent' | 'done' | 'held'> {
    const stale = staleReason(row);
    if (stale) {
      try {
        await markStale(this.db, row.id, stale);
      } catch (err) {
        this.logger.error('stale outbox item not marked', { outboxId: row.id, err });
        return this.holdAll(contract);
      }
      this.stale.inc({ reason: stale });
      this.logger.info('outbox item not sent: its closed case already had it', { outboxId: row.id, workflowId: caseWorkflowId(contract), reason: stale });
      return 'done';
    }
    // A sealed loan this process cannot open: a refused attempt (the key may be configured meanwhile), a dead letter at the last.
    if (row.unreadable !== undefined) return this.refused(contract, row, row.unreadable);
    try {
      await this.dispatchLoan(row.loan, { acceptedSeq: row.id });
      return 'sent';
    } catch (err) {
      this.failures.inc();
      const failure = classifyDispatchFailure(err);
      if (failure.kind === 'temporal-unavailable') {
        this.logger.warn('outbox item not yet dispatched: Temporal unavailable', { outboxId: row.id, err });
        return this.holdAll(contract);
      }
      return this.refused(contract, row, failure.error);
    }
  }

  /** Temporal is away (or K2's database): every row backs off once the calls in flight have finished. */
  private holdAll(contract: string): 'held' {
    this.failedSinceReset = true;
    this.blocked.add(contract);
    return 'held';
  }

  /** Temporal refused this item: count the attempt; the row waits (its contract behind it), or dies after the last attempt. */
  private async refused(contract: string, row: OutboxRow, error: string): Promise<'done' | 'held'> {
    const attempts = row.attempts + 1;
    const dead = attempts >= this.config.api.outboxMaxAttempts;
    const retryAt = new Date(Date.now() + retryDelayMs(attempts, this.retryBaseMs));
    try {
      await markDispatchFailed(this.db, row.id, error, dead ? { dead: true } : { retryAt });
    } catch (err) {
      this.logger.error('outbox failure not recorded', { outboxId: row.id, err });
      this.blocked.add(contract);
      return 'held';
    }
    if (dead) {
      this.logger.error('outbox item moved to the dead letters: Temporal refused it every time', {
        outboxId: row.id,
        workflowId: caseWorkflowId(contract),
        attempts,
        error,
      });
      void this.recountDeadLetters();
      // Its contract's later rows go on (see the header).
      return 'done';
    }
    this.logger.warn('outbox item refused by Temporal; it waits for its next attempt', {
      outboxId: row.id,
      workflowId: caseWorkflowId(contract),
      attempts,
      retryAt: retryAt.toISOString(),
      error,
    });
    this.blocked.add(contract);
    return 'held';
  }

  /** Writes the pending dispatched marks (one transaction; clearing their claims) and gives back held rows; calls never overlap. */
  private flushMarks(): Promise<void> {
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = undefined;
    const ids = this.doneIds;
    const releases = this.releaseIds;
    if (!ids.length && !releases.length) return this.marking;
    this.doneIds = [];
    this.releaseIds = [];
    let marked = false;
    const write = this.marking.then(async () => {
      if (ids.length) {
        await markDispatched(this.db, ids);
        marked = true;
        for (const id of ids) this.claims.delete(id);
        this.dispatched.inc(undefined, ids.length);
        if (this.exhausted) this.pending.set(this.queuedRows);
      }
      await releaseClaims(this.db, this.owner, releases);
    });
    this.marking = write
      .catch((err) => {
        // not written: keep them for the next flush (re-dispatching would also be harmless)
        if (!marked) this.doneIds.push(...ids);
        this.releaseIds.push(...releases);
        throw err;
      })
      .catch(() => undefined);
    return write;
  }

  /**
   * Hands one item to its case: signals it, or starts the case with it; meta is the item's acceptance order. The
   * request id is the row's (api/dispatch-request-ids.ts): a row handed over twice reaches its case once.
   */
  dispatchLoan(loan: Loan, meta: LoanMeta): Promise<void> {
    return withRequestId(outboxRequestId(meta.acceptedSeq), () => this.handToCase(loan, meta));
  }

  private async handToCase(loan: Loan, meta: LoanMeta): Promise<void> {
    const workflowId = caseWorkflowId(loan.contract_number);
    if (isZeroMoney(loan.debt)) {
      // A repaid loan closes its open case; with no open case there is nothing to start.
      try {
        await this.client.workflow.getHandle(workflowId).signal(loanUpdatedSignal, loan, meta);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        this.logger.info('repaid loan has no open case', { workflowId });
      }
      return;
    }
    await this.client.workflow.signalWithStart(caseWorkflow, {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      args: [{ loan, settings: caseSettingsFrom(this.config), meta }],
      signal: loanUpdatedSignal,
      signalArgs: [loan, meta],
      // Shown in the Web UI's list and header; no personal data.
      staticSummary: `Overdue loan ${loan.contract_number} (${loan.system})`,
      // Listed under its stage from the start, even before a worker has run it (and found by `k2 case list --stuck-for` when none does).
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
        { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
        { key: SEARCH_ATTRIBUTES.stageSince, value: new Date() },
        { key: SEARCH_ATTRIBUTES.absSystem, value: loan.system },
      ],
    });
  }
}

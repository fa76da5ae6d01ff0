/**
 * Burst hold: while EKO is posting a burst of requests, the dispatcher holds back its Temporal calls
 * (the worker's counterpart, backlog narrowing, is worker/backlog-narrowing.ts).
 *
 * Why: the API, the dispatcher, Temporal and the worker may share a few cores (on the 2-core
 * reference machine they do). Every case the dispatcher starts during a burst costs Temporal and
 * the worker CPU that EKO's requests then wait for, while a burst is accepted many times faster
 * than Temporal can start cases (thousands of items per second against about a hundred starts),
 * so starting cases during the burst hardly shortens the backlog. Accepted items are durable in
 * the outbox; starting them a few seconds later loses nothing.
 *
 * Rule: the dispatcher starts no new call while service requests arrive at `rateLimit` per second
 * or more, and until `calmMs` after that (one large POST is no burst; a steady trickle is not held;
 * a pause of the API's event loop inside a burst does not end the hold), for at most `maxHoldMs` in
 * a row; after a hold that long it hands over `batch` items before it may hold again, so a
 * sustained overload slows the dispatch but never stops it. `rateLimit` 0 turns the rule off.
 * The first requests of a burst look like a trickle until the rate window has seen enough of them,
 * so when requests start arriving after a calm (`ArrivalRate.activeSince`) the dispatcher waits
 * `settleMs` before it starts anything: a burst is then recognised before its first cases start
 * (in the benchmark the dispatcher had started its 32 concurrent cases in the first milliseconds of
 * each burst, and Temporal and the worker spent ~1.5 core-seconds on them while EKO's requests
 * waited), and a lone request's case starts `settleMs` later.
 * The cluster topology turns it off (K2_DISPATCH_HOLD_RATE=0): its API replicas behind nginx served
 * fewer requests a second than the rate limit, so it never held there (bench/README.md, topology).
 */
export interface BurstHoldSettings {
  rateLimit: number;
  maxHoldMs: number;
  batch: number;
  calmMs?: number;
  settleMs?: number;
}

const CALM_MS = 1000;
const SETTLE_MS = 250;

export class BurstHold {
  /** When the current hold began (undefined: not holding). */
  private holdSince: number | undefined;
  /** Calls the dispatcher still owes after a hold of maxHoldMs, before it may hold again. */
  private owed = 0;
  private lastBurstAt = -Infinity;

  /** `onHeld` hears how long each hold lasted (for the metrics). */
  constructor(
    private readonly settings: BurstHoldSettings,
    private readonly onHeld: (ms: number) => void = () => undefined,
  ) {}

  /**
   * Whether the dispatcher should start no call now, service requests arriving at `perSecond`
   * since `activeSince` (the first request after a calm; undefined: none yet).
   */
  holds(now: number, perSecond: number, activeSince?: number): boolean {
    const { rateLimit, maxHoldMs, batch, calmMs = CALM_MS, settleMs = SETTLE_MS } = this.settings;
    if (rateLimit > 0 && perSecond >= rateLimit) this.lastBurstAt = now;
    const burst = now - this.lastBurstAt < calmMs;
    if (!burst) this.owed = 0; // the burst is over: the next one may be held at once
    const settling = rateLimit > 0 && activeSince !== undefined && now - activeSince < settleMs;
    if ((!burst && !settling) || this.owed > 0) {
      this.endHold(now);
      return false;
    }
    if (this.holdSince === undefined) this.holdSince = now;
    if (now - this.holdSince < maxHoldMs) return true;
    this.endHold(now);
    this.owed = batch;
    return false;
  }

  /** The dispatcher started a call. */
  started(): void {
    if (this.owed > 0) this.owed -= 1;
  }

  get holding(): boolean {
    return this.holdSince !== undefined;
  }

  private endHold(now: number): void {
    if (this.holdSince === undefined) return;
    this.onHeld(now - this.holdSince);
    this.holdSince = undefined;
  }
}

/**
 * Arrivals per second over the last window (the finished one and the current one together), and
 * when the current run of arrivals began (the first arrival after `calmMs` without one).
 */
export class ArrivalRate {
  private windowStart = 0;
  private current = 0;
  private previous = 0;
  private lastArrival = -Infinity;
  private runStart: number | undefined;

  constructor(
    private readonly windowMs = 250,
    private readonly calmMs = CALM_MS,
  ) {}

  arrived(now: number): void {
    this.roll(now);
    this.current += 1;
    if (now - this.lastArrival >= this.calmMs) this.runStart = now;
    this.lastArrival = now;
  }

  /** When the current run of arrivals began; undefined before the first arrival. */
  activeSince(): number | undefined {
    return this.runStart;
  }

  perSecond(now: number): number {
    this.roll(now);
    const span = this.windowMs + (now - this.windowStart);
    return ((this.previous + this.current) * 1000) / span;
  }

  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < this.windowMs) return;
    this.previous = elapsed < 2 * this.windowMs ? this.current : 0;
    this.current = 0;
    this.windowStart = now - (elapsed % this.windowMs);
  }
}

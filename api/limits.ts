/**
 * The API's protection under load and of its operations endpoints, as pure rules (no express, no
 * clock of their own: the caller passes the time), so each is tested directly (test/unit/api-limits.test.ts).
 */

export type Admission = { ok: true } | { ok: false; retryAfterSeconds: number };

/** Requests being served at once, up to a maximum; a request over it is refused, never queued. */
export class ConcurrencyLimit {
  private inFlight = 0;

  constructor(private readonly max: number) {}

  /** Takes a slot; the caller gives it back with leave() exactly once. */
  tryEnter(): boolean {
    if (this.inFlight >= this.max) return false;
    this.inFlight++;
    return true;
  }

  leave(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  get current(): number {
    return this.inFlight;
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per client: `ratePerSecond` requests per second, a burst of one second's worth.
 * 0 means unlimited. A bucket that has filled up again is the same as no bucket, so the sweep drops
 * those: memory stays bounded by the clients seen in about the last second.
 */
export class ClientRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(private readonly ratePerSecond: number) {}

  take(client: string, nowMs: number): Admission {
    if (this.ratePerSecond <= 0) return { ok: true };
    this.sweep(nowMs);
    const bucket = this.refilled(this.buckets.get(client), nowMs);
    if (bucket.tokens >= 1) {
      this.buckets.set(client, { tokens: bucket.tokens - 1, at: nowMs });
      return { ok: true };
    }
    this.buckets.set(client, bucket);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond)) };
  }

  /** Clients with a bucket that is not full (for tests and metrics). */
  get tracked(): number {
    return this.buckets.size;
  }

  private refilled(bucket: Bucket | undefined, nowMs: number): Bucket {
    if (!bucket) return { tokens: this.ratePerSecond, at: nowMs };
    const elapsed = Math.max(0, nowMs - bucket.at) / 1000;
    return { tokens: Math.min(this.ratePerSecond, bucket.tokens + elapsed * this.ratePerSecond), at: nowMs };
  }

  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweep < 1000) return;
    this.lastSweep = nowMs;
    for (const [client, bucket] of this.buckets) {
      if (this.refilled(bucket, nowMs).tokens >= this.ratePerSecond) this.buckets.delete(client);
    }
  }
}

/** Who a request counts against: the authenticated user or token, else its remote address. */
export function clientKey(authenticated: string | undefined, remoteAddress: string | undefined): string {
  return authenticated !== undefined ? `user:${authenticated}` : `address:${remoteAddress ?? 'unknown'}`;
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (how a dual-stack socket reports 127.0.0.1). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

export type OpsMode = 'loopback' | 'token' | 'open';
export type OpsAccess = 'allowed' | 'unauthorized' | 'forbidden';

/**
 * The guard of /metrics and /ready (K2_API_OPS_AUTH). Only the socket's own address counts:
 * X-Forwarded-For is never trusted, since any client can send it.
 */
export function opsAccess(
  mode: OpsMode,
  request: { remoteAddress: string | undefined; authorization: string | undefined },
  token: string,
  equal: (a: string, b: string) => boolean,
): OpsAccess {
  if (mode === 'open') return 'allowed';
  if (mode === 'loopback') return isLoopback(request.remoteAddress) ? 'allowed' : 'forbidden';
  const header = request.authorization ?? '';
  return token !== '' && header.startsWith('Bearer ') && equal(header.slice(7), token) ? 'allowed' : 'unauthorized';
}

/**
 * Payment-demand references and the statuses EKO reports for them (k2req_status_from_eko,
 * DOMAIN.md §1, §3). Extra fields in the body are ignored, as for loans.
 */
import type { ItemProblem } from './loan';

export const DEMAND_STATUSES = {
  PC1: 'Принята банком',
  PC3: 'Принята в картотеку банка',
} as const;

export type DemandStatusCode = keyof typeof DEMAND_STATUSES;

export const DEMAND_REFERENCE_DIGITS = 11;
const MAX_DEMAND_NUMBER = 10 ** DEMAND_REFERENCE_DIGITS - 1;
const DEMAND_REFERENCE = /^PTP\d{11}$/;

/**
 * Shape of a status code, known or not: two upper-case Latin letters and 1–3 digits ("PC1", "PC9").
 * A code of this shape that we do not know is a different answer ("unknown status") from garbage.
 */
const STATUS_CODE_SHAPE = /^[A-Z]{2}\d{1,3}$/;

export function isDemandReference(s: unknown): s is string {
  return typeof s === 'string' && DEMAND_REFERENCE.test(s);
}

export function isDemandStatusCode(s: unknown): s is DemandStatusCode {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DEMAND_STATUSES, s);
}

/**
 * The clock demand numbers follow (README "Demand references"): 10 ms steps since 2026-01-01T00:00Z.
 * 11 digits of 10 ms last until about 2057.
 */
export const DEMAND_CLOCK_EPOCH_MS = Date.UTC(2026, 0, 1);
export const DEMAND_CLOCK_STEP_MS = 10;

/** The demand clock at `now`: 10 ms steps since the epoch (0 before it, for a clock set far back). */
export function demandClock(now: Date): number {
  const ms = now.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('the demand clock needs a valid time');
  return Math.max(0, Math.floor((ms - DEMAND_CLOCK_EPOCH_MS) / DEMAND_CLOCK_STEP_MS));
}

/**
 * The number of the next demand: one above the last, or the clock when the clock is ahead. The clock
 * keeps numbers unique across a restore from a backup, which rolls `last` back but not the clock.
 */
export function nextDemandNumber(last: number, now: Date): number {
  if (!Number.isSafeInteger(last) || last < 0) throw new RangeError(`the last demand number must be a non-negative integer, got ${last}`);
  const next = Math.max(last + 1, demandClock(now));
  if (next > MAX_DEMAND_NUMBER) throw new RangeError(`demand numbers are exhausted: ${next} does not fit in ${DEMAND_REFERENCE_DIGITS} digits`);
  return next;
}

/** `PTP` + the number zero-padded to 11 digits; throws for anything that does not fit. */
export function formatDemandReference(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DEMAND_NUMBER) {
    throw new RangeError(`a demand number must be an integer 0..${MAX_DEMAND_NUMBER}, got ${n}`);
  }
  return `PTP${String(n).padStart(DEMAND_REFERENCE_DIGITS, '0')}`;
}

export type StatusUpdateValidation =
  { ok: true; reference: string; status: DemandStatusCode } | { ok: false; kind: 'validation' | 'unknown-status'; problems: ItemProblem[] };

/**
 * Checks a k2req_status_from_eko body. kind is 'unknown-status' only when the body is otherwise
 * valid and the status code is well formed but not one we know; any malformed part makes it
 * 'validation'. Problems carry index 0 (the single object) and field '' for the body as a whole.
 */
export function validateStatusUpdate(body: unknown): StatusUpdateValidation {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, kind: 'validation', problems: [{ index: 0, field: '', reason: 'must be a JSON object' }] };
  }
  const reference = Object.hasOwn(body, 'reference') ? (body as Record<string, unknown>).reference : undefined;
  const status = Object.hasOwn(body, 'status_code') ? (body as Record<string, unknown>).status_code : undefined;

  const problems: ItemProblem[] = [];
  if (reference === undefined || reference === null) problems.push({ index: 0, field: 'reference', reason: 'is required' });
  else if (!isDemandReference(reference)) problems.push({ index: 0, field: 'reference', reason: 'must be PTP followed by 11 digits' });

  let unknownStatus = false;
  if (status === undefined || status === null) problems.push({ index: 0, field: 'status_code', reason: 'is required' });
  else if (typeof status !== 'string' || !STATUS_CODE_SHAPE.test(status)) {
    problems.push({ index: 0, field: 'status_code', reason: 'must be a status code like PC1' });
  } else if (!isDemandStatusCode(status)) {
    unknownStatus = true;
    problems.push({ index: 0, field: 'status_code', reason: `unknown status ${status}; known: ${Object.keys(DEMAND_STATUSES).join(', ')}` });
  }

  if (problems.length === 0) return { ok: true, reference: reference as string, status: status as DemandStatusCode };
  const kind = unknownStatus && problems.length === 1 ? 'unknown-status' : 'validation';
  return { ok: false, kind, problems };
}

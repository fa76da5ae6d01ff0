/**
 * EKO's side of K2, in one module (gap G2, DOMAIN.md §8).
 *
 * K2 hands a payment demand to EKO with one JSON POST (the "demand"); EKO answers at once
 * ({error_code, error_text}) and reports the demand's status later through K2's own
 * k2req_status_from_eko (PC1, then possibly PC3). This file holds the demand's wire type, its
 * one validator (used by the client before sending and by the EKO simulator on receipt), the
 * answer codes, and the HTTP client with its error classification. integrations/eko.md documents it.
 *
 * The wire (integrations/http-transport.ts): HTTPS with an optional CA bundle and client certificate
 * (`tls`), HTTP Basic or bearer credentials (`auth`), and redirects never followed: a 3xx rejects
 * the demand naming the status, because following it would send the demand to another host.
 */

import { isIso4217 } from '../domain/currency';
import { isDemandReference } from '../domain/demand-status';
import { ibanProblem } from '../domain/iban';
import { iinBinProblem } from '../domain/iin';
import { authorizationHeader, createHttpSend, createHttpsAgent, isRedirect, type HttpAuth, type TlsFiles } from './http-transport';
import { FAILURE_TYPES } from '../domain/failures';
import { timedCall, type CallMetrics } from '../observability/call-metrics';

/** What a demand proves itself with: a stored document, named by its content hash (never the bytes). */
export interface EvidenceRef {
  /** What the document is, e.g. 'dbz-scan' (loan agreement scan) or 'statement-line'. */
  kind: string;
  /** Lowercase hex sha256 of the document's bytes in K2's document store. */
  sha256: string;
  /** e.g. 'application/pdf', 'image/tiff', 'application/json'. */
  mediaType: string;
  fileName: string;
}

/** The payment demand as it travels K2 → EKO (JSON body of the POST). */
export interface PaymentDemand {
  reference: string;
  contract_number: string;
  iban: string;
  /** Decimal string with exactly 2 decimals ("2000000.00"): money never travels as a float. */
  amount: string;
  /** ISO 4217 alphabetic code. */
  currency: string;
  iinbin: string;
  evidence: EvidenceRef[];
  /** ISO 8601 timestamp with offset, e.g. 2026-11-22T15:04:05.000Z. */
  issued_at: string;
}

/** EKO's answer, in the same shape as K2's own answers. */
export interface EkoAnswer {
  error_code: number;
  error_text: string;
}

/**
 * Non-zero codes of EKO's answer to a demand. The seed defines none; these are the contract the
 * simulator implements and the client reports. A non-zero code in a 2xx or 4xx answer is permanent
 * for K2; only the HTTP status (5xx, 429) makes an answer transient.
 */
export const EKO_ERROR = {
  OK: 0,
  /** The demand is malformed (field named in error_text). */
  VALIDATION: 1,
  /** EKO refused the demand on business grounds. */
  REJECTED: 2,
  /** The reference was already used for a different demand. */
  REFERENCE_CONFLICT: 3,
  /** Missing or wrong credentials. */
  UNAUTHORIZED: 4,
  /** EKO is temporarily unavailable; always sent with HTTP 503, so it is transient for K2. */
  UNAVAILABLE: 5,
} as const;

// ---------------------------------------------------------------------------------------------
// Validation: the one definition of a well-formed demand.
// ---------------------------------------------------------------------------------------------

export type DemandValidation = { ok: true; demand: PaymentDemand } | { ok: false; problems: string[] };

/** Exactly two decimals on this wire (K2 always sends a normalized amount); at most 15 integer digits as in domain/money. */
const AMOUNT = /^(0|[1-9]\d{0,14})\.\d{2}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const isNonEmptyString = (v: unknown, max: number): v is string => typeof v === 'string' && v.trim().length > 0 && v.length <= max;

/**
 * Checks a demand as it comes off the wire. Every problem names the field (and evidence index),
 * so EKO's error_text tells K2's operator exactly what is wrong. Unknown fields are ignored.
 */
export function validatePaymentDemand(value: unknown): DemandValidation {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, problems: ['body: expected a JSON object (one payment demand)'] };
  }
  const v = value as Record<string, unknown>;
  const problems: string[] = [];

  if (!isDemandReference(v.reference)) problems.push('reference: expected PTP followed by 11 digits');
  if (!isNonEmptyString(v.contract_number, 64)) problems.push('contract_number: expected a non-empty string of at most 64 characters');
  const ibanWrong = ibanProblem(v.iban);
  if (ibanWrong) problems.push(`iban: ${ibanWrong}`);
  if (typeof v.amount !== 'string' || !AMOUNT.test(v.amount)) problems.push('amount: expected a decimal string with exactly 2 decimals, e.g. "2000000.00"');
  else if (/^0\.00$/.test(v.amount)) problems.push('amount: a demand must be for more than 0.00');
  if (!isIso4217(v.currency)) problems.push('currency: expected an ISO 4217 alphabetic code, e.g. KZT');
  const iinBinWrong = iinBinProblem(v.iinbin);
  if (iinBinWrong) problems.push(`iinbin: ${iinBinWrong}`);
  if (typeof v.issued_at !== 'string' || !ISO_TIMESTAMP.test(v.issued_at) || Number.isNaN(Date.parse(v.issued_at))) {
    problems.push('issued_at: expected an ISO 8601 timestamp with offset, e.g. 2026-01-31T10:00:00Z');
  }

  if (!Array.isArray(v.evidence)) {
    problems.push('evidence: expected an array of document references');
  } else {
    v.evidence.forEach((item: unknown, i: number) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        problems.push(`evidence[${i}]: expected an object {kind, sha256, mediaType, fileName}`);
        return;
      }
      const e = item as Record<string, unknown>;
      if (!isNonEmptyString(e.kind, 64)) problems.push(`evidence[${i}].kind: expected a non-empty string`);
      if (typeof e.sha256 !== 'string' || !SHA256.test(e.sha256)) problems.push(`evidence[${i}].sha256: expected 64 lowercase hex characters`);
      if (typeof e.mediaType !== 'string' || !MEDIA_TYPE.test(e.mediaType))
        problems.push(`evidence[${i}].mediaType: expected a media type such as application/pdf`);
      if (!isNonEmptyString(e.fileName, 255)) problems.push(`evidence[${i}].fileName: expected a non-empty string of at most 255 characters`);
    });
  }

  if (problems.length > 0) return { ok: false, problems };
  // Copy only the known fields, so what is stored and compared is exactly the contract.
  const demand: PaymentDemand = {
    reference: v.reference as string,
    contract_number: v.contract_number as string,
    iban: v.iban as string,
    amount: v.amount as string,
    currency: v.currency as string,
    iinbin: v.iinbin as string,
    evidence: (v.evidence as EvidenceRef[]).map((e) => ({ kind: e.kind, sha256: e.sha256, mediaType: e.mediaType, fileName: e.fileName })),
    issued_at: v.issued_at as string,
  };
  return { ok: true, demand };
}

// ---------------------------------------------------------------------------------------------
// Errors: transient (retry the same demand, same reference) vs rejected (an operator must look).
// ---------------------------------------------------------------------------------------------

/** Network trouble, timeout, 5xx or 429: sending the same demand again is safe and may succeed. */
export class EkoTransientError extends Error {
  constructor(
    message: string,
    /** HTTP status when EKO answered at all. */
    public readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'EkoTransientError';
  }
}

/** EKO answered error_code ≠ 0, or another 4xx: permanent, sending the same demand again will not help. */
export class EkoRejectedError extends Error {
  constructor(
    /** EKO's error_code (see EKO_ERROR); the HTTP status when a 4xx carried no error_code. */
    public readonly code: number,
    /** EKO's error_text (or our own description). */
    public readonly text: string,
    /** HTTP status of the answer; undefined when the demand was refused before sending. */
    public readonly httpStatus?: number,
  ) {
    super(`EKO rejected the demand (code ${code}): ${text}`);
    this.name = 'EkoRejectedError';
  }
}

/** True when sending the same demand again may succeed; anything else (rejections, bugs) is permanent. */
export function isTransientEkoError(err: unknown): boolean {
  return err instanceof EkoTransientError;
}

/** The error class of a failed call in K2's metrics: the failure type activities/index.ts ekoFailure makes of it. */
export function ekoErrorClass(err: unknown): string {
  return err instanceof EkoTransientError ? FAILURE_TYPES.ekoUnavailable : FAILURE_TYPES.ekoRejected;
}

// ---------------------------------------------------------------------------------------------
// The client.
// ---------------------------------------------------------------------------------------------

export interface EkoClientOptions {
  /** config.eko.demandUrl (EKO_DEMAND_URL). */
  demandUrl: string;
  /** config.eko.timeoutMs: the whole call, answer body included. */
  timeoutMs: number;
  /** Credentials EKO expects (config.eko.auth); none by default. */
  auth?: HttpAuth;
  /** Sent as the Authorization header as it is; `auth` is the configured way, this one wins when both are given. */
  authHeader?: string;
  /** CA bundle and client certificate for HTTPS (config.eko.tls); the system CAs when unset. */
  tls?: TlsFiles;
  /** Records each call's latency and outcome (observability/call-metrics.ts): the demands sent and failed; none when unset. */
  metrics?: CallMetrics;
}

/** Per call: the caller's cancellation (e.g. a Temporal activity's cancellationSignal). */
export interface EkoCallOptions {
  signal?: AbortSignal;
}

export interface EkoClient {
  /**
   * Sends one demand, with its reference as Idempotency-Key. Resolves with EKO's answer
   * (error_code 0) — also for a repeat of a reference EKO already holds. Throws EkoTransientError
   * or EkoRejectedError; when the caller's signal aborts, throws the signal's reason instead.
   */
  sendDemand(demand: PaymentDemand, opts?: EkoCallOptions): Promise<EkoAnswer>;
}

function readAnswer(body: unknown): EkoAnswer | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.error_code !== 'number' || !Number.isInteger(b.error_code)) return undefined;
  return { error_code: b.error_code, error_text: typeof b.error_text === 'string' ? b.error_text : '' };
}

export function createEkoClient(options: EkoClientOptions): EkoClient {
  const { demandUrl, timeoutMs } = options;
  const url = new URL(demandUrl);
  const authHeader = options.authHeader ?? authorizationHeader('EKO', options.auth);
  const send = createHttpSend(createHttpsAgent('EKO', options.tls));

  const client: EkoClient = {
    async sendDemand(demand: PaymentDemand, opts?: EkoCallOptions): Promise<EkoAnswer> {
      // A malformed demand is K2's own bug: refuse it here rather than let EKO discover it.
      const checked = validatePaymentDemand(demand);
      if (!checked.ok) throw new EkoRejectedError(EKO_ERROR.VALIDATION, `not sent, the demand is invalid: ${checked.problems.join('; ')}`);

      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        // EKO keys idempotency on the reference: a retry after a lost answer cannot create a second demand.
        'Idempotency-Key': demand.reference,
      };
      if (authHeader) headers.Authorization = authHeader;

      // One signal covers connect, send and reading the answer body; the caller's cancellation aborts it too.
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = opts?.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
      let status: number;
      let text: string;
      try {
        const res = await send(url, { method: 'POST', headers, body: JSON.stringify(checked.demand), signal });
        status = res.status;
        text = await res.text();
      } catch (err) {
        // The caller's own cancellation is not EKO's trouble: it passes through as it is.
        if (opts?.signal?.aborted) throw opts.signal.reason ?? err;
        const e = err as Error;
        if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new EkoTransientError(`EKO did not answer within ${timeoutMs} ms`);
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new EkoTransientError(`EKO unreachable: ${cause?.code ?? cause?.message ?? e.message}`);
      }

      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      const answer = readAnswer(parsed);

      // Never followed (the demand would go wherever Location points); the Location is not quoted.
      if (isRedirect(status)) throw new EkoRejectedError(status, `EKO answered HTTP ${status}, a redirect: not followed (check EKO_DEMAND_URL)`, status);

      if (status >= 500 || status === 429) {
        throw new EkoTransientError(`EKO answered HTTP ${status}${answer?.error_text ? `: ${answer.error_text}` : ''}`, status);
      }
      if (status >= 200 && status < 300) {
        // A 2xx without an EKO answer is probably a proxy page: the demand's fate is unknown, and
        // sending it again is safe (idempotent by reference), so it is transient.
        if (!answer) throw new EkoTransientError(`EKO answered HTTP ${status} without {error_code, error_text}`, status);
        if (answer.error_code !== EKO_ERROR.OK) throw new EkoRejectedError(answer.error_code, answer.error_text || '(no error_text)', status);
        return answer;
      }
      // Any other status (4xx): retrying the same request will not change it.
      if (answer && answer.error_code !== EKO_ERROR.OK) throw new EkoRejectedError(answer.error_code, answer.error_text || `HTTP ${status}`, status);
      // The body is not quoted: it is no EKO answer (a proxy page, perhaps echoing the request with its personal data).
      throw new EkoRejectedError(status, `EKO answered HTTP ${status} without {error_code, error_text} (${text.length} characters)`, status);
    },
  };
  return {
    sendDemand: (demand, opts) =>
      timedCall(options.metrics, 'eko', 'sendDemand', opts?.signal, { errorClass: ekoErrorClass }, () => client.sendDemand(demand, opts)),
  };
}

/**
 * K2's answer codes (gap G5). The seed defines only 0; these are stable: EKO may branch on them,
 * so a code is never renumbered or reused. The README and the OpenAPI document list this table.
 */
export const ERROR_CODES = {
  OK: { code: 0, http: 200, meaning: 'Success: every item is durably accepted (or the status is recorded).' },
  VALIDATION: { code: 1, http: 400, meaning: 'One or more items are invalid; error_text names each item index, field and reason. Nothing was accepted.' },
  MALFORMED_REQUEST: {
    code: 2,
    http: 400,
    meaning: 'The body is not JSON, not application/json, or not of the expected shape (an array of loans / one status object).',
  },
  PAYLOAD_TOO_LARGE: { code: 3, http: 413, meaning: 'The body exceeds the size limit or the item limit; split the request.' },
  UNKNOWN_REFERENCE: { code: 4, http: 404, meaning: 'No payment demand with this reference was issued by K2.' },
  UNKNOWN_STATUS_CODE: { code: 5, http: 400, meaning: 'status_code is not one of PC1, PC3.' },
  UNAUTHORIZED: { code: 6, http: 401, meaning: 'Missing or wrong credentials.' },
  TEMPORARILY_UNAVAILABLE: {
    code: 7,
    http: 503,
    meaning: 'K2 cannot record the request right now (database or Temporal unreachable); retry later. Nothing was accepted.',
  },
  NOT_FOUND: { code: 8, http: 404, meaning: 'No such endpoint or method.' },
  INTERNAL: { code: 9, http: 500, meaning: 'An unexpected error in K2; it is logged. Nothing was accepted.' },
  TOO_MANY_REQUESTS: {
    code: 10,
    http: 429,
    meaning:
      'Too many requests: K2 serves K2_API_MAX_CONCURRENT requests at once and K2_API_RATE_PER_CLIENT per second per client. Nothing was accepted; retry after the seconds in Retry-After.',
  },
  FORBIDDEN: { code: 11, http: 403, meaning: 'Not allowed from this address: /metrics and /ready answer loopback clients only (K2_API_OPS_AUTH=loopback).' },
} as const;

export type ErrorCodeName = keyof typeof ERROR_CODES;

export interface K2Answer {
  error_text: string;
  error_code: number;
}

/** error_text is capped so that a request with 50,000 bad items still gets a readable answer. */
export const MAX_ERROR_TEXT = 4000;

export function answer(name: ErrorCodeName, text = ''): { http: number; body: K2Answer } {
  const entry = ERROR_CODES[name];
  return { http: entry.http, body: { error_text: text.slice(0, MAX_ERROR_TEXT), error_code: entry.code } };
}

/** OpenAPI 3.1 description of K2's two inbound services, served at /openapi.json and checked by tests. */
import { ERROR_CODES } from './error-codes';

const answerSchema = {
  type: 'object',
  required: ['error_text', 'error_code'],
  properties: {
    error_text: { type: 'string', maxLength: 4000, description: 'Empty on success; otherwise which item, which field, why.' },
    error_code: { type: 'integer', enum: Object.values(ERROR_CODES).map((e) => e.code) },
  },
};

const codeTable = Object.values(ERROR_CODES)
  .map((e) => `| ${e.code} | ${e.http} | ${e.meaning} |`)
  .join('\n');

/** A refused request says when to come back (RFC 9110 Retry-After, in seconds). */
const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 1 } } };

/** Each HTTP status of a service with the answer schema narrowed to that status's codes: a 400 never carries error_code 0. */
const answers = (codes: Array<keyof typeof ERROR_CODES>) =>
  Object.fromEntries(
    [...new Set(codes.map((c) => ERROR_CODES[c].http))].map((http) => {
      const here = codes.filter((c) => ERROR_CODES[c].http === http);
      return [
        String(http),
        {
          description: here.map((c) => `error_code ${ERROR_CODES[c].code}: ${ERROR_CODES[c].meaning}`).join(' '),
          ...(http === ERROR_CODES.TOO_MANY_REQUESTS.http ? { headers: retryAfter } : {}),
          content: {
            'application/json': {
              schema: { allOf: [{ $ref: '#/components/schemas/Answer' }, { properties: { error_code: { enum: here.map((c) => ERROR_CODES[c].code) } } }] },
            },
          },
        },
      ];
    }),
  );

/**
 * Contract numbers (domain/loan.ts): Latin and Cyrillic letters, digits, space and - _ / . №, no space
 * at either end. Every character allowed is in the BMP, so JSON Schema's code-point length is K2's.
 */
const CONTRACT_CHAR = '-A-Za-z\u0400-\u04FF0-9_/.\u2116'; // a leading '-' is itself, in ECMA and in Python regexes alike
const CONTRACT_NUMBER_PATTERN = `^[${CONTRACT_CHAR}]([${CONTRACT_CHAR} ]*[${CONTRACT_CHAR}])?$`;

/** What every service can answer besides its own codes. */
const COMMON: Array<keyof typeof ERROR_CODES> = ['UNAUTHORIZED', 'TOO_MANY_REQUESTS', 'TEMPORARILY_UNAVAILABLE', 'INTERNAL'];

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'K2 (Картотека обременений) inbound services',
    version: '1.0.0',
    description:
      'Services EKO calls. Every answer is { error_text, error_code }. K2 serves K2_API_MAX_CONCURRENT requests at once and K2_API_RATE_PER_CLIENT per second per client ' +
      '(the authenticated user or token, else the address); more are refused with error_code 10 and Retry-After, before their body is read. ' +
      'Beside the services: /health (never limited), /ready and /metrics (guarded by K2_API_OPS_AUTH: loopback, token or open).' +
      `\n\n| error_code | HTTP | meaning |\n|---|---|---|\n${codeTable}`,
  },
  servers: [{ url: '/' }],
  security: [{ basic: [] }, { bearer: [] }],
  paths: {
    '/restapi/services/k2loan_from_eko': {
      post: {
        operationId: 'k2loanFromEko',
        summary: 'Overdue loans from EKO (all-or-nothing; up to 50,000 items)',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'array', minItems: 1, maxItems: 50000, items: { $ref: '#/components/schemas/Loan' } } } },
        },
        responses: answers(['OK', 'VALIDATION', 'MALFORMED_REQUEST', 'PAYLOAD_TOO_LARGE', ...COMMON]),
      },
    },
    '/restapi/services/k2req_status_from_eko': {
      post: {
        operationId: 'k2reqStatusFromEko',
        summary: 'Status of a payment demand K2 issued',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/DemandStatus' } } } },
        responses: answers(['OK', 'VALIDATION', 'MALFORMED_REQUEST', 'PAYLOAD_TOO_LARGE', 'UNKNOWN_REFERENCE', 'UNKNOWN_STATUS_CODE', ...COMMON]),
      },
    },
  },
  components: {
    securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Answer: answerSchema,
      Loan: {
        type: 'object',
        required: ['iban', 'cur', 'debt', 'fullname', 'contract_number', 'dbz_contract_number', 'iinbin', 'overdue_days', 'system'],
        properties: {
          iban: { type: 'string', pattern: '^KZ[0-9]{2}[0-9]{3}[0-9A-Z]{13}$', description: 'Kazakhstan IBAN, mod-97 checked.' },
          cur: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 alphabetic code.' },
          debt: {
            type: ['number', 'string'],
            minimum: 0,
            exclusiveMaximum: 1e15,
            pattern: '^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,2})?$',
            description:
              'Overdue debt, ≥ 0, at most 15 integer digits and 2 decimals: a JSON number (of at most 15 significant digits) or a plain decimal string (no sign, exponent or leading zeros). 0 means repaid: the case closes.',
          },
          // The limit is on the name as K2 keeps it (trimmed, whitespace runs collapsed), which a schema cannot state: no maxLength.
          fullname: {
            type: 'string',
            pattern: '\\S',
            description: 'Display name; trimmed and inner whitespace runs collapsed to one space, then 1 to 256 characters, without control characters.',
          },
          contract_number: { type: 'string', minLength: 1, maxLength: 64, pattern: CONTRACT_NUMBER_PATTERN, description: 'Business key of the case.' },
          dbz_contract_number: { type: 'string', minLength: 1, maxLength: 64, pattern: CONTRACT_NUMBER_PATTERN, description: 'Loan agreement (ДБЗ) number.' },
          iinbin: { type: 'string', pattern: '^[0-9]{12}$', description: 'IIN or BIN with a valid check digit.' },
          overdue_days: { type: 'integer', minimum: 0, maximum: 36500 },
          system: { type: 'string', minLength: 1, description: 'ABS system code from the configured list (K2_ABS_SYSTEMS).' },
          dbz_date: {
            type: ['string', 'null'],
            pattern: '^[0-9]{4}(-[0-9]{2}-[0-9]{2}|\\.[0-9]{2}\\.[0-9]{2})$',
            description: 'Optional loan agreement date YYYY-MM-DD (or YYYY.MM.DD), a real date from 1990-01-01 — gap G1. null is the same as absent.',
          },
        },
      },
      DemandStatus: {
        type: 'object',
        required: ['reference', 'status_code'],
        properties: {
          reference: { type: 'string', pattern: '^PTP[0-9]{11}$' },
          status_code: { type: 'string', enum: ['PC1', 'PC3'], description: 'PC1 Принята банком; PC3 Принята в картотеку банка.' },
        },
      },
    },
  },
} as const;

/**
 * ABS (the core banking system), in one module: the four GET services K2 calls (k2-integration.rst,
 * "Сервисы, которые вызываем в АБС"; DOMAIN.md §4).
 *
 *   client info   GET clientUrl?iinbin=            → {error_code, error_text, iinbin, fullname, sectecon, residfl}
 *   accounts      GET accountsUrl?iinbin=          → {error_code, error_text, ibans[]: {iban, accountName, ps, system, cur}}
 *   statement     GET statementUrl?iban=&dt=       → {error_code, error_text, stmt[]: {purpose, amount, cur, DC, out_bal}}
 *   scan (ДБЗ)    GET scanUrl?dbz_num=&dbz_dt=&iinbin= → 200 PDF/TIFF with Content-Disposition, 404 when there is none
 *
 * Dates go out in the configured format (`dateFormat`): the specification's examples show
 * YYYY-MM-DD (the default), its field tables say ГГГГ.ММ.ДД; a bank's ABS may want either.
 *
 * The wire types are written once here (the ABS simulator answers with the same types) and every
 * answer is validated at the edge by hand-written readers, so the rest of K2 sees only checked,
 * normalized values: money as decimal strings with two decimals ("900000.00"). An answer is judged by
 * what it is rather than by its headers: JSON that parses is read whatever its Content-Type, and a
 * scan's type comes from its first bytes (PDF or TIFF), as ABS gateways often label both wrongly.
 *
 * Three kinds of outcome, because the case workflow treats them differently (DOMAIN.md §2, §4):
 *  - business answer (200 with error_code ≠ 0): returned as `{ ok: false, errorCode, errorText }`, never thrown;
 *  - AbsTransientError (network, timeout, 5xx, 408, 429): thrown, retried with backoff;
 *  - AbsProtocolError (malformed answer, a scan that is no PDF or TIFF, other 4xx): thrown, retrying will not help.
 * The caller's cancellation (opts.signal) aborts the HTTP request and is rethrown as the signal's
 * reason: it is neither kind, so it is never taken for trouble worth retrying. Error messages name the call and the field,
 * never the IIN, IBAN or a name (they reach logs and the Web UI).
 *
 * The wire (integrations/http-transport.ts): HTTPS with an optional CA bundle and client certificate
 * (`tls`), HTTP Basic or bearer credentials (`auth`), and redirects never followed: a 3xx is an
 * AbsProtocolError naming the status, because following it would send the IIN to another host.
 */
import { Readable } from 'node:stream';
import { parseWireDate } from '../domain/dates';
import { moneyProblem, parseMoney } from '../domain/money';
import { isIso4217 } from '../domain/currency';
import { authorizationHeader, createHttpSend, createHttpsAgent, isRedirect, type HttpAuth, type HttpSend, type TlsFiles } from './http-transport';
import { FAILURE_TYPES } from '../domain/failures';
import { timedCall, type CallClassifier, type CallMetrics } from '../observability/call-metrics';

// ---------------------------------------------------------------------------------------------
// Wire types: exactly what travels, as the specification shows it.
// ---------------------------------------------------------------------------------------------

/** Every JSON answer of ABS carries these two; error_code 0 is success. */
export interface AbsAnswerWire {
  error_code: number;
  error_text: string;
}

export interface AbsClientWire extends AbsAnswerWire {
  iinbin: string;
  fullname: string;
  /** Sector of the economy code (e.g. 9 households). */
  sectecon: number;
  /** Resident flag (1 resident). */
  residfl: number;
}

export interface AbsAccountWire {
  iban: string;
  /** Usually the holder's full name. */
  accountName: string;
  /** General-ledger plan code, e.g. "2204191". */
  ps: string;
  /** ABS system code, e.g. "way4". */
  system: string;
  cur: string;
}

export interface AbsAccountsWire extends AbsAnswerWire {
  ibans: AbsAccountWire[];
}

export interface AbsStatementLineWire {
  purpose: string;
  /** A JSON number on the wire (900000); read without float arithmetic. */
  amount: number;
  cur: string;
  DC: 'D' | 'C';
  out_bal: number;
}

export interface AbsStatementWire extends AbsAnswerWire {
  stmt: AbsStatementLineWire[];
}

/** Query parameter names, shared with the simulator. */
export const ABS_QUERY = {
  client: ['iinbin'],
  accounts: ['iinbin'],
  statement: ['iban', 'dt'],
  scan: ['dbz_num', 'dbz_dt', 'iinbin'],
} as const;

// ---------------------------------------------------------------------------------------------
// Checked values: what the rest of K2 gets.
// ---------------------------------------------------------------------------------------------

export interface AbsClientInfo {
  iinbin: string;
  fullname: string;
  sectecon: number;
  residfl: number;
}

export interface AbsAccount {
  iban: string;
  accountName: string;
  ps: string;
  system: string;
  cur: string;
}

export interface AbsStatementLine {
  purpose: string;
  /** Decimal string with exactly 2 decimals. */
  amount: string;
  cur: string;
  DC: 'D' | 'C';
  /** Decimal string with exactly 2 decimals. */
  out_bal: string;
}

/** A JSON call's outcome: the value, or ABS's business answer (error_code ≠ 0), which is never retried. */
export type AbsResult<T> = { ok: true; value: T } | { ok: false; errorCode: number; errorText: string };

/** The loan agreement scan. The body must be consumed or destroyed: it holds the HTTP connection. */
export type AbsScan =
  | { found: false }
  | { found: true; /** From the first bytes, whatever the Content-Type said. */ mediaType: ScanMediaType; fileName: string; size?: number; body: Readable };

export type AbsCall = 'client' | 'accounts' | 'statement' | 'scan';

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

/** Network error, timeout, 5xx, 408 or 429: the same request may succeed later. */
export class AbsTransientError extends Error {
  constructor(
    public readonly call: AbsCall,
    detail: string,
    /** HTTP status when ABS answered at all. */
    public readonly httpStatus?: number,
    /** From a Retry-After header (429/503), when ABS sent one. */
    public readonly retryAfterMs?: number,
  ) {
    super(`ABS ${call}: ${detail}`);
    this.name = 'AbsTransientError';
  }
}

/** ABS answered something K2 cannot read (or refused the request itself): retrying the same request will not help. */
export class AbsProtocolError extends Error {
  constructor(
    public readonly call: AbsCall,
    detail: string,
    public readonly httpStatus?: number,
  ) {
    super(`ABS ${call}: ${detail}`);
    this.name = 'AbsProtocolError';
  }
}

export function isTransientAbsError(e: unknown): e is AbsTransientError {
  return e instanceof AbsTransientError;
}

/** The error class of a failed call in K2's metrics: the failure type activities/index.ts absFailure makes of it. */
export function absErrorClass(err: unknown): string {
  return err instanceof AbsTransientError ? FAILURE_TYPES.absUnavailable : FAILURE_TYPES.absProtocol;
}

// ---------------------------------------------------------------------------------------------
// Readers: one place that turns `unknown` into checked values, naming the field on failure.
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

class AnswerReader {
  constructor(private readonly call: AbsCall) {}

  fail(path: string, problem: string): never {
    throw new AbsProtocolError(this.call, `${path} ${problem}`);
  }

  object(value: unknown, path: string): Obj {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(path, 'is not a JSON object');
    return value as Obj;
  }

  /** Present and not null; ABS sometimes sends null for "no value", which is as good as missing here. */
  present(obj: Obj, key: string, path: string): unknown {
    const v = obj[key];
    if (v === undefined || v === null) this.fail(`${path}${key}`, 'missing');
    return v;
  }

  string(obj: Obj, key: string, path: string, { nonEmpty = true } = {}): string {
    const v = this.present(obj, key, path);
    if (typeof v !== 'string') this.fail(`${path}${key}`, 'is not a string');
    if (nonEmpty && v.trim() === '') this.fail(`${path}${key}`, 'is empty');
    return v;
  }

  /** A code that may come as a number or as text ("2204191"): kept as text. */
  code(obj: Obj, key: string, path: string): string {
    const v = this.present(obj, key, path);
    if (typeof v === 'number' && Number.isInteger(v)) return String(v);
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    return this.fail(`${path}${key}`, 'is not a code');
  }

  /** An integer that may come as a number or as digit text ("9"). */
  integer(obj: Obj, key: string, path: string): number {
    const v = this.present(obj, key, path);
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^-?\d{1,9}$/.test(v.trim())) return Number(v.trim());
    return this.fail(`${path}${key}`, 'is not an integer');
  }

  money(obj: Obj, key: string, path: string): string {
    const v = this.present(obj, key, path);
    const problem = moneyProblem(v);
    if (problem) this.fail(`${path}${key}`, `is not an amount (${problem})`);
    return parseMoney(v);
  }

  currency(obj: Obj, key: string, path: string): string {
    const v = this.string(obj, key, path);
    if (isIso4217(v)) return v;
    // The value is a currency code, not personal data, so it may appear in the message.
    return this.fail(`${path}${key}`, `${JSON.stringify(String(v).slice(0, 8))} is not an ISO 4217 code`);
  }

  array(obj: Obj, key: string, path: string): unknown[] {
    const v = this.present(obj, key, path);
    if (!Array.isArray(v)) this.fail(`${path}${key}`, 'is not an array');
    return v;
  }
}

/** error_code/error_text of any JSON answer; a non-zero code ends reading (business answer). */
function readEnvelope(r: AnswerReader, body: Obj): { ok: true } | { ok: false; errorCode: number; errorText: string } {
  const errorCode = r.integer(body, 'error_code', '');
  const text = body.error_text;
  if (text !== undefined && text !== null && typeof text !== 'string') r.fail('error_text', 'is not a string');
  if (errorCode === 0) return { ok: true };
  return { ok: false, errorCode, errorText: typeof text === 'string' && text.trim() !== '' ? text : `error_code ${errorCode} without error_text` };
}

export function readClientAnswer(body: unknown, askedIinbin?: string): AbsResult<AbsClientInfo> {
  const r = new AnswerReader('client');
  const o = r.object(body, 'answer');
  const envelope = readEnvelope(r, o);
  if (!envelope.ok) return envelope;
  const iinbin = r.code(o, 'iinbin', '');
  // ABS answering about someone else is a serious protocol fault: the dossier would mix two people.
  if (askedIinbin !== undefined && iinbin !== askedIinbin) r.fail('iinbin', 'differs from the requested IIN/BIN');
  return {
    ok: true,
    value: {
      iinbin,
      fullname: r.string(o, 'fullname', '').trim(),
      sectecon: r.integer(o, 'sectecon', ''),
      residfl: r.integer(o, 'residfl', ''),
    },
  };
}

export function readAccountsAnswer(body: unknown): AbsResult<{ ibans: AbsAccount[] }> {
  const r = new AnswerReader('accounts');
  const o = r.object(body, 'answer');
  const envelope = readEnvelope(r, o);
  if (!envelope.ok) return envelope;
  const ibans = r.array(o, 'ibans', '').map((item, i): AbsAccount => {
    const path = `ibans[${i}].`;
    const a = r.object(item, `ibans[${i}]`);
    return {
      // Not checked against mod-97 here: one odd legacy account must not hide the others;
      // the account check compares the loan's (validated) IBAN with this list.
      iban: r.string(a, 'iban', path).trim(),
      accountName: r.string(a, 'accountName', path, { nonEmpty: false }),
      ps: r.code(a, 'ps', path),
      system: r.string(a, 'system', path).trim(),
      cur: r.currency(a, 'cur', path),
    };
  });
  return { ok: true, value: { ibans } };
}

export function readStatementAnswer(body: unknown): AbsResult<{ stmt: AbsStatementLine[] }> {
  const r = new AnswerReader('statement');
  const o = r.object(body, 'answer');
  const envelope = readEnvelope(r, o);
  if (!envelope.ok) return envelope;
  const stmt = r.array(o, 'stmt', '').map((item, i): AbsStatementLine => {
    const path = `stmt[${i}].`;
    const l = r.object(item, `stmt[${i}]`);
    const text = r.string(l, 'DC', path);
    const dc = text === 'D' || text === 'C' ? text : r.fail(`${path}DC`, `${JSON.stringify(text.slice(0, 4))} is neither D nor C`);
    return {
      purpose: r.string(l, 'purpose', path, { nonEmpty: false }),
      amount: r.money(l, 'amount', path),
      cur: r.currency(l, 'cur', path),
      DC: dc,
      out_bal: r.money(l, 'out_bal', path),
    };
  });
  return { ok: true, value: { stmt } };
}

// ---------------------------------------------------------------------------------------------
// Content-Disposition (RFC 6266 / RFC 5987), for the scan's file name.
// ---------------------------------------------------------------------------------------------

/** Splits `attachment; a=b; c="d;e"` into lower-cased parameter names and raw (unquoted) values. */
function dispositionParams(header: string): Map<string, string> {
  const params = new Map<string, string>();
  let i = header.indexOf(';');
  while (i >= 0 && i < header.length) {
    i++; // past ';'
    const eq = header.indexOf('=', i);
    if (eq < 0) break;
    const name = header.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (header[j] === ' ' || header[j] === '\t') j++;
    let value = '';
    if (header[j] === '"') {
      j++;
      while (j < header.length && header[j] !== '"') {
        if (header[j] === '\\' && j + 1 < header.length) j++; // quoted-pair
        value += header[j++];
      }
      i = header.indexOf(';', j);
    } else {
      const end = header.indexOf(';', j);
      value = (end < 0 ? header.slice(j) : header.slice(j, end)).trim();
      i = end;
    }
    if (name && !params.has(name)) params.set(name, value);
  }
  return params;
}

/** RFC 5987 ext-value: charset'language'percent-encoded. */
function decodeExtValue(value: string): string | undefined {
  const m = /^([\w!#$%&+^`{}~-]+)'[^']*'(.*)$/.exec(value);
  if (!m) return undefined;
  const charset = m[1].toLowerCase();
  try {
    if (charset === 'utf-8') return decodeURIComponent(m[2]);
    // Percent-encoded bytes of ISO-8859-1 are its code points.
    if (charset === 'iso-8859-1') return m[2].replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * HTTP header values arrive as bytes read one-to-one as Latin-1. A server that puts raw UTF-8 into
 * `filename="Имяфайла.pdf"` (as the specification's example does) therefore gives us mojibake;
 * re-read such text as UTF-8 when it is valid UTF-8.
 */
function repairRawUtf8(s: string): string {
  if (!/[\x80-\xff]/.test(s) || /[^\x00-\xff]/.test(s)) return s;
  const decoded = Buffer.from(s, 'latin1').toString('utf8');
  return decoded.includes('\ufffd') ? s : decoded;
}

/** Keeps only a plain file name: no folders, no control characters (the name is shown to operators and stored). */
function cleanFileName(name: string): string | undefined {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\x00-\x1f\x7f]/g, '').trim();
  return clean === '' || clean === '.' || clean === '..' ? undefined : clean.slice(0, 255);
}

/**
 * The file name of a Content-Disposition header: `filename*=UTF-8''%D0%98…` wins over `filename=`;
 * a plain `filename` may carry raw UTF-8 bytes or (as some Java servers do) percent-encoded UTF-8.
 */
export function fileNameFromContentDisposition(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const params = dispositionParams(header);
  const extended = params.get('filename*');
  if (extended !== undefined) {
    const decoded = decodeExtValue(extended);
    const name = decoded === undefined ? undefined : cleanFileName(decoded);
    if (name) return name;
  }
  const plain = params.get('filename');
  if (plain === undefined) return undefined;
  let name = repairRawUtf8(plain);
  if (/%[0-9a-f]{2}/i.test(name)) {
    try {
      const decoded = decodeURIComponent(name);
      if (/[^\x00-\x7f]/.test(decoded)) name = decoded; // only when it really was encoded text
    } catch {
      // not percent-encoding after all: keep the name as sent
    }
  }
  return cleanFileName(name);
}

// ---------------------------------------------------------------------------------------------
// Dates, bodies and scans as they come: small pure helpers.
// ---------------------------------------------------------------------------------------------

/** How ABS wants dates in a query (dt, dbz_dt): the specification's examples show YYYY-MM-DD, its tables ГГГГ.ММ.ДД. */
export type AbsDateFormat = 'YYYY-MM-DD' | 'YYYY.MM.DD';
export const ABS_DATE_FORMATS: readonly AbsDateFormat[] = ['YYYY-MM-DD', 'YYYY.MM.DD'];

/** A date in either wire form → the form ABS wants; undefined for anything that is not a real date. */
export function formatAbsDate(value: string, format: AbsDateFormat): string | undefined {
  const iso = parseWireDate(value);
  if (iso === undefined) return undefined;
  return format === 'YYYY.MM.DD' ? iso.replace(/-/g, '.') : iso;
}

export type ScanMediaType = 'application/pdf' | 'image/tiff';

/** How many first bytes tell a scan's type. */
export const SCAN_SIGNATURE_BYTES = 5;

const PDF_SIGNATURE = [0x25, 0x50, 0x44, 0x46, 0x2d]; // %PDF-
const TIFF_LITTLE_ENDIAN = [0x49, 0x49, 0x2a, 0x00]; // II*\0
const TIFF_BIG_ENDIAN = [0x4d, 0x4d, 0x00, 0x2a]; // MM\0*

/** A scan's type by its first bytes (PDF, or TIFF in either byte order); undefined for anything else. */
export function scanTypeOf(head: Uint8Array): ScanMediaType | undefined {
  const startsWith = (signature: number[]) => signature.every((byte, i) => head[i] === byte);
  if (startsWith(PDF_SIGNATURE)) return 'application/pdf';
  if (startsWith(TIFF_LITTLE_ENDIAN) || startsWith(TIFF_BIG_ENDIAN)) return 'image/tiff';
  return undefined;
}

/** What a body that is not JSON looks like, without quoting it: it may hold personal data. */
export function describeBody(text: string): string {
  const bytes = Buffer.byteLength(text);
  if (text.trim() === '') return bytes === 0 ? 'an empty body' : `${bytes} bytes of white space`;
  if (text.trimStart().startsWith('<')) return `an HTML or XML page of ${bytes} bytes`;
  return `${bytes} bytes of text`;
}

/** JSON.parse's complaint without the excerpt of the text that Node quotes in it (it may hold an IIN or a name). */
function jsonProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .split('"')[0]
    .replace(/[\s,]+$/, '')
    .slice(0, 100);
}

// ---------------------------------------------------------------------------------------------
// The client.
// ---------------------------------------------------------------------------------------------

export interface AbsClientOptions {
  clientUrl: string;
  accountsUrl: string;
  statementUrl: string;
  scanUrl: string;
  /** One JSON call as a whole; for the scan, the wait for headers and then for each next chunk. */
  timeoutMs: number;
  /** The form of dt and dbz_dt in the query; YYYY-MM-DD by default. */
  dateFormat?: AbsDateFormat;
  /** CA bundle and client certificate for HTTPS (config.abs.tls); the system CAs when unset. */
  tls?: TlsFiles;
  /** Credentials ABS expects (config.abs.auth); none by default. */
  auth?: HttpAuth;
  /** For tests; by default requests go over node:http/https with the `tls` material (http-transport.ts). */
  fetch?: HttpSend;
  /** Records each call's latency and outcome (observability/call-metrics.ts); none when unset. */
  metrics?: CallMetrics;
}

/** Per call: the caller's cancellation (e.g. a Temporal activity's cancellationSignal); it aborts the HTTP request. */
export interface AbsCallOptions {
  signal?: AbortSignal;
}

export interface AbsScanRequest {
  dbzNum: string;
  /** YYYY-MM-DD or YYYY.MM.DD; sent in the client's dateFormat. */
  dbzDate: string;
  iinbin: string;
}

export interface AbsClient {
  getClient(iinbin: string, opts?: AbsCallOptions): Promise<AbsResult<AbsClientInfo>>;
  getAccounts(iinbin: string, opts?: AbsCallOptions): Promise<AbsResult<{ ibans: AbsAccount[] }>>;
  /** `dt`: YYYY-MM-DD or YYYY.MM.DD; sent in the client's dateFormat. */
  getStatement(iban: string, dt: string, opts?: AbsCallOptions): Promise<AbsResult<{ stmt: AbsStatementLine[] }>>;
  /** The type is known when this resolves (from the first bytes); the rest of the scan streams through `body`. */
  getScan(request: AbsScanRequest, opts?: AbsCallOptions): Promise<AbsScan>;
}

function mediaTypeOf(res: Response): string {
  return (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase().slice(0, 80);
}

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Releases the connection of an answer we will not read. */
function discard(res: Response): void {
  res.body?.cancel().catch(() => undefined);
}

type BodyReader = ReadableStreamDefaultReader<Uint8Array>;

/** Reads chunks until the scan's signature can be told (or the body ends); `onChunk` re-arms the idle timeout. */
async function readHead(reader: BodyReader, onChunk: () => void): Promise<{ head: Uint8Array[]; done: boolean }> {
  const head: Uint8Array[] = [];
  let size = 0;
  while (size < SCAN_SIGNATURE_BYTES) {
    const next = await reader.read();
    if (next.done) return { head, done: true };
    onChunk();
    head.push(next.value);
    size += next.value.length;
  }
  return { head, done: false };
}

export function createAbsClient(options: AbsClientOptions): AbsClient {
  const doFetch = options.fetch ?? createHttpSend(createHttpsAgent('ABS', options.tls));
  const authorization = authorizationHeader('ABS', options.auth);
  const headersWith = (accept: string): Record<string, string> => (authorization ? { accept, authorization } : { accept });
  const { timeoutMs } = options;
  const dateFormat = options.dateFormat ?? 'YYYY-MM-DD';
  if (!ABS_DATE_FORMATS.includes(dateFormat))
    throw new RangeError(`ABS dateFormat must be one of ${ABS_DATE_FORMATS.join(', ')}, got ${JSON.stringify(dateFormat)}`);
  // Fail at start-up on a bad URL rather than on the first case.
  const urls = {
    client: new URL(options.clientUrl),
    accounts: new URL(options.accountsUrl),
    statement: new URL(options.statementUrl),
    scan: new URL(options.scanUrl),
  };

  const urlWith = (call: AbsCall, query: Record<string, string>): URL => {
    const url = new URL(urls[call]);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  };

  /** The date as ABS gets it, or a programming error (the case holds validated dates). */
  const wireDate = (call: AbsCall, field: string, value: string): string => {
    const date = formatAbsDate(value, dateFormat);
    if (date === undefined) throw new RangeError(`ABS ${call}: ${field} ${JSON.stringify(value)} is not a date (YYYY-MM-DD or YYYY.MM.DD)`);
    return date;
  };

  /** Maps whatever fetch or a body read threw to our errors; the caller's own cancellation passes through. */
  const classify = (call: AbsCall, err: unknown, callerSignal: AbortSignal | undefined): unknown => {
    if (callerSignal?.aborted) return callerSignal.reason ?? err;
    if (err instanceof AbsTransientError || err instanceof AbsProtocolError) return err;
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError') return new AbsTransientError(call, `no answer within ${timeoutMs} ms`);
    const reason = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
    return new AbsTransientError(call, `network error (${reason})`);
  };

  /** The status rules shared by all four calls; returns only for 200 (and 404, when it is an answer). */
  const checkStatus = (call: AbsCall, res: Response, notFoundIsAnswer: boolean): void => {
    if (res.status === 200 || (notFoundIsAnswer && res.status === 404)) return;
    discard(res);
    // The Location is not quoted: it may carry the query, and with it the IIN.
    if (isRedirect(res.status)) throw new AbsProtocolError(call, `HTTP ${res.status} redirect, not followed (check the ABS URL)`, res.status);
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new AbsTransientError(call, `HTTP ${res.status}`, res.status, retryAfterMs(res));
    }
    throw new AbsProtocolError(call, `unexpected HTTP ${res.status}`, res.status);
  };

  /**
   * JSON that parses is read whatever the Content-Type says (gateways send text/plain or text/html
   * for JSON); when it does not parse, the error says what came instead.
   */
  const getJson = async (call: AbsCall, query: Record<string, string>, opts: AbsCallOptions | undefined): Promise<unknown> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts?.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
    let text: string;
    let type: string;
    try {
      const res = await doFetch(urlWith(call, query), { method: 'GET', headers: headersWith('application/json'), signal, redirect: 'manual' });
      checkStatus(call, res, false);
      type = mediaTypeOf(res);
      text = await res.text();
    } catch (err) {
      throw classify(call, err, opts?.signal);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      if (type === 'application/json' || type.endsWith('+json')) {
        throw new AbsProtocolError(call, `answer is not valid JSON (${jsonProblem(err)}; ${describeBody(text)})`, 200);
      }
      throw new AbsProtocolError(
        call,
        `content type ${JSON.stringify(type || '(none)')} instead of application/json, and the answer is not JSON either (${describeBody(text)})`,
        200,
      );
    }
  };

  const client: AbsClient = {
    async getClient(iinbin, opts) {
      return readClientAnswer(await getJson('client', { iinbin }, opts), iinbin);
    },

    async getAccounts(iinbin, opts) {
      return readAccountsAnswer(await getJson('accounts', { iinbin }, opts));
    },

    async getStatement(iban, dt, opts) {
      const date = wireDate('statement', 'dt', dt);
      return readStatementAnswer(await getJson('statement', { iban, dt: date }, opts));
    },

    async getScan({ dbzNum, dbzDate, iinbin }, opts) {
      const call: AbsCall = 'scan';
      const date = wireDate(call, 'dbzDate', dbzDate);
      // A scan may be large and slow, so its timeout is an idle timeout (re-armed on every chunk),
      // not a deadline for the whole file: AbortSignal.timeout cannot be re-armed, hence a controller.
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(new DOMException(`no data within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
      };
      const callerSignal = opts?.signal;
      const signal = callerSignal ? AbortSignal.any([controller.signal, callerSignal]) : controller.signal;

      let res: Response;
      arm();
      try {
        res = await doFetch(urlWith(call, { dbz_num: dbzNum, dbz_dt: date, iinbin }), {
          method: 'GET',
          headers: headersWith('application/pdf, image/tiff'),
          signal,
          redirect: 'manual',
        });
        checkStatus(call, res, true);
      } catch (err) {
        clearTimeout(timer);
        throw classify(call, err, callerSignal);
      }
      if (res.status === 404) {
        clearTimeout(timer);
        discard(res);
        return { found: false };
      }

      // The type comes from the first bytes, not the header (application/octet-stream, or a wrong
      // type, is common for files); only these bytes are read before the scan is handed on.
      const declared = JSON.stringify(mediaTypeOf(res) || '(none)');
      const reader: BodyReader | undefined = res.body?.getReader();
      let head: Uint8Array[] = [];
      let done = true;
      try {
        if (reader) ({ head, done } = await readHead(reader, arm));
      } catch (err) {
        clearTimeout(timer);
        throw classify(call, err, callerSignal);
      }
      const first = Buffer.concat(head);
      const mediaType = scanTypeOf(first);
      if (!mediaType) {
        clearTimeout(timer);
        reader?.cancel().catch(() => undefined);
        const what = first.length === 0 ? 'the scan is empty' : 'not a PDF or TIFF scan by its first bytes';
        throw new AbsProtocolError(call, `${what} (content type ${declared})`, res.status);
      }
      const fileName =
        fileNameFromContentDisposition(res.headers.get('content-disposition')) ?? `dbz-${date}.${mediaType === 'application/pdf' ? 'pdf' : 'tif'}`;
      const length = res.headers.get('content-length');
      const size = length && /^\d+$/.test(length) ? Number(length) : undefined;

      async function* chunks(): AsyncGenerator<Uint8Array> {
        let finished = done;
        try {
          yield* head;
          while (!finished && reader) {
            const next = await reader.read();
            if (next.done) {
              finished = true;
              break;
            }
            arm();
            yield next.value;
          }
        } catch (err) {
          throw classify(call, err, callerSignal);
        } finally {
          clearTimeout(timer);
          // The consumer destroyed the stream early (or a read failed): release the connection.
          if (!finished) reader?.cancel().catch(() => undefined);
        }
      }
      return { found: true, mediaType, fileName, size, body: Readable.from(chunks(), { objectMode: false }) };
    },
  };

  // Metrics: a business answer is ABS working (the case decides what it means), not an error.
  const json: CallClassifier<AbsResult<unknown>> = { errorClass: absErrorClass, resultOutcome: (r) => (r.ok ? 'ok' : 'business-answer') };
  const scan: CallClassifier<AbsScan> = { errorClass: absErrorClass };
  const timed = <T>(call: AbsCall, opts: AbsCallOptions | undefined, classifier: NoInfer<CallClassifier<T>>, fn: () => Promise<T>) =>
    timedCall(options.metrics, 'abs', call, opts?.signal, classifier, fn);
  return {
    getClient: (iinbin, opts) => timed('client', opts, json, () => client.getClient(iinbin, opts)),
    getAccounts: (iinbin, opts) => timed('accounts', opts, json, () => client.getAccounts(iinbin, opts)),
    getStatement: (iban, dt, opts) => timed('statement', opts, json, () => client.getStatement(iban, dt, opts)),
    getScan: (request, opts) => timed('scan', opts, scan, () => client.getScan(request, opts)),
  };
}

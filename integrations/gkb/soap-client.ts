/**
 * The one GKB client module: K2's only way to talk to the bureau's BatchProcessingService
 * (DOMAIN.md §5, gkb-batch-upload.txt §4.1). Everything GKB-specific about the wire lives here:
 * the WSDL from the repository (never fetched from the network), HTTP Basic, the <userId> SOAP header,
 * a deadline on every call, fault classification and checking the answers at the edge. HTTPS with an
 * optional CA bundle and client certificate (`tls`, integrations/http-transport.ts); redirects are never
 * followed (a 3xx is a GkbPermanentError naming the status: following it would send the records elsewhere).
 *
 * Error model (what callers and Temporal retry policies rely on):
 *   GkbTransientError  ScbSystemFault, network errors, timeouts, HTTP 5xx/429: retry with backoff.
 *                      `outcomeUnknown` is true when an upload may have reached GKB (see below).
 *   GkbPermanentError  ScbBusinessFault, ScbValidationFault, rejected credentials, other 4xx, answers that
 *                      break the contract (GkbProtocolError): retrying the same call cannot help.
 *
 * Upload outcome unknown (the rule; also in integrations/gkb/README.md):
 *   uploadFile is not idempotent on GKB's side: every call creates a new package. When an upload times out
 *   or the connection breaks after the request was sent, K2 does not know whether GKB registered the package.
 *   1. Every batch file has a unique, deterministic, Latin-only name (derived from the batch id and part
 *      number), so the name identifies the file across attempts.
 *   2. Before uploading a file whose earlier attempt may have reached GKB (any retry, i.e. attempt > 1),
 *      the caller uses uploadFileOnce({ ..., searchFirst: true }): it lists every file the provider has
 *      (getImportInfo without packageId, all pages by `count`) and adopts an existing package whose
 *      batchPackage.packageName is that name instead of uploading again (a file's own fileName is the XML
 *      inside the package, never compared). uploadFileOnce also searches once right after an
 *      outcome-unknown failure.
 *   3. The document shows getImportInfo only with a packageId (its parameter table was lost), so listing
 *      without one may not exist on the real service. If GKB rejects the listing with a business or
 *      validation fault, findUploadedFile answers { status: 'unsupported' } and the file is uploaded again.
 *      That is the accepted residual risk: a duplicate package of the same records. It is harmless when
 *      the records use operation 2 ("update"), which GKB applies as create-or-update (§4: the contract is
 *      searched whatever the operation and created when missing); a duplicate "insert" (1) record may be
 *      rejected as an existing contract (the sandbox does), which the result reader must then recognise.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as soap from 'soap';
import { timedCall, type CallClassifier, type CallMetrics } from '../../observability/call-metrics';
import type { Logger } from '../../observability/logger';
import { createHttpsAgent, isRedirect, type TlsFiles } from '../http-transport';

/**
 * The WSDL sits beside this module in the source tree; tsc does not copy it to dist/, so compiled code
 * (dist/integrations/gkb) finds it in the source tree it was built from. Shared with the GKB sandbox.
 */
export const DEFAULT_WSDL_PATH =
  [path.join(__dirname, 'BatchProcessingService.wsdl'), path.resolve(__dirname, '..', '..', '..', 'integrations', 'gkb', 'BatchProcessingService.wsdl')].find(
    (p) => existsSync(p),
  ) ?? path.join(__dirname, 'BatchProcessingService.wsdl');

/** 1 credit contracts, 2 guarantees/sureties, 3 one-day (operative) upload of newly issued contracts. */
export type GkbFileType = 1 | 2 | 3;
/** 0 errors, 1 new, 2 updated, 3 merged, 4 all but errors. */
export type RecordGroupStatus = 0 | 1 | 2 | 3 | 4;
export type GkbLanguage = 'ru' | 'kk' | 'en';
export type BatchStatus = 'received' | 'prepared' | 'starting' | 'processing' | 'processed' | 'failed' | 'unknown';
export type GkbFaultKind = 'ScbSystemFault' | 'ScbBusinessFault' | 'ScbValidationFault';

export interface ConstraintViolation {
  propertyPath?: string;
  message?: string;
  invalidValue?: string;
}

export interface GkbClientOptions {
  /** Endpoint, e.g. config.gkb.url. */
  url: string;
  /** Defaults to the WSDL next to this file. */
  wsdlPath?: string;
  clientId: string;
  password: string;
  userId: string;
  /** Deadline of one SOAP call, from sending the request to the end of the answer. */
  timeoutMs: number;
  /** CA bundle and client certificate for HTTPS (config.gkb.tls); the system CAs when unset. */
  tls?: TlsFiles;
  logger?: Logger;
  /** Records each SOAP call's latency and outcome (observability/call-metrics.ts); none when unset. */
  metrics?: CallMetrics;
}

export interface BatchPackageInfo {
  packageId: string;
  packageName?: string;
  addTime?: string;
  creditor?: string;
  employee?: string;
}

export interface BatchFileInfo {
  fileId: string;
  /** The XML file inside the package (for a ZIP, its entry name): NOT the name K2 uploaded. */
  fileName: string;
  /** batchPackage.packageId: the package (one uploadFile call) this file belongs to. */
  packageId?: string;
  /** batchPackage.packageName: the fileName K2 gave uploadFile. Match K2's files by this. */
  packageName?: string;
  uploadedTime?: string;
  /** The text as GKB sent it, e.g. «Файл обработан.». */
  batchUploadStatus: string;
  /** classifyBatchStatus(batchUploadStatus). */
  status: BatchStatus;
  /** isFinalStatus(batchUploadStatus). */
  final: boolean;
  numberOfContracts: number;
  newContracts: number;
  updatedContracts: number;
  skippedContracts: number;
  mergedContracts: number;
  numberOfSubjects: number;
  newSubjects: number;
  updatedSubjects: number;
  mergedSubjects: number;
  numberOfErrors: number;
  batchPackage?: BatchPackageInfo;
}

/**
 * Paging (getImportInfo, getImportDetailInfo): ask again from `nextFirstResult` while `hasMore`. GKB may
 * return fewer than maxResults; `nextFirstResult` counts what it did return, so nothing is skipped.
 */
export interface Page {
  /** GKB's total for the query (all pages); when GKB leaves it out, the number known so far. */
  count: number;
  hasMore: boolean;
  nextFirstResult: number;
}

/** An answer without filesImportInfo (or with an empty list) means "nothing known yet": no files. */
export interface ImportInfo extends Page {
  files: BatchFileInfo[];
}

export interface BatchRecordInfo {
  recordId: string;
  contractCode?: string;
  contractId?: string;
  contractPhase?: number;
  subjectId?: string;
  subjectName?: string;
  iinBin?: string;
  /** e.g. «Создан новый контракт.», «Субъект обновлен.» (several texts joined by a space). */
  result?: string;
  /** Error text of a rejected record (several messages joined by a space). */
  message?: string;
  /** The recordGroupStatus this record was asked for with (0 errors, 1 new, 2 updated, 3 merged, 4 all but errors). */
  group: RecordGroupStatus;
  /** result is «Создан новый контракт.»: GKB created the contract (for an update: it did not know it). */
  newContract: boolean;
}

export interface ImportDetailInfo extends Page {
  records: BatchRecordInfo[];
}

export interface UploadFileInput {
  file: Buffer;
  fileName: string;
  fileType: GkbFileType;
}

export type FindUploadedFileResult =
  | { status: 'found'; batchPackageId: string; files: BatchFileInfo[]; otherPackageIds: string[] }
  | { status: 'not-found' }
  | { status: 'unsupported'; reason: string };

export interface GkbClient {
  uploadFile(input: UploadFileInput): Promise<{ batchPackageId: string }>;
  /** Without packageId: the provider's files, newest first (see findUploadedFile). */
  getImportInfo(input: { packageId?: string; firstResult?: number; maxResults?: number; language?: GkbLanguage }): Promise<ImportInfo>;
  getImportDetailInfo(input: {
    fileId: string;
    recordGroupStatus: RecordGroupStatus;
    firstResult?: number;
    maxResults?: number;
    language?: GkbLanguage;
  }): Promise<ImportDetailInfo>;
  /** Searches every file the provider has at GKB (all pages) for a package with this name (outcome-unknown rule). */
  findUploadedFile(fileName: string, options?: { pageSize?: number }): Promise<FindUploadedFileResult>;
  /** uploadFile applying the outcome-unknown rule; `adopted` is true when an existing package was reused. */
  uploadFileOnce(input: UploadFileInput & { searchFirst: boolean }): Promise<{ batchPackageId: string; adopted: boolean }>;
}

// ---------------------------------------------------------------------------------------------
// Errors

export class GkbTransientError extends Error {
  override readonly name = 'GkbTransientError';
  constructor(
    message: string,
    /** What went wrong: a GKB system fault, no answer in time, no connection, or an HTTP error status. */
    public readonly reason: 'ScbSystemFault' | 'timeout' | 'network' | 'http',
    /** True when the request may have reached GKB (only meaningful for uploadFile). */
    public readonly outcomeUnknown: boolean,
    public readonly code?: string,
    public readonly description?: string,
    public readonly httpStatus?: number,
  ) {
    super(message);
  }
}

export class GkbPermanentError extends Error {
  override readonly name: string = 'GkbPermanentError';
  constructor(
    message: string,
    /** The fault element, or 'Authentication' (HTTP 401/403), 'http' (other 4xx), 'Protocol' (bad answer). */
    public readonly faultKind: GkbFaultKind | 'Authentication' | 'http' | 'Protocol',
    public readonly code: string | undefined,
    public readonly description: string | undefined,
    public readonly constraintViolations: ConstraintViolation[] = [],
    public readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/** GKB's answer did not have what the WSDL promises; `field` names what was missing or malformed. */
export class GkbProtocolError extends GkbPermanentError {
  override readonly name = 'GkbProtocolError';
  constructor(
    public readonly operation: string,
    public readonly field: string,
    problem: string,
  ) {
    super(`GKB ${operation} answer: ${field} ${problem}`, 'Protocol', 'PROTOCOL', `${field} ${problem}`);
  }
}

export function isTransientGkbError(err: unknown): err is GkbTransientError {
  return err instanceof GkbTransientError;
}

/** The error class of a failed call in K2's metrics: the failure type activities/gkb.ts gives it (GkbTransientError, or the fault kind). */
export function gkbErrorClass(err: unknown): string {
  if (err instanceof GkbPermanentError) return err.faultKind;
  return 'GkbTransientError';
}
const GKB_CALL: CallClassifier<unknown> = { errorClass: gkbErrorClass };

// ---------------------------------------------------------------------------------------------
// Status texts

const STATUS_BY_TEXT: Record<string, BatchStatus> = {
  'файл получен': 'received',
  'файл подготовлен к обработке': 'prepared',
  'начинается обработка': 'starting',
  'файл находится в процессе обработки': 'processing',
  'файл обработан': 'processed',
  'ошибка обработки': 'failed',
};

/** GKB is not consistent about the final period («Файл обработан.» vs «Файл получен»), nor perhaps about spaces or case. */
function normaliseStatus(text: string): string {
  return text
    .trim()
    .replace(/[.\s]+$/u, '')
    .replace(/\s+/gu, ' ')
    .toLowerCase();
}

/** Texts are those of language "ru"; any other text is 'unknown' (not final): report it, keep polling. */
export function classifyBatchStatus(text: string | undefined | null): BatchStatus {
  if (typeof text !== 'string') return 'unknown';
  return STATUS_BY_TEXT[normaliseStatus(text)] ?? 'unknown';
}

export function isFinalStatus(text: string | undefined | null): boolean {
  const status = classifyBatchStatus(text);
  return status === 'processed' || status === 'failed';
}

/** «Создан новый контракт.» (document §4.1.3 example), compared like the status texts. */
export function isNewContractResult(text: string | undefined | null): boolean {
  return typeof text === 'string' && normaliseStatus(text) === 'создан новый контракт';
}

/** Where the next page starts and whether there is one: by GKB's count when it gives one, else by a full page. */
export function pageAfter(firstResult: number, maxResults: number, received: number, count: number | undefined): Page {
  const nextFirstResult = firstResult + received;
  const hasMore = received > 0 && (count === undefined ? received >= maxResults : nextFirstResult < count);
  return { count: count ?? nextFirstResult, hasMore, nextFirstResult };
}

/** GKB refuses Cyrillic file names; K2 also keeps them to what is safe in a path. */
export const GKB_FILE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// ---------------------------------------------------------------------------------------------
// Answer checking at the edge

type Obj = Record<string, unknown>;

function asArray<T>(value: T | T[] | undefined | null): T[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  constructor(
    private readonly operation: string,
    private readonly obj: Obj,
    private readonly at: string,
  ) {}
  private where(field: string) {
    return this.at ? `${this.at}.${field}` : field;
  }
  child(field: string): Reader {
    const v = this.obj[field];
    if (!isObj(v)) throw new GkbProtocolError(this.operation, this.where(field), 'is missing');
    return new Reader(this.operation, v, this.where(field));
  }
  optionalChild(field: string): Reader | undefined {
    const v = this.obj[field];
    return isObj(v) ? new Reader(this.operation, v, this.where(field)) : undefined;
  }
  list(field: string): Reader[] {
    return asArray(this.obj[field] as unknown).map((v, i) => {
      if (!isObj(v)) throw new GkbProtocolError(this.operation, `${this.where(field)}[${i}]`, 'is not an element');
      return new Reader(this.operation, v, `${this.where(field)}[${i}]`);
    });
  }
  /** An xs:long id, kept as a string of digits (no precision loss). */
  id(field: string): string {
    const v = this.optionalId(field);
    if (v === undefined) throw new GkbProtocolError(this.operation, this.where(field), 'is missing');
    return v;
  }
  optionalId(field: string): string | undefined {
    const v = this.obj[field];
    if (v === undefined || v === null || v === '') return undefined;
    const s = String(v).trim();
    if (!/^-?\d+$/.test(s)) throw new GkbProtocolError(this.operation, this.where(field), `is not an integer (${JSON.stringify(s).slice(0, 40)})`);
    return s;
  }
  text(field: string): string {
    const v = this.optionalText(field);
    if (v === undefined) throw new GkbProtocolError(this.operation, this.where(field), 'is missing');
    return v;
  }
  optionalText(field: string): string | undefined {
    const v = this.obj[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'object') throw new GkbProtocolError(this.operation, this.where(field), 'is not text');
    return String(v);
  }
  /** A text GKB may repeat (a record with several messages): the non-empty ones joined by a space. */
  joinedText(field: string): string | undefined {
    const parts = asArray(this.obj[field] as unknown).map((v, i) => {
      if (typeof v === 'object' && v !== null) throw new GkbProtocolError(this.operation, `${this.where(field)}[${i}]`, 'is not text');
      return String(v).trim();
    });
    const joined = parts.filter((t) => t !== '').join(' ');
    return joined === '' ? undefined : joined;
  }
  /** Counters: absent means 0 (GKB leaves them out for files not processed yet). */
  count(field: string): number {
    const v = this.optionalId(field);
    return v === undefined ? 0 : Number(v);
  }
}

function readBatchFile(r: Reader): BatchFileInfo {
  const batchUploadStatus = r.text('batchUploadStatus');
  const pkg = r.optionalChild('batchPackage');
  const packageId = pkg?.id('packageId');
  const packageName = pkg?.optionalText('packageName');
  return {
    fileId: r.id('fileId'),
    fileName: r.text('fileName'),
    ...(packageId !== undefined ? { packageId } : {}),
    ...(packageName !== undefined ? { packageName } : {}),
    uploadedTime: r.optionalText('uploadedTime'),
    batchUploadStatus,
    status: classifyBatchStatus(batchUploadStatus),
    final: isFinalStatus(batchUploadStatus),
    numberOfContracts: r.count('numberOfContracts'),
    newContracts: r.count('newContracts'),
    updatedContracts: r.count('updatedContracts'),
    skippedContracts: r.count('skippedContracts'),
    mergedContracts: r.count('mergedContracts'),
    numberOfSubjects: r.count('numberOfSubjects'),
    newSubjects: r.count('newSubjects'),
    updatedSubjects: r.count('updatedSubjects'),
    mergedSubjects: r.count('mergedSubjects'),
    numberOfErrors: r.count('numberOfErrors'),
    batchPackage: pkg && {
      packageId: packageId!,
      packageName,
      addTime: pkg.optionalText('addTime'),
      creditor: pkg.optionalText('creditor'),
      employee: pkg.optionalText('employee'),
    },
  };
}

function readBatchRecord(r: Reader, group: RecordGroupStatus): BatchRecordInfo {
  const phase = r.optionalId('contractPhase');
  const result = r.joinedText('result');
  return {
    recordId: r.id('recordId'),
    contractCode: r.optionalText('contractCode'),
    contractId: r.optionalId('contractId'),
    contractPhase: phase === undefined ? undefined : Number(phase),
    subjectId: r.optionalId('subjectId'),
    subjectName: r.optionalText('subjectName'),
    iinBin: r.optionalText('iinBin'),
    result,
    message: r.joinedText('message'),
    group,
    newContract: isNewContractResult(result),
  };
}

// ---------------------------------------------------------------------------------------------
// Error classification

interface SoapLikeError {
  message?: string;
  code?: string;
  name?: string;
  root?: { Envelope?: { Body?: { Fault?: unknown } } };
  response?: { status?: number };
}

const FAULT_KINDS: GkbFaultKind[] = ['ScbSystemFault', 'ScbBusinessFault', 'ScbValidationFault'];
/** Errors raised before anything was sent: the request cannot have reached GKB. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // K2 did not trust GKB's certificate: the handshake ended before any request byte went out.
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_PURPOSE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  // GKB refused K2's client certificate in the handshake (TLS 1.3 sends the alert after the client's first bytes, which GKB never reads).
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
]);

function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v) && '$value' in v) return String(v.$value);
  return typeof v === 'object' ? undefined : String(v);
}

/** Turns whatever node-soap/axios threw into a GkbTransientError or GkbPermanentError. */
export function classifyGkbError(operation: string, err: unknown, timedOut: boolean): Error {
  if (err instanceof GkbTransientError || err instanceof GkbPermanentError) return err;
  const e = (err ?? {}) as SoapLikeError;
  const status = e.response?.status;
  const fault = e.root?.Envelope?.Body?.Fault;

  if (timedOut || e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT' || e.code === 'ERR_CANCELED') {
    return new GkbTransientError(`GKB ${operation}: no answer within the deadline`, 'timeout', true, e.code);
  }

  // Never followed (see the header); the Location is not quoted.
  if (status !== undefined && isRedirect(status)) {
    return new GkbPermanentError(`GKB ${operation}: HTTP ${status} redirect, not followed (check GKB_URL)`, 'http', String(status), undefined, [], status);
  }

  if (isObj(fault)) {
    const faultstring = text(fault.faultstring) ?? '';
    const detail = isObj(fault.detail) ? fault.detail : {};
    const kind = FAULT_KINDS.find((k) => k in detail);
    const info = kind && isObj(detail[kind]) ? (detail[kind] as Obj) : {};
    const code = text(info.code);
    const description = text(info.description) ?? faultstring;
    // Rejected credentials first, whatever fault the ESB wraps them in: K2's configuration must be fixed.
    if (status === 401 || status === 403) {
      return new GkbPermanentError(
        `GKB ${operation}: credentials rejected (HTTP ${status}): ${description}`,
        'Authentication',
        code ?? String(status),
        description,
        [],
        status,
      );
    }
    if (kind) {
      const message = `GKB ${operation}: ${kind}${code ? ` ${code}` : ''}: ${description}`;
      if (kind === 'ScbSystemFault') return new GkbTransientError(message, 'ScbSystemFault', false, code, description, status);
      const violations = asArray(info.constraintViolations as Obj | Obj[] | undefined)
        .filter(isObj)
        .map((v) => ({
          propertyPath: text(v.propertyPath),
          message: text(v.message),
          invalidValue: text(v.invalidValue),
        }));
      return new GkbPermanentError(message, kind, code, description, violations, status);
    }
    // A SOAP fault without a GKB detail: judge by the fault code.
    const faultcode = text(fault.faultcode) ?? '';
    if (/client/i.test(faultcode)) return new GkbPermanentError(`GKB ${operation}: ${faultcode}: ${faultstring}`, 'http', faultcode, faultstring, [], status);
    return new GkbTransientError(`GKB ${operation}: ${faultcode}: ${faultstring}`, 'http', false, faultcode, faultstring, status);
  }

  if (status !== undefined) {
    if (status === 401 || status === 403) {
      return new GkbPermanentError(`GKB ${operation}: credentials rejected (HTTP ${status})`, 'Authentication', String(status), undefined, [], status);
    }
    // A 5xx means the server (or a proxy in front of it) had trouble; whether an upload got registered is unknown.
    if (status >= 500 || status === 429 || status === 408) {
      return new GkbTransientError(`GKB ${operation}: HTTP ${status}`, 'http', true, String(status), undefined, status);
    }
    if (status >= 400) return new GkbPermanentError(`GKB ${operation}: HTTP ${status}`, 'http', String(status), undefined, [], status);
    // 200 with a body that is not a SOAP answer.
    return new GkbProtocolError(operation, 'Envelope', `could not be read (${e.message ?? 'unknown problem'})`);
  }

  const code = e.code;
  return new GkbTransientError(`GKB ${operation}: network error ${code ?? ''} ${e.message ?? ''}`.trim(), 'network', !(code && NOT_SENT_CODES.has(code)), code);
}

// ---------------------------------------------------------------------------------------------
// The client

type SoapMethod = (args: unknown, options: Record<string, unknown>) => Promise<[unknown, ...unknown[]]>;

export function createGkbClient(options: GkbClientOptions): GkbClient {
  const wsdlPath = options.wsdlPath ?? DEFAULT_WSDL_PATH;
  const log = options.logger;
  // Passed to axios (through node-soap) on every call: TLS material, and a 3xx is an error, never followed.
  const transport = { httpsAgent: createHttpsAgent('GKB', options.tls), maxRedirects: 0, validateStatus: (status: number) => !isRedirect(status) };
  let soapClient: Promise<soap.Client> | undefined;

  // Created on first use and reused; a failed creation (bad WSDL path) is not cached.
  // The WSDL is a local file with inline types and no imports, so nothing is fetched from the network.
  const getSoapClient = (): Promise<soap.Client> => {
    if (!soapClient) {
      soapClient = soap
        .createClientAsync(
          wsdlPath,
          {
            // xs:long ids stay strings: they are identifiers, not numbers to compute with.
            customDeserializer: { long: (t: string) => t },
          },
          options.url,
        )
        .then((client) => {
          client.setSecurity(new soap.BasicAuthSecurity(options.clientId, options.password));
          // GKB expects <userId> without a namespace (document §4.1); a raw string keeps it that way.
          client.addSoapHeader(`<userId>${escapeXml(options.userId)}</userId>`);
          return client;
        })
        .catch((err: unknown) => {
          soapClient = undefined;
          throw new GkbPermanentError(`GKB client: cannot load WSDL ${wsdlPath}: ${(err as Error).message}`, 'Protocol', 'WSDL', (err as Error).message);
        });
    }
    return soapClient;
  };

  type Operation = 'uploadFile' | 'getImportInfo' | 'getImportDetailInfo';
  function call(operation: Operation, args: unknown): Promise<Obj> {
    return timedCall(options.metrics, 'gkb', operation, undefined, GKB_CALL, () => callOnce(operation, args));
  }

  /** One SOAP call with a hard deadline (axios' own timeout only watches socket inactivity). */
  async function callOnce(operation: Operation, args: unknown): Promise<Obj> {
    const client = await getSoapClient();
    const method = (client as unknown as Record<string, SoapMethod>)[`${operation}Async`];
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    const started = Date.now();
    try {
      const [result] = await method.call(client, args, { ...transport, timeout: options.timeoutMs, signal: controller.signal });
      log?.debug('gkb call', { operation, ms: Date.now() - started });
      // An empty wrapper (<getImportInfoResponse/>) carries nothing; the readers decide whether that is
      // "nothing known yet" (getImportInfo, getImportDetailInfo) or a broken answer (uploadFile).
      if (result === null || result === undefined || result === '') return {};
      if (!isObj(result)) throw new GkbProtocolError(operation, `${operation}Response`, 'is not an element');
      return result;
    } catch (err) {
      const classified = classifyGkbError(operation, err, timedOut);
      log?.warn('gkb call failed', {
        operation,
        ms: Date.now() - started,
        error: classified.name,
        transient: isTransientGkbError(classified),
        code: (classified as GkbPermanentError).code,
      });
      throw classified;
    } finally {
      clearTimeout(timer);
    }
  }

  const client: GkbClient = {
    async uploadFile({ file, fileName, fileType }) {
      if (!GKB_FILE_NAME_PATTERN.test(fileName)) {
        // Checked here too, because GKB would only say so after a 100 MB upload.
        throw new GkbPermanentError(
          `GKB uploadFile: file name ${JSON.stringify(fileName)} must be Latin letters, digits, . _ -`,
          'ScbValidationFault',
          'CLIENT_FILE_NAME',
          'file name not Latin-only',
          [{ propertyPath: 'fileName', message: 'Latin letters, digits, . _ - only', invalidValue: fileName }],
        );
      }
      if (![1, 2, 3].includes(fileType)) throw new RangeError(`GKB uploadFile: fileType must be 1, 2 or 3, got ${fileType}`);
      const answer = new Reader('uploadFile', await call('uploadFile', { file: file.toString('base64'), fileName, fileType }), '');
      const batchPackageId = answer.id('batchPackageId');
      log?.info('gkb file uploaded', { fileName, fileType, bytes: file.length, batchPackageId });
      return { batchPackageId };
    },

    async getImportInfo({ packageId, firstResult = 0, maxResults = 100, language = 'ru' }) {
      const params: Obj = { paginationSupportDto: { firstResult, maxResults } };
      if (packageId !== undefined) params.packageId = packageId;
      params.language = language;
      const answer = new Reader('getImportInfo', await call('getImportInfo', { params }), '');
      // No filesImportInfo: GKB has nothing to show yet (e.g. a package not registered so far), not a broken answer.
      const info = answer.optionalChild('filesImportInfo');
      const files = info ? info.list('batchFileDtoList').map(readBatchFile) : [];
      const count = info?.optionalId('count');
      return { files, ...pageAfter(firstResult, maxResults, files.length, count === undefined ? undefined : Number(count)) };
    },

    async getImportDetailInfo({ fileId, recordGroupStatus, firstResult = 0, maxResults = 100, language = 'ru' }) {
      const params = { paginationSupportDto: { firstResult, maxResults }, fileId, recordGroupStatus, language };
      const answer = new Reader('getImportDetailInfo', await call('getImportDetailInfo', { params }), '');
      // A file without records in that group may come back without recordsImportInfo at all.
      const info = answer.optionalChild('recordsImportInfo');
      const records = info ? info.list('batchRecordDtoList').map((r) => readBatchRecord(r, recordGroupStatus)) : [];
      const count = info?.optionalId('count');
      return { records, ...pageAfter(firstResult, maxResults, records.length, count === undefined ? undefined : Number(count)) };
    },

    async findUploadedFile(fileName, { pageSize = 100 } = {}) {
      const matches = new Map<string, BatchFileInfo[]>();
      const seen = new Set<string>();
      // Every page, however many files the provider has: a package uploaded long ago still counts.
      for (let firstResult = 0, more = true; more;) {
        let info: ImportInfo;
        try {
          info = await client.getImportInfo({ firstResult, maxResults: pageSize });
        } catch (err) {
          // The service wants a packageId: listing is not possible, the caller falls back to uploading.
          if (
            err instanceof GkbPermanentError &&
            (err.faultKind === 'ScbBusinessFault' || err.faultKind === 'ScbValidationFault' || err.faultKind === 'Protocol')
          ) {
            log?.warn('gkb file search unsupported', { fileName, code: err.code });
            return { status: 'unsupported', reason: err.message };
          }
          throw err;
        }
        // A service that ignores firstResult would send the same page forever: listing does not work then.
        if (info.hasMore && info.files.every((f) => seen.has(f.fileId))) {
          log?.warn('gkb file search unsupported', { fileName, code: 'PAGINATION_IGNORED' });
          return { status: 'unsupported', reason: `GKB getImportInfo ignores paginationSupportDto: the page from ${firstResult} repeats files already listed` };
        }
        for (const f of info.files) {
          seen.add(f.fileId);
          // The package name is what K2 uploaded; fileName is the XML inside the package.
          if (f.packageId !== undefined && f.packageName === fileName) matches.set(f.packageId, [...(matches.get(f.packageId) ?? []), f]);
        }
        more = info.hasMore;
        firstResult = info.nextFirstResult;
      }
      if (matches.size === 0) return { status: 'not-found' };
      // Should a duplicate exist after all, adopt the oldest package (lowest id) and name the others.
      const ids = [...matches.keys()].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
      return { status: 'found', batchPackageId: ids[0], files: matches.get(ids[0]) ?? [], otherPackageIds: ids.slice(1) };
    },

    async uploadFileOnce({ searchFirst, ...input }) {
      if (searchFirst) {
        const found = await client.findUploadedFile(input.fileName);
        if (found.status === 'found') {
          log?.info('gkb upload adopted existing package', {
            fileName: input.fileName,
            batchPackageId: found.batchPackageId,
            otherPackageIds: found.otherPackageIds,
          });
          return { batchPackageId: found.batchPackageId, adopted: true };
        }
      }
      try {
        return { ...(await client.uploadFile(input)), adopted: false };
      } catch (err) {
        if (!(err instanceof GkbTransientError && err.outcomeUnknown)) throw err;
        // The request may have been registered: look once now; if GKB does not show it (yet), the caller's
        // next attempt searches again before uploading.
        let found: FindUploadedFileResult;
        try {
          found = await client.findUploadedFile(input.fileName);
        } catch {
          throw err;
        }
        if (found.status === 'found') {
          log?.info('gkb upload outcome resolved: package exists', { fileName: input.fileName, batchPackageId: found.batchPackageId });
          return { batchPackageId: found.batchPackageId, adopted: true };
        }
        throw err;
      }
    },
  };
  return client;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

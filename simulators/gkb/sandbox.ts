/**
 * GKB sandbox: a stand-in for the bureau's BatchProcessingService, served by node-soap from the service's
 * WSDL (integrations/gkb/BatchProcessingService.wsdl, the public contract). Used by the demo, tests and benchmarks.
 *
 * It judges K2's files by its OWN reading of the GKB document (rules.ts), never by K2's XSD or mapping code,
 * so that a misreading shared by both cannot pass unseen. simulators/gkb/README.md lists every rule and its
 * section in the document, and what the sandbox does not check.
 *
 * What it imitates (gkb-batch-upload.txt §4, DOMAIN.md §5):
 * - the ESB checks: HTTP Basic clientId:password (wrong → HTTP 401 + fault), then the <userId> header must be
 *   the user working for that client (missing or other → ScbBusinessFault);
 * - uploadFile: an XML file or a ZIP holding XML files (each XML in the ZIP is one batch file of the package);
 *   Latin-only file name, file type 1|2|3, ≤ 100 MB, ≤ 10,000 records per package, the structure of the
 *   document's examples (stage 1, «Проверка корректности структуры»); a rejected upload registers nothing;
 * - asynchronous processing through the real status texts, computed from the time since upload on an
 *   injectable clock (so a test can make processing take days and move the clock instead of waiting);
 * - business rules per record when a file's processing ends (stage 2): a record that breaks one is not
 *   loaded and gets its error text (getImportDetailInfo group 0); a file whose records all break one, or that
 *   breaks a file rule (one contract twice), loads nothing and ends «Ошибка обработки.»;
 * - contract identity code + StartDate + provider: operation 1 on an existing contract is an error;
 *   operation 2 of an unknown one creates it, «Создан новый контракт.» (§4: GKB looks the contract up
 *   whatever the operation); a record equal to what the sandbox last loaded for that contract is skipped
 *   (counted in skippedContracts, in no result group);
 * - getImportInfo (with a packageId, or without one: the provider's files, newest first) and
 *   getImportDetailInfo with every recordGroupStatus, both paginated; times in +06:00 and the response
 *   header <userId>, <creditorId>, <timestamp> of the document's example answers.
 *
 * Fault injection ('gkb' entries of SIM_FAULTS, or POST/DELETE/GET /_sim/faults with a JSON object):
 *   systemFault       rate of ScbSystemFault on any call
 *   uploadTimeout     rate of uploads that are accepted but answered timing.lateAnswerMs later (outcome unknown)
 *   slowFactor        multiplies the processing schedule of files uploaded from now on (default 1)
 *   processingError   rate of files that end «Ошибка обработки.» (no record is loaded)
 *   recordRejectRate  rate of records rejected with a business error (the file itself still ends «Файл обработан.»)
 *   recordRejectNextFiles  the next N files uploaded each get per-record errors (every other record, the first included)
 *   latencyMs         delay before every SOAP answer
 *   http5xx           rate of HTTP 503 answers from "the proxy" (no SOAP body)
 *
 * Its own record of what it received (GET /_sim/journal, no personal data): every upload and its outcome,
 * every SOAP call counted by operation and outcome, each package's records (contract identity, operation,
 * a hash of the record, and how it ended), and every upload that held a contract another unfinished
 * package already held ("a contract in two packages in flight at once").
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import * as soap from 'soap';
import yauzl from 'yauzl';
import { faultControl, Faults } from '../faults';
import type { Logger } from '../../observability/logger';
import { elements, parseXml } from './dom';
import { responseHeaderXml, toDocumentShape } from './envelope';
import { DOCUMENT_DICTIONARIES, readContract, structureProblems, type ContractReading, type FileType, type GkbDictionaries } from './rules';

export { MANDATORY_BLOCK_TEXTS } from './rules';

export const GKB_SOAP_PATH = '/BatchProcessingService';
const GKB_TIME_OFFSET = '+06:00'; // as the document's example answers write GKB's times (uploadedTime, addTime)

export const STATUS_TEXTS = {
  received: 'Файл получен',
  prepared: 'Файл подготовлен к обработке',
  starting: 'Начинается обработка',
  processing: 'Файл находится в процессе обработки',
  processed: 'Файл обработан.',
  failed: 'Ошибка обработки.',
} as const;

export const RESULT_TEXTS = {
  contractCreated: 'Создан новый контракт.',
  contractUpdated: 'Контракт обновлен.',
  subjectCreated: 'Создан новый субъект.',
  subjectUpdated: 'Субъект обновлен.',
  rejected: 'Запись не загружена.',
} as const;

/** The message of every record of a file that the processingError fault fails. */
export const FILE_FAILED_TEXT = 'Ошибка обработки файла.';
/** The file rule «one contract once per file»: GKB could not tell in which order to apply them. */
export const DUPLICATE_CONTRACT_TEXT = 'Контракт (код + дата начала действия договора) передан в файле более одного раза; файл не обработан.';

/** The WSDL beside K2's client in the source tree (tsc does not copy it to dist/). */
const WSDL_PATH =
  [
    path.resolve(__dirname, '..', '..', 'integrations', 'gkb', 'BatchProcessingService.wsdl'),
    path.resolve(__dirname, '..', '..', '..', 'integrations', 'gkb', 'BatchProcessingService.wsdl'),
  ].find((p) => fs.existsSync(p)) ?? path.resolve(__dirname, '..', '..', 'integrations', 'gkb', 'BatchProcessingService.wsdl');

/** An extra check of each XML file at upload (e.g. K2's XSD, to compare two readings); fileType 2 is checked as 1. */
export type XmlValidator = (xml: string | Buffer, fileType: 1 | 3) => Promise<{ valid: boolean; errors: string[] }>;

export interface GkbSandboxTiming {
  /** How long each of «Файл получен», «Файл подготовлен к обработке», «Начинается обработка» lasts. Default 1000 ms. */
  stepMs?: number;
  /** How long «Файл находится в процессе обработки» lasts. Default: stepMs. Tests use days here. */
  processingMs?: number;
  /** Extra processing time per record (benchmarks). Default 0. */
  perRecordMs?: number;
  /** How late the answer of an upload comes under the uploadTimeout fault. Default 120 s (beyond GKB_TIMEOUT_MS). */
  lateAnswerMs?: number;
  /** The sandbox's clock in ms since the epoch. Default Date.now; tests pass one they can move. */
  now?: () => number;
}

export interface GkbSandboxOptions {
  faults?: Faults;
  /** The one client (organisation) and user the sandbox knows. */
  credentials: { clientId: string; password: string; userId: string };
  timing?: GkbSandboxTiming;
  /** Persist the state to this JSON file (loaded at start, written after every change). In memory when absent. */
  db?: { file: string };
  limits?: { maxRecordsPerPackage?: number; maxPackageBytes?: number };
  /**
   * Whether getImportInfo lists the provider's files when no packageId is given (default true). The document
   * only shows calls with a packageId; false imitates a service that requires it (ScbValidationFault), so
   * the client's fallback can be exercised.
   */
  listWithoutPackageId?: boolean;
  /** Names GKB shows in batchPackage; creditorId is the <creditorId> of the response header. */
  identity?: { creditor?: string; employee?: string; creditorId?: string };
  /**
   * An extra check of each XML file after the sandbox's own structure check (default: none). The sandbox never
   * uses K2's XSD by itself: its reading must stay independent of K2's.
   */
  validateXml?: XmlValidator;
  /** Dictionary values the sandbox knows, replacing the document's (rules.ts DOCUMENT_DICTIONARIES) key by key. */
  dictionaries?: Partial<GkbDictionaries>;
  logger?: Logger;
}

/** What became of one uploadFile call. */
export type GkbUploadOutcome = 'accepted' | 'accepted-answer-late' | 'system-fault' | 'refused' | 'unauthenticated' | 'error';

export interface GkbUploadEntry {
  at: string;
  /** The name the client gave the package (K2's unique file name). */
  fileName: string;
  outcome: GkbUploadOutcome;
  packageId?: string;
  records?: number;
  /** The fault's kind and code when the upload was refused. */
  fault?: string;
}

/** How one record of a package ended: loaded (created, updated), skipped as already known, rejected, or not loaded because its file failed. */
export type GkbRecordOutcome = 'created' | 'updated' | 'skipped' | 'rejected' | 'not-loaded';

export interface GkbJournalRecord {
  /** The contract's identity at GKB: ContractCode|StartDate (one provider). */
  contract: string;
  operation: string;
  /** First 16 hex digits of the record's content hash: the same report has the same hash. */
  recordHash: string;
  /** Absent while the file is processed. */
  outcome?: GkbRecordOutcome;
  message?: string;
}

export interface GkbJournalPackage {
  packageId: string;
  packageName: string;
  uploadedAt: string;
  /** Every file of the package has finished processing. */
  final: boolean;
  files: Array<{ fileId: string; fileName: string; status: string; records: GkbJournalRecord[] }>;
}

/** An upload holding a contract that another package, not finished yet, already held. */
export interface GkbInFlightConflict {
  at: string;
  contract: string;
  packageId: string;
  packageName: string;
  otherPackageId: string;
  otherPackageName: string;
}

export interface GkbJournal {
  uploads: GkbUploadEntry[];
  /** SOAP calls by operation and outcome ('ok' or the fault's kind); '(proxy)' counts the http5xx fault's bare 503s. */
  calls: Record<string, Record<string, number>>;
  packages: GkbJournalPackage[];
  inFlightConflicts: GkbInFlightConflict[];
}

export interface GkbSandbox {
  readonly faults: Faults;
  /** The record served at GET /_sim/journal. */
  journal(): GkbJournal;
  /** SOAP at /BatchProcessingService, fault control at /_sim/faults. */
  readonly app: express.Express;
  /** Starts an HTTP server (port 0 = ephemeral). */
  listen(port: number, host?: string): Promise<{ url: string; port: number; server: http.Server }>;
  /** Stops the server, drops open connections and pending late answers. */
  close(): Promise<void>;
  /** Counts for tests and demos. */
  stats(): { packages: number; files: number; contracts: number; subjects: number };
}

// ---------------------------------------------------------------------------------------------
// State

interface ParsedContract extends Partial<Pick<ContractReading, 'complete' | 'fingerprint'>>, Omit<ContractReading, 'complete' | 'fingerprint'> {
  /** recordRejectRate fault, rolled at upload so the outcome does not depend on when it is looked at. */
  injectedReject: boolean;
}

type RecordGroup = 'error' | 'new' | 'updated';

interface RecordDto {
  recordId: string;
  subjectId?: string;
  subjectName?: string;
  iinBin?: string;
  contractId?: string;
  contractPhase?: number;
  contractCode?: string;
  creditDiscriminator?: number;
  result: string;
  message?: string;
}

interface Counts {
  numberOfContracts: number;
  numberOfSubjects: number;
  updatedContracts: number;
  updatedSubjects: number;
  newContracts: number;
  newSubjects: number;
  mergedContracts: number;
  skippedContracts: number;
  mergedSubjects: number;
  numberOfErrors: number;
}

interface StoredFile {
  fileId: string;
  fileNumber: number;
  packageId: string;
  clientId: string;
  fileName: string;
  fileType: number;
  uploadedAt: number;
  preparedAt: number;
  startingAt: number;
  processingAt: number;
  finalAt: number;
  /** processingError fault, rolled at upload. */
  willFail: boolean;
  /** Set when processing ends: the file ended «Ошибка обработки.» (absent in state saved by older sandboxes: willFail). */
  failed?: boolean;
  contracts: ParsedContract[];
  settled: boolean;
  results: { group: RecordGroup; dto: RecordDto }[];
  counts?: Counts;
  /** How each of `contracts` ended, in the same order (set when processing ends; absent in state saved by older sandboxes). */
  outcomes?: Array<{ outcome: GkbRecordOutcome; message?: string }>;
}

interface StoredPackage {
  packageId: string;
  packageName: string;
  clientId: string;
  addTime: number;
  fileIds: string[];
}

interface StoredContract {
  contractId: string;
  contractPhase?: number;
  /** The last record loaded for it (rules.ts fingerprint): the same record again is skipped. */
  fingerprint?: string;
  /** Created by an update (operation 2) without the blocks an insert needs: «Предварительный» at GKB. */
  incomplete?: boolean;
}

interface State {
  seq: { id: number; record: number; contract: number; subject: number };
  packages: Record<string, StoredPackage>;
  files: Record<string, StoredFile>;
  /** Key: provider | ContractCode | StartDate. */
  contracts: Record<string, StoredContract>;
  /** Key: IIN/BIN. */
  subjects: Record<string, { subjectId: string }>;
  /** The journal's uploads and in-flight conflicts (absent in state saved by older sandboxes). */
  journal?: { uploads: GkbUploadEntry[]; conflicts: GkbInFlightConflict[] };
}

function emptyState(): State {
  // Start near the document's example numbers so that ids look like GKB's.
  return {
    seq: { id: 241000, record: 209060000, contract: 17775000, subject: 859000 },
    packages: {},
    files: {},
    contracts: {},
    subjects: {},
    journal: { uploads: [], conflicts: [] },
  };
}

// ---------------------------------------------------------------------------------------------
// Faults as node-soap wants them: thrown { Fault } objects; the detail is raw XML so that the fault element
// is qualified (ns2:ScbValidationFault) and its children are not, like the bureau's answers.

interface Violation {
  propertyPath: string;
  message: string;
  invalidValue?: string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function scbFault(
  kind: 'ScbSystemFault' | 'ScbBusinessFault' | 'ScbValidationFault',
  code: string,
  description: string,
  violations: Violation[] = [],
  statusCode = 500,
) {
  const vs = violations
    .map(
      (v) =>
        `<constraintViolations><propertyPath>${esc(v.propertyPath)}</propertyPath><message>${esc(v.message)}</message>` +
        (v.invalidValue !== undefined ? `<invalidValue>${esc(v.invalidValue)}</invalidValue>` : '') +
        `</constraintViolations>`,
    )
    .join('');
  return {
    Fault: {
      faultcode: kind === 'ScbSystemFault' ? 'soap:Server' : 'soap:Client',
      faultstring: description,
      detail: {
        $xml: `<ns2:${kind} xmlns:ns2="http://data.chdb.scb.kz"><code>${esc(code)}</code><description>${esc(description)}</description>${vs}</ns2:${kind}>`,
      },
      statusCode,
    },
  };
}

/** The kind and code of a thrown scbFault (for the journal); anything else is an 'error'. */
function faultOf(err: unknown): { kind: string; code: string } {
  const xml = (err as { Fault?: { detail?: { $xml?: unknown } } } | undefined)?.Fault?.detail?.$xml;
  if (typeof xml !== 'string') return { kind: 'error', code: '' };
  return { kind: /<ns2:(\w+)/.exec(xml)?.[1] ?? 'error', code: /<code>([^<]*)<\/code>/.exec(xml)?.[1] ?? '' };
}

// ---------------------------------------------------------------------------------------------
// Reading the batch files

function unzip(buffer: Buffer): Promise<{ name: string; data: Buffer }[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buffer, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('cannot open ZIP'));
      const out: { name: string; data: Buffer }[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/') || !/\.xml$/i.test(entry.fileName)) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('cannot read ZIP entry'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            out.push({ name: path.posix.basename(entry.fileName), data: Buffer.concat(chunks) });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** Reads the records of one XML file: its structure first (stage 1), then each record's rules (stage 2). */
function parseContracts(xml: string, fileType: FileType, dict: GkbDictionaries): { structure: string[]; contracts: ParsedContract[] } {
  const root = parseXml(xml);
  const structure = structureProblems(root);
  if (structure.length > 0) return { structure, contracts: [] };
  const contracts = elements(root).map((c) => ({ ...readContract(c, fileType, dict), injectedReject: false }));
  return { structure, contracts };
}

function gkbTime(ms: number): string {
  // GKB writes local time with an offset: 2020-02-13T09:35:59.234+06:00.
  const offsetMin = (GKB_TIME_OFFSET.startsWith('-') ? -1 : 1) * (Number(GKB_TIME_OFFSET.slice(1, 3)) * 60 + Number(GKB_TIME_OFFSET.slice(4, 6)));
  return new Date(ms + offsetMin * 60_000).toISOString().replace('Z', GKB_TIME_OFFSET);
}

// ---------------------------------------------------------------------------------------------

/** The sandbox's fault knobs ('gkb.*' in SIM_FAULTS, or /_sim/faults). */
export const GKB_FAULT_KEYS = {
  systemFault: 'rate: ScbSystemFault on any call',
  uploadTimeout: 'rate: accept an upload but answer it too late (outcome unknown)',
  slowFactor: 'multiplies the processing time of files uploaded from now on (default 1)',
  processingError: 'rate: a file ends «Ошибка обработки.» and loads no record',
  recordRejectRate: 'rate: a record is rejected with a business error',
  recordRejectNextFiles:
    'count: the next N files uploaded each get per-record errors (every other record, the first included; the file ends «Файл обработан.»)',
  latencyMs: 'milliseconds: wait this long before every SOAP answer',
  http5xx: 'rate: a bare HTTP 503 from "the proxy" (no SOAP body)',
} as const;

export function createGkbSandbox(options: GkbSandboxOptions): GkbSandbox {
  const faults = options.faults ?? new Faults('gkb');
  const creds = options.credentials;
  const now = options.timing?.now ?? Date.now;
  const stepMs = options.timing?.stepMs ?? 1000;
  const processingMs = options.timing?.processingMs ?? stepMs;
  const perRecordMs = options.timing?.perRecordMs ?? 0;
  const lateAnswerMs = options.timing?.lateAnswerMs ?? 120_000;
  const maxRecords = options.limits?.maxRecordsPerPackage ?? 10_000;
  const maxBytes = options.limits?.maxPackageBytes ?? 100 * 1024 * 1024;
  const creditor = options.identity?.creditor ?? 'АО "K2 Демо Банк"';
  const employee = options.identity?.employee ?? 'Оператор K2';
  const creditorId = options.identity?.creditorId ?? '77';
  const validateXml = options.validateXml;
  const dictionaries: GkbDictionaries = { ...DOCUMENT_DICTIONARIES, ...options.dictionaries };
  const log = options.logger;
  const dbFile = options.db?.file;

  let state: State = emptyState();
  if (dbFile && fs.existsSync(dbFile)) state = JSON.parse(fs.readFileSync(dbFile, 'utf8')) as State;
  const journal = (state.journal ??= { uploads: [], conflicts: [] });
  /** SOAP calls by operation and outcome, since the sandbox started (counts only: kept in memory). */
  const calls: Record<string, Record<string, number>> = {};
  const countCall = (op: string, outcome: string) => {
    const byOutcome = (calls[op] ??= {});
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
  };
  const save = () => {
    if (!dbFile) return;
    fs.mkdirSync(path.dirname(dbFile), { recursive: true });
    fs.writeFileSync(`${dbFile}.tmp`, JSON.stringify(state));
    fs.renameSync(`${dbFile}.tmp`, dbFile);
  };
  const nextId = (k: keyof State['seq']) => String(++state.seq[k]);

  // Late answers (uploadTimeout) wait on these timers; close() drops them.
  const pendingTimers = new Set<NodeJS.Timeout>();
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        pendingTimers.delete(t);
        resolve();
      }, ms);
      pendingTimers.add(t);
    });

  /** Applies, in the order they finish, every file whose processing has ended by now(). */
  function settle(): void {
    const t = now();
    const due = Object.values(state.files)
      .filter((f) => !f.settled && f.finalAt <= t)
      .sort((a, b) => a.finalAt - b.finalAt || Number(a.fileId) - Number(b.fileId));
    for (const f of due) processFile(f);
    if (due.length > 0) save();
  }

  const emptyCounts = (): Counts => ({
    numberOfContracts: 0,
    numberOfSubjects: 0,
    updatedContracts: 0,
    updatedSubjects: 0,
    newContracts: 0,
    newSubjects: 0,
    mergedContracts: 0,
    skippedContracts: 0,
    mergedSubjects: 0,
    numberOfErrors: 0,
  });
  const contractKey = (f: StoredFile, c: ParsedContract) => `${f.clientId}|${c.contractCode}|${c.startDate}`;

  /** The rules a record breaks, its own and those that depend on what the sandbox holds (not yet changed by this file). */
  function recordProblems(f: StoredFile, c: ParsedContract, timesInFile: number): string[] {
    const problems = [...c.problems];
    if (problems.length > 0) return problems;
    if (timesInFile > 1) return [DUPLICATE_CONTRACT_TEXT];
    const existing = state.contracts[contractKey(f, c)];
    if (existing && existing.fingerprint !== undefined && existing.fingerprint === c.fingerprint) return []; // skipped, not an error
    if (existing && c.operation === '1') return ['Контракт с таким кодом и датой начала действия уже существует у данного поставщика информации.'];
    if (existing && f.fileType === 3)
      return ['Контракт уже загружен; файл типа 3 («Оперативная загрузка») передает только вновь выданные контракты, обновления — файлом типа 1.'];
    return [];
  }

  function processFile(f: StoredFile): void {
    const counts = emptyCounts();
    const results: StoredFile['results'] = [];
    const outcomes = new Map<ParsedContract, { outcome: GkbRecordOutcome; message?: string }>();
    const reject = (c: ParsedContract, message: string) => {
      const first = c.subjects[0];
      outcomes.set(c, { outcome: 'rejected', message });
      counts.numberOfErrors++;
      results.push({
        group: 'error',
        dto: {
          recordId: nextId('record'),
          subjectName: first?.name || undefined,
          iinBin: first?.iinBin,
          contractCode: c.contractCode,
          result: RESULT_TEXTS.rejected,
          message,
        },
      });
    };
    const finish = (failed: boolean) => {
      f.results = results;
      f.counts = counts;
      f.failed = failed;
      f.outcomes = f.contracts.map((c) => outcomes.get(c) ?? { outcome: 'not-loaded', message: STATUS_TEXTS.failed });
      f.settled = true;
      log?.info('gkb sandbox file processed', { fileId: f.fileId, packageId: f.packageId, failed, ...counts });
    };

    if (f.willFail) {
      for (const c of f.contracts) reject(c, FILE_FAILED_TEXT);
      return finish(true);
    }
    const timesInFile = new Map<string, number>();
    for (const c of f.contracts) timesInFile.set(contractKey(f, c), (timesInFile.get(contractKey(f, c)) ?? 0) + 1);
    const problems = f.contracts.map((c) => recordProblems(f, c, timesInFile.get(contractKey(f, c)) ?? 0));
    const duplicates = problems.some((p) => p.includes(DUPLICATE_CONTRACT_TEXT));
    // A file rule broken, or no record that could be loaded: the file fails and loads nothing. Only the
    // records that break a rule are listed; the others have no detail (their answer is the file's status).
    if (duplicates || problems.every((p) => p.length > 0)) {
      f.contracts.forEach((c, i) => problems[i].length > 0 && reject(c, problems[i].join(' ')));
      return finish(true);
    }
    f.contracts.forEach((c, i) => {
      if (problems[i].length > 0) return reject(c, problems[i].join(' '));
      if (c.injectedReject) return reject(c, 'Запись отклонена при проверке бизнес-правил (сбой, внесенный в песочницу).');
      outcomes.set(c, { outcome: loadContract(f, c, counts, results) });
    });
    finish(false);
  }

  /** Loads one record that passed the rules: skipped when GKB already holds it, else created or updated. */
  function loadContract(f: StoredFile, c: ParsedContract, counts: Counts, results: StoredFile['results']): 'created' | 'updated' | 'skipped' {
    const key = contractKey(f, c);
    const existing = state.contracts[key];
    counts.numberOfContracts++;
    if (existing && existing.fingerprint !== undefined && existing.fingerprint === c.fingerprint) {
      counts.skippedContracts++;
      return 'skipped';
    }
    // Operation 2 on a missing contract creates it: GKB searches for the contract whatever the operation (§4).
    const contract: StoredContract = existing ?? { contractId: nextId('contract'), incomplete: c.complete === false };
    contract.contractPhase = c.contractPhase ?? contract.contractPhase;
    contract.fingerprint = c.fingerprint;
    if (c.complete) contract.incomplete = false;
    state.contracts[key] = contract;
    if (existing) counts.updatedContracts++;
    else counts.newContracts++;
    const base = { contractId: contract.contractId, contractPhase: contract.contractPhase, contractCode: c.contractCode, creditDiscriminator: 1 };
    results.push({
      group: existing ? 'updated' : 'new',
      dto: { recordId: nextId('record'), ...base, result: existing ? RESULT_TEXTS.contractUpdated : RESULT_TEXTS.contractCreated },
    });
    for (const s of c.subjects) {
      const iin = s.iinBin as string;
      const known = state.subjects[iin];
      const subject = known ?? { subjectId: nextId('subject') };
      state.subjects[iin] = subject;
      counts.numberOfSubjects++;
      if (known) counts.updatedSubjects++;
      else counts.newSubjects++;
      results.push({
        group: known ? 'updated' : 'new',
        dto: {
          recordId: nextId('record'),
          subjectId: subject.subjectId,
          subjectName: s.name,
          iinBin: iin,
          ...base,
          result: known ? RESULT_TEXTS.subjectUpdated : RESULT_TEXTS.subjectCreated,
        },
      });
    }
    return existing ? 'updated' : 'created';
  }

  /** The contract's identity at GKB within the one provider, as the journal names it. */
  const journalContract = (c: ParsedContract) => `${c.contractCode ?? ''}|${c.startDate ?? ''}`;

  /** Every contract held by a package that has a file not finished yet, with that package. */
  function contractsInFlight(): Map<string, StoredPackage> {
    const held = new Map<string, StoredPackage>();
    for (const f of Object.values(state.files)) {
      if (f.settled) continue;
      const pkg = state.packages[f.packageId];
      for (const c of f.contracts) held.set(journalContract(c), pkg);
    }
    return held;
  }

  function journalOf(): GkbJournal {
    settle();
    const t = now();
    const packages = Object.values(state.packages)
      .sort((a, b) => Number(a.packageId) - Number(b.packageId))
      .map((pkg): GkbJournalPackage => {
        const files = pkg.fileIds.map((id) => state.files[id]);
        return {
          packageId: pkg.packageId,
          packageName: pkg.packageName,
          uploadedAt: new Date(pkg.addTime).toISOString(),
          final: files.every((f) => f.settled),
          files: files.map((f) => ({
            fileId: f.fileId,
            fileName: f.fileName,
            status: statusText(f, t),
            records: f.contracts.map((c, i) => ({
              contract: journalContract(c),
              operation: c.operation,
              recordHash: (c.fingerprint ?? '').slice(0, 16),
              ...(f.outcomes?.[i] ?? {}),
            })),
          })),
        };
      });
    return { uploads: [...journal.uploads], calls: structuredClone(calls), packages, inFlightConflicts: [...journal.conflicts] };
  }

  function statusText(f: StoredFile, t: number): string {
    if (f.settled) return (f.failed ?? f.willFail) ? STATUS_TEXTS.failed : STATUS_TEXTS.processed;
    if (t < f.preparedAt) return STATUS_TEXTS.received;
    if (t < f.startingAt) return STATUS_TEXTS.prepared;
    if (t < f.processingAt) return STATUS_TEXTS.starting;
    return STATUS_TEXTS.processing;
  }

  function fileDto(f: StoredFile, t: number) {
    const pkg = state.packages[f.packageId];
    const c = f.counts;
    // Element order follows the WSDL sequence (node-soap writes keys in object order).
    return {
      fileId: f.fileId,
      fileNumber: f.fileNumber,
      fileScheme: f.fileType,
      fileName: f.fileName,
      // The document's example shows GKB's own path of the stored file here.
      batchFile: `/batch/${f.packageId}/${f.fileName}`,
      uploadedTime: gkbTime(f.uploadedAt),
      batchUploadStatus: statusText(f, t),
      numberOfContracts: c?.numberOfContracts ?? 0,
      numberOfSubjects: c?.numberOfSubjects ?? 0,
      updatedContracts: c?.updatedContracts ?? 0,
      updatedSubjects: c?.updatedSubjects ?? 0,
      newContracts: c?.newContracts ?? 0,
      newSubjects: c?.newSubjects ?? 0,
      mergedContracts: c?.mergedContracts ?? 0,
      skippedContracts: c?.skippedContracts ?? 0,
      mergedSubjects: c?.mergedSubjects ?? 0,
      numberOfErrors: c?.numberOfErrors ?? 0,
      batchPackage: { packageId: pkg.packageId, packageName: pkg.packageName, addTime: gkbTime(pkg.addTime), creditor, employee },
    };
  }

  function page(p: unknown): { first: number; max: number } {
    const dto = (p ?? {}) as { firstResult?: unknown; maxResults?: unknown };
    const first = dto.firstResult === undefined ? 0 : Number(dto.firstResult);
    const max = dto.maxResults === undefined ? 10 : Number(dto.maxResults);
    const violations: Violation[] = [];
    if (!Number.isInteger(first) || first < 0)
      violations.push({
        propertyPath: 'paginationSupportDto.firstResult',
        message: 'Должно быть целым числом не меньше 0.',
        invalidValue: String(dto.firstResult),
      });
    if (!Number.isInteger(max) || max < 1 || max > 1000)
      violations.push({
        propertyPath: 'paginationSupportDto.maxResults',
        message: 'Должно быть целым числом от 1 до 1000.',
        invalidValue: String(dto.maxResults),
      });
    if (violations.length > 0) throw scbFault('ScbValidationFault', 'PAGINATION', 'Неверные параметры постраничной выборки.', violations);
    return { first, max };
  }

  function checkLanguage(language: unknown): void {
    if (language !== undefined && !['ru', 'kk', 'en'].includes(String(language))) {
      throw scbFault('ScbValidationFault', 'LANGUAGE', 'Неподдерживаемый язык.', [
        { propertyPath: 'language', message: 'Допустимые значения: ru, kk, en.', invalidValue: String(language) },
      ]);
    }
  }

  /** The ESB checks (§4.1): client credentials, then the user, then a possible injected system fault. */
  function gate(headers: unknown, req: http.IncomingMessage, res: http.ServerResponse): void {
    const auth = req.headers.authorization ?? '';
    const m = /^Basic\s+(.+)$/i.exec(auth);
    const [clientId, ...rest] = m ? Buffer.from(m[1], 'base64').toString('utf8').split(':') : [];
    if (clientId !== creds.clientId || rest.join(':') !== creds.password) {
      res.setHeader('WWW-Authenticate', 'Basic realm="GKB"');
      throw scbFault(
        'ScbBusinessFault',
        'AUTHENTICATION_FAILED',
        'Клиент не аутентифицирован: неверный идентификатор клиента или пароль (HTTP Basic).',
        [],
        401,
      );
    }
    const userId = (headers as { userId?: unknown } | undefined)?.userId;
    if (userId === undefined || userId === '') {
      throw scbFault('ScbBusinessFault', 'USER_ID_MISSING', 'В SOAP Header не указан идентификатор пользователя (userId).');
    }
    if (String(userId) !== creds.userId) {
      throw scbFault('ScbBusinessFault', 'USER_NOT_AUTHORIZED', 'Пользователь не найден, не активен или не работает на данного клиента.');
    }
    if (faults.roll('systemFault')) throw scbFault('ScbSystemFault', 'SYSTEM_ERROR', 'Внутренняя ошибка системы. Повторите запрос позже.');
  }

  async function uploadFile(args: { file?: string; fileName?: string; fileType?: unknown }): Promise<{ batchPackageId: string }> {
    const fileName = args.fileName ?? '';
    const violations: Violation[] = [];
    if (!/^[A-Za-z0-9._-]+$/.test(fileName)) {
      violations.push({
        propertyPath: 'fileName',
        message: 'Наименование файла должно содержать только латинские буквы, цифры и символы . _ -',
        invalidValue: fileName,
      });
    } else if (!/\.(xml|zip)$/i.test(fileName)) {
      violations.push({ propertyPath: 'fileName', message: 'Поддерживаются только файлы *.xml и *.zip.', invalidValue: fileName });
    }
    const fileType = Number(args.fileType);
    if (![1, 2, 3].includes(fileType))
      violations.push({ propertyPath: 'fileType', message: 'Допустимые типы файла: 1, 2, 3.', invalidValue: String(args.fileType) });
    const content = Buffer.from(args.file ?? '', 'base64');
    if (content.length === 0) violations.push({ propertyPath: 'file', message: 'Файл не передан или пуст.' });
    if (violations.length > 0) throw scbFault('ScbValidationFault', 'INVALID_PARAMETERS', 'Неверные параметры загрузки пакета.', violations);
    if (content.length > maxBytes) throw scbFault('ScbBusinessFault', 'PACKAGE_TOO_LARGE', `Размер пакета превышает ${Math.round(maxBytes / 1024 / 1024)} Мб.`);

    // A ZIP starts with "PK\3\4"; anything else must be the XML itself.
    let xmlFiles: { name: string; data: Buffer }[];
    if (content.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) {
      try {
        xmlFiles = await unzip(content);
      } catch (e) {
        throw scbFault('ScbValidationFault', 'INVALID_ZIP', 'Не удалось прочитать ZIP-архив.', [{ propertyPath: 'file', message: (e as Error).message }]);
      }
      if (xmlFiles.length === 0)
        throw scbFault('ScbValidationFault', 'NO_XML_IN_ZIP', 'ZIP-архив не содержит XML-файла.', [{ propertyPath: 'file', message: 'Нет файлов *.xml.' }]);
    } else {
      xmlFiles = [{ name: fileName, data: content }];
    }

    // The record limit first: counting is cheap, and the XSD would otherwise report it as a schema error.
    const texts = xmlFiles.map((x) => ({ name: x.name, xml: x.data.toString('utf8').replace(/^\uFEFF/, '') }));
    const recordCount = texts.reduce((n, x) => n + (x.xml.match(/<Contract[\s>]/g)?.length ?? 0), 0);
    if (recordCount > maxRecords) {
      throw scbFault('ScbBusinessFault', 'RECORDS_LIMIT_EXCEEDED', `В одном пакете можно передавать до ${maxRecords} записей; передано ${recordCount}.`);
    }

    const parsed: { name: string; contracts: ParsedContract[] }[] = [];
    const readingType: FileType = fileType === 3 ? 3 : fileType === 2 ? 2 : 1;
    for (const x of texts) {
      let reading: ReturnType<typeof parseContracts>;
      try {
        reading = parseContracts(x.xml, readingType, dictionaries);
      } catch (e) {
        throw scbFault('ScbValidationFault', 'XML_MALFORMED', `Файл ${x.name} не является корректным XML.`, [
          { propertyPath: x.name, message: (e as Error).message },
        ]);
      }
      const extra = validateXml ? await validateXml(x.xml, fileType === 3 ? 3 : 1) : { valid: true, errors: [] };
      const errors = [...reading.structure, ...(extra.valid ? [] : extra.errors)];
      if (errors.length > 0) {
        throw scbFault(
          'ScbValidationFault',
          'XSD_VALIDATION_FAILED',
          `Файл ${x.name} не прошел проверку на соответствие XSD-схеме.`,
          errors.slice(0, 100).map((message) => ({ propertyPath: x.name, message })),
        );
      }
      parsed.push({ name: x.name, contracts: reading.contracts });
    }

    // Accepted: register the package and its files; processing runs on the clock from here.
    settle();
    const t = now();
    const slow = faults.get('slowFactor', 1) > 0 ? faults.get('slowFactor', 1) : 1;
    const packageId = nextId('id');
    const pkg: StoredPackage = { packageId, packageName: fileName, clientId: creds.clientId, addTime: t, fileIds: [] };
    const inFlight = contractsInFlight();
    for (const c of parsed.flatMap((p) => p.contracts)) {
      const other = inFlight.get(journalContract(c));
      if (other) {
        journal.conflicts.push({
          at: new Date(t).toISOString(),
          contract: journalContract(c),
          packageId,
          packageName: fileName,
          otherPackageId: other.packageId,
          otherPackageName: other.packageName,
        });
        log?.warn('gkb sandbox: a contract in two packages in flight at once', { contract: c.contractCode, packageId, otherPackageId: other.packageId });
      }
    }
    parsed.forEach((p, i) => {
      // recordRejectNextFiles: this file gets per-record errors (every other record), and the count goes down by one.
      const rejectSome = faults.get('recordRejectNextFiles') >= 1;
      if (rejectSome) faults.set({ recordRejectNextFiles: faults.get('recordRejectNextFiles') - 1 });
      p.contracts.forEach((c, index) => {
        c.injectedReject = (rejectSome && index % 2 === 0) || faults.roll('recordRejectRate');
      });
      const step = stepMs * slow;
      const fileId = nextId('id');
      state.files[fileId] = {
        fileId,
        fileNumber: i + 1,
        packageId,
        clientId: creds.clientId,
        fileName: p.name,
        fileType,
        uploadedAt: t,
        preparedAt: t + step,
        startingAt: t + 2 * step,
        processingAt: t + 3 * step,
        finalAt: t + 3 * step + (processingMs + perRecordMs * p.contracts.length) * slow,
        willFail: faults.roll('processingError'),
        contracts: p.contracts,
        settled: false,
        results: [],
      };
      pkg.fileIds.push(fileId);
    });
    state.packages[packageId] = pkg;
    const answerLate = faults.roll('uploadTimeout');
    journal.uploads.push({
      at: new Date(t).toISOString(),
      fileName,
      outcome: answerLate ? 'accepted-answer-late' : 'accepted',
      packageId,
      records: recordCount,
    });
    save();
    log?.info('gkb sandbox package accepted', { packageId, files: pkg.fileIds.length, records: recordCount, fileType });

    if (answerLate) {
      // Registered, but the answer comes after the client has given up: the "outcome unknown" case.
      log?.info('gkb sandbox answering late (uploadTimeout fault)', { packageId, lateAnswerMs });
      await wait(lateAnswerMs);
    }
    return { batchPackageId: packageId };
  }

  function getImportInfo(args: { params?: { paginationSupportDto?: unknown; packageId?: unknown; language?: unknown } }) {
    const params = args.params ?? {};
    const { first, max } = page(params.paginationSupportDto);
    checkLanguage(params.language);
    settle();
    const t = now();
    let files: StoredFile[];
    if (params.packageId !== undefined && params.packageId !== '') {
      const pkg = state.packages[String(params.packageId)];
      if (!pkg || pkg.clientId !== creds.clientId) throw scbFault('ScbBusinessFault', 'PACKAGE_NOT_FOUND', `Пакет ${String(params.packageId)} не найден.`);
      files = pkg.fileIds.map((id) => state.files[id]);
    } else {
      if (options.listWithoutPackageId === false) {
        throw scbFault('ScbValidationFault', 'PACKAGE_ID_REQUIRED', 'Не указан идентификатор пакета.', [
          { propertyPath: 'packageId', message: 'Обязательный параметр.' },
        ]);
      }
      // Without a packageId: the provider's files, newest first (see the client's outcome-unknown rule).
      files = Object.values(state.files)
        .filter((f) => f.clientId === creds.clientId)
        .sort((a, b) => Number(b.fileId) - Number(a.fileId));
    }
    return { filesImportInfo: { batchFileDtoList: files.slice(first, first + max).map((f) => fileDto(f, t)), count: files.length } };
  }

  function getImportDetailInfo(args: { params?: { paginationSupportDto?: unknown; fileId?: unknown; recordGroupStatus?: unknown; language?: unknown } }) {
    const params = args.params ?? {};
    const { first, max } = page(params.paginationSupportDto);
    checkLanguage(params.language);
    const group = Number(params.recordGroupStatus);
    if (![0, 1, 2, 3, 4].includes(group)) {
      throw scbFault('ScbValidationFault', 'RECORD_GROUP_STATUS', 'Неверный тип записей.', [
        { propertyPath: 'recordGroupStatus', message: 'Допустимые значения: 0, 1, 2, 3, 4.', invalidValue: String(params.recordGroupStatus) },
      ]);
    }
    settle();
    const f = state.files[String(params.fileId)];
    if (!f || f.clientId !== creds.clientId) throw scbFault('ScbBusinessFault', 'FILE_NOT_FOUND', `Файл ${String(params.fileId)} не найден.`);
    // Before processing ends there are no record results yet: an empty list, not a fault.
    const matching = f.results.filter(
      (r) =>
        group === 0
          ? r.group === 'error'
          : group === 1
            ? r.group === 'new'
            : group === 2
              ? r.group === 'updated'
              : group === 4
                ? r.group !== 'error'
                : false /* 3: nothing is merged */,
    );
    return { recordsImportInfo: { batchRecordDtoList: matching.slice(first, first + max).map((r) => r.dto), count: matching.length } };
  }

  type Op = (args: never) => unknown;
  /** Every call is counted; a refused upload is journaled here (an accepted one where its package is registered). */
  const guarded = (name: string, op: Op) => async (args: unknown, _cb: unknown, headers: unknown, req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      gate(headers, req, res);
      const result = await op(args as never);
      countCall(name, 'ok');
      return result;
    } catch (err) {
      const fault = faultOf(err);
      countCall(name, fault.kind);
      if (name === 'uploadFile') {
        const outcome: GkbUploadOutcome =
          fault.kind === 'ScbSystemFault'
            ? 'system-fault'
            : fault.code === 'AUTHENTICATION_FAILED'
              ? 'unauthenticated'
              : fault.kind === 'error'
                ? 'error'
                : 'refused';
        const fileName = String((args as { fileName?: unknown } | undefined)?.fileName ?? '').slice(0, 200);
        journal.uploads.push({ at: new Date(now()).toISOString(), fileName, outcome, fault: `${fault.kind} ${fault.code}`.trim() });
        save();
      }
      throw err;
    }
  };

  const services = {
    BatchProcessingService: {
      BatchProcessingPort: {
        uploadFile: guarded('uploadFile', uploadFile as Op),
        getImportInfo: guarded('getImportInfo', getImportInfo as Op),
        getImportDetailInfo: guarded('getImportDetailInfo', getImportDetailInfo as Op),
      },
    },
  };

  const app = express();
  // Fault control on the same server, like the other simulators.
  app.use(faultControl(faults, GKB_FAULT_KEYS));
  app.get('/_sim/journal', (_req, res) => {
    res.json(journalOf());
  });
  // In front of the SOAP service, like a proxy: added latency and bare 503s.
  app.use(GKB_SOAP_PATH, async (_req, res, next) => {
    const latency = faults.get('latencyMs');
    if (latency > 0) await wait(latency);
    if (faults.roll('http5xx')) {
      countCall('(proxy)', 'http5xx');
      res.status(503).type('text/html').send('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      return;
    }
    next();
  });
  const soapServer = soap.listen(app, { path: GKB_SOAP_PATH, services, xml: fs.readFileSync(WSDL_PATH, 'utf8') });
  // The header and shape of the document's example answers (envelope.ts).
  soapServer.addSoapHeader((_method: string, _args: unknown, headers: unknown) =>
    responseHeaderXml(String((headers as { userId?: unknown } | undefined)?.userId ?? ''), creditorId, now()),
  );
  soapServer.on('response', (response: { result: unknown }) => {
    if (typeof response.result === 'string') response.result = toDocumentShape(response.result);
  });

  let server: http.Server | undefined;
  const sockets = new Set<Socket>();

  return {
    faults,
    app,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const s = http.createServer(app);
        s.on('connection', (socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
        });
        s.once('error', reject);
        s.listen(port, host, () => {
          server = s;
          const addr = s.address() as AddressInfo;
          resolve({ url: `http://${host}:${addr.port}${GKB_SOAP_PATH}`, port: addr.port, server: s });
        });
      });
    },
    async close() {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
    journal: journalOf,
    stats() {
      settle();
      return {
        packages: Object.keys(state.packages).length,
        files: Object.keys(state.files).length,
        contracts: Object.keys(state.contracts).length,
        subjects: Object.keys(state.subjects).length,
      };
    },
  };
}

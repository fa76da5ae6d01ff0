/**
 * GKB sandbox: a stand-in for the bureau's BatchProcessingService, served by node-soap from the SAME WSDL
 * the K2 client uses (integrations/gkb/BatchProcessingService.wsdl). Used by the demo, tests and benchmarks.
 *
 * What it imitates (gkb-batch-upload.txt §4, DOMAIN.md §5):
 * - the ESB checks: HTTP Basic clientId:password (wrong → HTTP 401 + fault), then the <userId> header must be
 *   the user working for that client (missing or other → ScbBusinessFault);
 * - uploadFile: an XML file or a ZIP holding XML files (each XML in the ZIP is one batch file of the package);
 *   Latin-only file name, file type 1|2|3, ≤ 100 MB, ≤ 10,000 records per package, XSD validation of each XML;
 *   a rejected upload registers nothing;
 * - asynchronous processing through the real status texts, computed from the time since upload on an
 *   injectable clock (so a test can make processing take days and move the clock instead of waiting);
 * - per-record business rules when a file's processing ends: required fields, IIN/BIN check digit,
 *   StartDate ≤ accounting date, contract identity code + StartDate + provider (operation 1 on an existing
 *   contract is an error; operation 2 creates or updates, as the document's §4 says: GKB looks the contract
 *   up whatever the operation and creates it when missing, «Создан новый контракт.»), subjects by IIN;
 * - the §3.1 note «Все вышеуказанные блоки обязательны для заполнения» for operation 1 (insert) in files
 *   checked with the type-1 schema (file types 1 and 2). K2's type-1 XSD makes Collaterals, subject Addresses
 *   and subject Communications optional, because an operation-2 update may leave them out and GKB keeps the
 *   previous values (see integrations/gkb/schema/gkb-records.xsd). XSD 1.0 cannot tie them to the operation,
 *   so this business rule rejects an operation-1 record that lacks one: «Не заполнен обязательный блок: Collaterals …»;
 * - getImportInfo (with a packageId, or without one: the provider's files, newest first) and
 *   getImportDetailInfo with every recordGroupStatus, both paginated.
 *
 * Fault injection ('gkb' entries of SIM_FAULTS, or POST/DELETE/GET /_sim/faults with a JSON object):
 *   systemFault       rate of ScbSystemFault on any call
 *   uploadTimeout     rate of uploads that are accepted but answered timing.lateAnswerMs later (outcome unknown)
 *   slowFactor        multiplies the processing schedule of files uploaded from now on (default 1)
 *   processingError   rate of files that end «Ошибка обработки.» (no record is loaded)
 *   recordRejectRate  rate of records rejected with a business error
 *   latencyMs         delay before every SOAP answer
 *   http5xx           rate of HTTP 503 answers from "the proxy" (no SOAP body)
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import * as soap from 'soap';
import yauzl from 'yauzl';
import { create } from 'xmlbuilder2';
import { faultControl, Faults } from '../faults';
import { iinBinProblem } from '../../domain/iin';
import { DEFAULT_WSDL_PATH } from '../../integrations/gkb/soap-client';
import { validateGkbXml } from '../../integrations/gkb/xsd';
import type { Logger } from '../../observability/logger';

export const GKB_SOAP_PATH = '/BatchProcessingService';
const GKB_TIME_OFFSET = '+05:00'; // Kazakhstan time, as GKB writes its timestamps

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

/** fileType selects the schema (1 or 3; guarantees, type 2, have no schema of their own in K2 and use type 1's). */
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
  /** Names GKB shows in batchPackage. */
  identity?: { creditor?: string; employee?: string };
  /** XSD check of each XML file; default: validateGkbXml from integrations/gkb/xsd (K2's own XSD, DOMAIN §8 G4). */
  validateXml?: XmlValidator;
  logger?: Logger;
}

export interface GkbSandbox {
  readonly faults: Faults;
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

interface ParsedSubject {
  iinBin?: string;
  name: string;
}

interface ParsedContract {
  operation: string;
  contractCode?: string;
  startDate?: string;
  contractPhase?: number;
  subjects: ParsedSubject[];
  /** Problems found by reading the record alone (required fields, IIN, dates). */
  problems: string[];
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
  willFail: boolean;
  contracts: ParsedContract[];
  settled: boolean;
  results: { group: RecordGroup; dto: RecordDto }[];
  counts?: Counts;
}

interface StoredPackage {
  packageId: string;
  packageName: string;
  clientId: string;
  addTime: number;
  fileIds: string[];
}

interface State {
  seq: { id: number; record: number; contract: number; subject: number };
  packages: Record<string, StoredPackage>;
  files: Record<string, StoredFile>;
  /** Key: provider | ContractCode | StartDate. */
  contracts: Record<string, { contractId: string; contractPhase?: number }>;
  /** Key: IIN/BIN. */
  subjects: Record<string, { subjectId: string }>;
}

function emptyState(): State {
  // Start near the document's example numbers so that ids look like GKB's.
  return { seq: { id: 241000, record: 209060000, contract: 17775000, subject: 859000 }, packages: {}, files: {}, contracts: {}, subjects: {} };
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

function scbFault(kind: 'ScbSystemFault' | 'ScbBusinessFault' | 'ScbValidationFault', code: string, description: string, violations: Violation[] = [], statusCode = 500) {
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
      detail: { $xml: `<ns2:${kind} xmlns:ns2="http://data.chdb.scb.kz"><code>${esc(code)}</code><description>${esc(description)}</description>${vs}</ns2:${kind}>` },
      statusCode,
    },
  };
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

// Minimal DOM typing: xmlbuilder2's DOM nodes.
interface El {
  nodeType: number;
  nodeName: string;
  childNodes: ArrayLike<El>;
  textContent: string | null;
  getAttribute(name: string): string | null;
}

function kids(el: El | undefined, name: string): El[] {
  if (!el) return [];
  return Array.from(el.childNodes).filter((n) => n.nodeType === 1 && n.nodeName === name);
}
function kid(el: El | undefined, ...names: string[]): El | undefined {
  let cur = el;
  for (const n of names) cur = kids(cur, n)[0];
  return cur;
}
function textOf(el: El | undefined): string | undefined {
  const t = el?.textContent?.trim();
  return t ? t : undefined;
}
/** The ru-RU text of a multi-language name, else the first one. */
function nameText(el: El | undefined): string | undefined {
  const texts = kids(el, 'Text');
  return textOf(texts.find((t) => t.getAttribute('language') === 'ru-RU') ?? texts[0]);
}
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
function isDate(s: string | undefined): s is string {
  return !!s && ISO_DATE.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));
}

/**
 * The blocks the §3.1 note makes mandatory that K2's type-1 XSD leaves optional (for operation 2). An
 * operation-1 record of a type-1 (or type-2) file must carry them. Messages name the element and the
 * document's name of the block.
 */
export const MANDATORY_BLOCK_TEXTS = {
  Collaterals: 'Не заполнен обязательный блок: Collaterals (информация по обеспечениям).',
  Addresses: 'Не заполнен обязательный блок: Addresses (информация по адресам субъекта).',
  Communications: 'Не заполнен обязательный блок: Communications (информация по контактным данным субъекта).',
} as const;

/** fileType: the upload's file type; the operation-1 block rule applies to files checked with the type-1 schema. */
function parseContracts(xml: string, fileType: number): ParsedContract[] {
  const root = create(xml).root().node as unknown as El;
  if (root.nodeName !== 'Records') throw new Error(`root element is <${root.nodeName}>, expected <Records>`);
  return kids(root, 'Contract').map((c) => {
    const problems: string[] = [];
    const general = kid(c, 'General');
    const operation = c.getAttribute('operation') ?? '';
    if (operation !== '1' && operation !== '2') problems.push('Неверный вид операции (operation): допустимы 1 «Вставить» и 2 «Обновить».');
    const contractCode = textOf(kid(general, 'ContractCode'));
    if (!contractCode) problems.push('Не заполнено обязательное поле «Код контракта» (ContractCode).');
    const startDate = textOf(kid(general, 'StartDate'));
    if (!isDate(startDate)) problems.push('Не заполнено или неверно обязательное поле «Дата начала действия договора» (StartDate).');
    const phase = kid(general, 'ContractPhase')?.getAttribute('id');
    if (!phase) problems.push('Не заполнено обязательное поле «Фаза контракта» (ContractPhase).');
    // §3.1 note, for an insert: every block. Operation 2 may omit them (previous values are kept, §4).
    const insertNeedsAllBlocks = operation === '1' && fileType !== 3;
    const missingBlocks = new Set<keyof typeof MANDATORY_BLOCK_TEXTS>();
    if (insertNeedsAllBlocks && kids(kid(general, 'Collaterals'), 'Collateral').length === 0) missingBlocks.add('Collaterals');

    const subjects: ParsedSubject[] = [];
    const subjectEls = kids(kid(general, 'Subjects'), 'Subject');
    if (subjectEls.length === 0) problems.push('Не указан ни один субъект договора (Subjects).');
    for (const s of subjectEls) {
      const person = kid(s, 'Entity', 'Individual');
      const surname = nameText(kid(person, 'Surname'));
      const firstName = nameText(kid(person, 'FirstName'));
      const fathersName = nameText(kid(person, 'FathersName'));
      if (!surname) problems.push('Не заполнено обязательное поле «Фамилия» субъекта (Surname).');
      if (!firstName) problems.push('Не заполнено обязательное поле «Имя» субъекта (FirstName).');
      const iinEl = kids(kid(person, 'Identifications'), 'Identification').find((i) => i.getAttribute('typeId') === '14');
      const iinBin = textOf(kid(iinEl, 'Number'));
      if (!iinBin) problems.push('Не указан ИИН субъекта (Identification typeId="14").');
      else if (iinBinProblem(iinBin) !== undefined) problems.push('ИИН/БИН субъекта не прошел проверку (контрольный разряд или структура номера).');
      if (insertNeedsAllBlocks && kids(kid(person, 'Addresses'), 'Address').length === 0) missingBlocks.add('Addresses');
      if (insertNeedsAllBlocks && kids(kid(person, 'Communications'), 'Communication').length === 0) missingBlocks.add('Communications');
      subjects.push({ iinBin, name: [surname, firstName, fathersName].filter(Boolean).join(' ') });
    }
    for (const block of missingBlocks) problems.push(MANDATORY_BLOCK_TEXTS[block]);

    const credit = kid(c, 'Type', 'Credit');
    if (!kid(credit, 'CreditLimit')) problems.push('Не заполнено обязательное поле «Лимит кредита» (CreditLimit).');
    const records = kids(kid(credit, 'RecordsList'), 'Record');
    if (records.length === 0) problems.push('Не передана ни одна учетная дата (RecordsList/Record).');
    for (const r of records) {
      const accountingDate = r.getAttribute('accountingDate') ?? undefined;
      if (!isDate(accountingDate)) problems.push('Не заполнено или неверно обязательное поле «Учетная дата» (accountingDate).');
      else if (isDate(startDate) && accountingDate < startDate) {
        problems.push(`Учетная дата (accountingDate) ${accountingDate} раньше даты начала действия договора (StartDate) ${startDate}.`);
      }
    }
    return { operation, contractCode, startDate, contractPhase: phase ? Number(phase) : undefined, subjects, problems, injectedReject: false };
  });
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
  const validateXml: XmlValidator = options.validateXml ?? ((xml, fileType) => validateGkbXml(xml, { fileType }));
  const log = options.logger;
  const dbFile = options.db?.file;

  let state: State = emptyState();
  if (dbFile && fs.existsSync(dbFile)) state = JSON.parse(fs.readFileSync(dbFile, 'utf8')) as State;
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

  function processFile(f: StoredFile): void {
    const counts: Counts = {
      numberOfContracts: 0, numberOfSubjects: 0, updatedContracts: 0, updatedSubjects: 0, newContracts: 0,
      newSubjects: 0, mergedContracts: 0, skippedContracts: 0, mergedSubjects: 0, numberOfErrors: 0,
    };
    const results: StoredFile['results'] = [];
    for (const c of f.contracts) {
      const first = c.subjects[0];
      const reject = (message: string) => {
        counts.numberOfErrors++;
        results.push({
          group: 'error',
          dto: { recordId: nextId('record'), subjectName: first?.name || undefined, iinBin: first?.iinBin, contractCode: c.contractCode, result: RESULT_TEXTS.rejected, message },
        });
      };
      if (f.willFail) {
        reject('Ошибка обработки файла.');
        continue;
      }
      const problems = [...c.problems];
      if (c.injectedReject) problems.push('Запись отклонена при проверке бизнес-правил (сбой, внесенный в песочницу).');
      const key = `${f.clientId}|${c.contractCode}|${c.startDate}`;
      const existing = state.contracts[key];
      if (problems.length === 0 && c.operation === '1' && existing) {
        problems.push('Контракт с таким кодом и датой начала действия уже существует у данного поставщика информации.');
      }
      if (problems.length > 0) {
        reject(problems.join(' '));
        continue;
      }
      // Operation 2 on a missing contract creates it: GKB searches for the contract whatever the operation (§4).
      const contract = existing ?? { contractId: nextId('contract') };
      contract.contractPhase = c.contractPhase;
      state.contracts[key] = contract;
      counts.numberOfContracts++;
      if (existing) counts.updatedContracts++;
      else counts.newContracts++;
      const base = { contractId: contract.contractId, contractPhase: c.contractPhase, contractCode: c.contractCode, creditDiscriminator: 1 };
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
    }
    f.results = results;
    f.counts = counts;
    f.settled = true;
    log?.info('gkb sandbox file processed', { fileId: f.fileId, packageId: f.packageId, failed: f.willFail, ...counts });
  }

  function statusText(f: StoredFile, t: number): string {
    if (f.settled) return f.willFail ? STATUS_TEXTS.failed : STATUS_TEXTS.processed;
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
    if (!Number.isInteger(first) || first < 0) violations.push({ propertyPath: 'paginationSupportDto.firstResult', message: 'Должно быть целым числом не меньше 0.', invalidValue: String(dto.firstResult) });
    if (!Number.isInteger(max) || max < 1 || max > 1000) violations.push({ propertyPath: 'paginationSupportDto.maxResults', message: 'Должно быть целым числом от 1 до 1000.', invalidValue: String(dto.maxResults) });
    if (violations.length > 0) throw scbFault('ScbValidationFault', 'PAGINATION', 'Неверные параметры постраничной выборки.', violations);
    return { first, max };
  }

  function checkLanguage(language: unknown): void {
    if (language !== undefined && !['ru', 'kk', 'en'].includes(String(language))) {
      throw scbFault('ScbValidationFault', 'LANGUAGE', 'Неподдерживаемый язык.', [{ propertyPath: 'language', message: 'Допустимые значения: ru, kk, en.', invalidValue: String(language) }]);
    }
  }

  /** The ESB checks (§4.1): client credentials, then the user, then a possible injected system fault. */
  function gate(headers: unknown, req: http.IncomingMessage, res: http.ServerResponse): void {
    const auth = req.headers.authorization ?? '';
    const m = /^Basic\s+(.+)$/i.exec(auth);
    const [clientId, ...rest] = m ? Buffer.from(m[1], 'base64').toString('utf8').split(':') : [];
    if (clientId !== creds.clientId || rest.join(':') !== creds.password) {
      res.setHeader('WWW-Authenticate', 'Basic realm="GKB"');
      throw scbFault('ScbBusinessFault', 'AUTHENTICATION_FAILED', 'Клиент не аутентифицирован: неверный идентификатор клиента или пароль (HTTP Basic).', [], 401);
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
      violations.push({ propertyPath: 'fileName', message: 'Наименование файла должно содержать только латинские буквы, цифры и символы . _ -', invalidValue: fileName });
    } else if (!/\.(xml|zip)$/i.test(fileName)) {
      violations.push({ propertyPath: 'fileName', message: 'Поддерживаются только файлы *.xml и *.zip.', invalidValue: fileName });
    }
    const fileType = Number(args.fileType);
    if (![1, 2, 3].includes(fileType)) violations.push({ propertyPath: 'fileType', message: 'Допустимые типы файла: 1, 2, 3.', invalidValue: String(args.fileType) });
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
      if (xmlFiles.length === 0) throw scbFault('ScbValidationFault', 'NO_XML_IN_ZIP', 'ZIP-архив не содержит XML-файла.', [{ propertyPath: 'file', message: 'Нет файлов *.xml.' }]);
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
    for (const x of texts) {
      const check = await validateXml(x.xml, fileType === 3 ? 3 : 1);
      if (!check.valid) {
        throw scbFault(
          'ScbValidationFault',
          'XSD_VALIDATION_FAILED',
          `Файл ${x.name} не прошел проверку на соответствие XSD-схеме.`,
          check.errors.slice(0, 100).map((message) => ({ propertyPath: x.name, message })),
        );
      }
      try {
        parsed.push({ name: x.name, contracts: parseContracts(x.xml, fileType) });
      } catch (e) {
        throw scbFault('ScbValidationFault', 'XML_MALFORMED', `Файл ${x.name} не является корректным XML.`, [{ propertyPath: x.name, message: (e as Error).message }]);
      }
    }

    // Accepted: register the package and its files; processing runs on the clock from here.
    settle();
    const t = now();
    const slow = faults.get('slowFactor', 1) > 0 ? faults.get('slowFactor', 1) : 1;
    const packageId = nextId('id');
    const pkg: StoredPackage = { packageId, packageName: fileName, clientId: creds.clientId, addTime: t, fileIds: [] };
    parsed.forEach((p, i) => {
      for (const c of p.contracts) c.injectedReject = faults.roll('recordRejectRate');
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
    save();
    log?.info('gkb sandbox package accepted', { packageId, files: pkg.fileIds.length, records: recordCount, fileType });

    if (faults.roll('uploadTimeout')) {
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
        throw scbFault('ScbValidationFault', 'PACKAGE_ID_REQUIRED', 'Не указан идентификатор пакета.', [{ propertyPath: 'packageId', message: 'Обязательный параметр.' }]);
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
    const matching = f.results.filter((r) =>
      group === 0 ? r.group === 'error' : group === 1 ? r.group === 'new' : group === 2 ? r.group === 'updated' : group === 4 ? r.group !== 'error' : false /* 3: nothing is merged */,
    );
    return { recordsImportInfo: { batchRecordDtoList: matching.slice(first, first + max).map((r) => r.dto), count: matching.length } };
  }

  type Op = (args: never) => unknown;
  const guarded =
    (op: Op) =>
    async (args: unknown, _cb: unknown, headers: unknown, req: http.IncomingMessage, res: http.ServerResponse) => {
      gate(headers, req, res);
      return await op(args as never);
    };

  const services = {
    BatchProcessingService: {
      BatchProcessingPort: {
        uploadFile: guarded(uploadFile as Op),
        getImportInfo: guarded(getImportInfo as Op),
        getImportDetailInfo: guarded(getImportDetailInfo as Op),
      },
    },
  };

  const app = express();
  // Fault control on the same server, like the other simulators.
  app.use(faultControl(faults, GKB_FAULT_KEYS));
  // In front of the SOAP service, like a proxy: added latency and bare 503s.
  app.use(GKB_SOAP_PATH, async (_req, res, next) => {
    const latency = faults.get('latencyMs');
    if (latency > 0) await wait(latency);
    if (faults.roll('http5xx')) {
      res.status(503).type('text/html').send('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      return;
    }
    next();
  });
  soap.listen(app, { path: GKB_SOAP_PATH, services, xml: fs.readFileSync(DEFAULT_WSDL_PATH, 'utf8') });

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

/**
 * ABS simulator: the four GET services of the core banking system (k2-integration.rst, DOMAIN.md §4),
 * answering with the wire types of integrations/abs.ts.
 *
 * Deterministic: every valid IIN/BIN is a client; its name, sector, resident flag, accounts,
 * statement and scan all derive from a PRNG seeded by (seed, IIN), so the same IIN always gets the
 * same answers. Derived account IBANs embed the IIN (bank code SIM_BANK_CODE + IIN + account index),
 * which lets a statement request (IBAN only) find its client without any state.
 *
 * The loan book (`POST /_sim/loans`, EKO loan items) tells the simulator which IBAN, currency and
 * agreement belong to an IIN, so the loans EKO sends are found; registered data wins over derived.
 * Named scenario IINs (README.md, ABS_SCENARIO_IINS) give the unhappy paths; 'abs.*' faults
 * (SIM_FAULTS, /_sim/faults) give the transient and malformed ones.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { faultControl, sleep, type Faults } from '../faults';
import { closeServer, listenOn, portOf } from '../http';
import type { AbsAccountWire, AbsAccountsWire, AbsAnswerWire, AbsClientWire, AbsStatementLineWire, AbsStatementWire } from '../../integrations/abs';
import { classifyIinBin, isValidIinBin } from '../../domain/iin';
import { isValidKzIban, kzIbanCheckDigits } from '../../domain/iban';
import { parseWireDate } from '../../domain/dates';
import { moneyProblem, parseMoney } from '../../domain/money';
import { isIso4217 } from '../../domain/currency';
import { generateFullname, mulberry32, pick, randomInt, type Rand } from '../../domain/generate';

/** The simulator's paths (the defaults of ABS_GET_*_URL in config). */
export const ABS_SIM_PATHS = {
  client: '/abs/client',
  accounts: '/abs/accounts',
  statement: '/abs/statement',
  scan: '/abs/dbz-scan',
} as const;

/** Bank code of derived accounts: KZcc + 996 + IIN (12) + account index (1) = 20 characters. */
export const SIM_BANK_CODE = '996';

/** Named scenario IINs: all valid, born 1990-01-01; digit 11 numbers the scenario. */
export const ABS_SCENARIO_IINS = {
  /** Everything found; the scan is a PDF with a filename*= (RFC 5987) Cyrillic name. */
  ordinary: '900101300007',
  /** Client and accounts answer error_code 1 «Клиент не найден»; no scan. */
  clientUnknown: '900101300017',
  /** Accounts never include the loan's IBAN (neither registered nor the derived loan account). */
  ibanNotAmongAccounts: '900101300027',
  /** The loan's account is listed in another currency (KZT ↔ USD); its statement too. */
  currencyMismatch: '900101300037',
  /** The statement of the loan's account is empty: no disbursement line. */
  noDisbursement: '900101300047',
  /** The scan is always 404. */
  scanMissing: '900101300057',
  /** The scan is 404 for the first `scanAfterRequests` requests (per agreement), then found. */
  scanAfterRequests: '900101300067',
  /** The scan is 404 until `scanAfterMs` after the first request for it (per agreement), then found. */
  scanAfterTime: '900101300077',
  /** The scan is a TIFF. */
  scanTiff: '900101300087',
  /** The scan's name comes as raw UTF-8 in a plain filename="…" (as in the specification's example). */
  scanPlainFileName: '900101300097',
} as const;
export type AbsScenario = keyof typeof ABS_SCENARIO_IINS;

/** Business answers (200, error_code ≠ 0), in Russian as ABS writes them. */
export const ABS_SIM_ERRORS = {
  CLIENT_NOT_FOUND: { error_code: 1, error_text: 'Клиент с указанным ИИН/БИН не найден' },
  INVALID_IINBIN: { error_code: 2, error_text: 'Некорректный ИИН/БИН' },
  ACCOUNT_NOT_FOUND: { error_code: 3, error_text: 'Счет не найден' },
  INVALID_DATE: { error_code: 4, error_text: 'Некорректная дата, ожидается ГГГГ.ММ.ДД' },
  MISSING_PARAMETER: { error_code: 5, error_text: 'Не указан обязательный параметр' },
  /** The businessError fault. */
  REFUSED: { error_code: 99, error_text: 'Операция отклонена АБС' },
} as const satisfies Record<string, AbsAnswerWire>;

/** The 'abs.*' fault knobs (rates are probabilities 0..1). */
export const ABS_FAULT_KEYS = {
  latencyMs: 'milliseconds: wait this long before answering any ABS call',
  timeout: 'rate: never answer (the request hangs until the client gives up or the simulator closes)',
  http5xx: 'rate: answer HTTP 500/502/503',
  http429: 'rate: answer HTTP 429 with Retry-After: 1',
  businessError: 'rate: answer 200 with error_code 99 (JSON calls)',
  scanMissing: 'rate: answer the scan with 404',
  malformed: 'rate: a broken answer (see malformedKind)',
  malformedKind: '1 truncated JSON, 2 a required field missing, 3 wrong content type; 0 or unset: any of them',
} as const;

export interface AbsSimulatorOptions {
  faults: Faults;
  /** IIN → scenario, added to (or overriding) ABS_SCENARIO_IINS. */
  scenarios?: Record<string, AbsScenario>;
  /** Mixed into every derivation: another seed, another world. Default 0. */
  seed?: number | string;
  /** scanAfterRequests scenario: how many requests get 404 first. Default 2. */
  scanAfterRequests?: number;
  /** scanAfterTime scenario: how long after the first request the scan appears. Default 60 s. */
  scanAfterMs?: number;
  /** Clock for the scanAfterTime scenario. */
  now?: () => number;
}

/** How the simulator answered one ABS call (GET /_sim/journal counts them per path). */
export type AbsCallOutcome = 'ok' | 'business-error' | 'not-found' | 'bad-request' | 'http5xx' | 'http429' | 'timeout' | 'malformed' | 'other';

/** Calls per ABS path and outcome since the simulator started (or since DELETE /_sim/journal). */
export interface AbsJournal {
  since: string;
  total: number;
  calls: Record<string, Partial<Record<AbsCallOutcome, number>>>;
}

export interface AbsSimulator {
  app: express.Express;
  faults: Faults;
  /** The counts served at GET /_sim/journal. */
  journal(): AbsJournal;
  /** Starts listening; resolves with the actual port (0 for an ephemeral one). */
  listen(port: number, host?: string): Promise<number>;
  /** Ends requests held by the timeout fault and, when listen() was used, closes the server. */
  close(): Promise<void>;
}

/** A loan registered through POST /_sim/loans (normalized). */
interface BookedLoan {
  iinbin: string;
  iban: string;
  cur: string;
  debt: string;
  system: string;
  fullname?: string;
  dbzNumber?: string;
  dbzDate?: string;
}

// ---------------------------------------------------------------------------------------------
// Derivation: pure functions of (seed, IIN), exported so other simulators and tests can predict ABS.
// ---------------------------------------------------------------------------------------------

function rngFor(seed: number | string, purpose: string, key: string): Rand {
  const digest = createHash('sha256').update(`${seed}|${purpose}|${key}`).digest();
  return mulberry32(digest.readUInt32BE(0));
}

/** Money as ABS sends it: a JSON number. minor/100 is the double nearest the decimal, so String() gives it back exactly. */
function wireAmount(money: string): number {
  return Number(money);
}

function moneyFromMinor(minor: number): string {
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}

function derivedIban(iinbin: string, index: number): string {
  const bban = `${SIM_BANK_CODE}${iinbin}${index}`;
  return `KZ${kzIbanCheckDigits(bban)}${bban}`;
}

/** The client as ABS knows it without a loan book. */
export function deriveClient(iinbin: string, seed: number | string = 0): Omit<AbsClientWire, keyof AbsAnswerWire> {
  const kind = classifyIinBin(iinbin);
  if (!kind) throw new RangeError('deriveClient needs a valid IIN/BIN');
  const rand = rngFor(seed, 'client', iinbin);
  if (kind.kind === 'individual') {
    return { iinbin, fullname: generateFullname(rand, kind.gender), sectecon: 9, residfl: 1 };
  }
  const fullname = pick(rand, ['ТОО «Алтын Дала»', 'ТОО «Степь Агро»', 'АО «Каспий Транс»', 'ТОО «Бастау Строй»', 'ТОО «Нур Трейд»']);
  // Sector 9 (households) for individual entrepreneurs, 7 (non-financial organizations) otherwise.
  return { iinbin, fullname, sectecon: kind.entityType === 'individual-entrepreneur' ? 9 : 7, residfl: kind.entityType === 'non-resident' ? 0 : 1 };
}

/**
 * The loan account every derived client has (account index 1), and what was disbursed on it.
 * A feeder that does not use the loan book can send this IBAN and currency in its EKO loans.
 */
export function deriveLoanAccount(iinbin: string, seed: number | string = 0): { iban: string; cur: string; amount: string } {
  if (!isValidIinBin(iinbin)) throw new RangeError('deriveLoanAccount needs a valid IIN/BIN');
  const rand = rngFor(seed, 'loan', iinbin);
  const cur = rand() < 0.1 ? 'USD' : 'KZT';
  const minor = randomInt(rand, 1_000, 100_000) * 10_000 + (rand() < 0.3 ? randomInt(rand, 1, 99) : 0);
  return { iban: derivedIban(iinbin, 1), cur, amount: moneyFromMinor(minor) };
}

/** The accounts ABS lists for a client without a loan book: current (0), loan (1), sometimes a deposit (2). */
export function deriveAccounts(iinbin: string, seed: number | string = 0): AbsAccountWire[] {
  const client = deriveClient(iinbin, seed);
  const legal = classifyIinBin(iinbin)?.kind === 'legal-entity';
  const rand = rngFor(seed, 'accounts', iinbin);
  const accounts: AbsAccountWire[] = [
    // GL plan codes: 2204/2203 current accounts of individuals/legal entities, 1417 long-term loans, 2206 deposits.
    { iban: derivedIban(iinbin, 0), accountName: client.fullname, ps: legal ? '2203191' : '2204191', system: 'way4', cur: 'KZT' },
    { iban: derivedIban(iinbin, 1), accountName: client.fullname, ps: '1417191', system: 'way4', cur: deriveLoanAccount(iinbin, seed).cur },
  ];
  if (rand() < 0.4) {
    accounts.push({ iban: derivedIban(iinbin, 2), accountName: client.fullname, ps: '2206191', system: 'way4', cur: pick(rand, ['KZT', 'USD', 'EUR']) });
  }
  return accounts;
}

/** The other currency of the currencyMismatch scenario. */
function otherCurrency(cur: string): string {
  return cur === 'KZT' ? 'USD' : 'KZT';
}

// ---------------------------------------------------------------------------------------------
// Scan files, built by hand: tiny, valid and deterministic.
// ---------------------------------------------------------------------------------------------

/** PDF strings take printable ASCII; the standard fonts have no Cyrillic, so anything else becomes '?'. */
function pdfText(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').replace(/([\\()])/g, '\\$1');
}

/** A one-page PDF 1.4 with a correct xref table. */
export function buildScanPdf(lines: string[]): Buffer {
  const text = lines.map((l, i) => `${i === 0 ? '' : '0 -22 Td '}(${pdfText(l)}) Tj`);
  const content = ['BT', '/F1 14 Tf', '72 770 Td', ...text, 'ET'].join('\n');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
  ];
  // Latin-1 throughout: one character is one byte, so string lengths are byte offsets.
  let pdf = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) pdf += `${String(o).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

/** A little-endian baseline TIFF: 8-bit grey, one strip, uncompressed, with an ImageDescription. */
export function buildScanTiff(description: string, rand: Rand, width = 64, height = 32): Buffer {
  const desc = Buffer.from(description.replace(/[^\x20-\x7e]/g, '?') + '\0', 'latin1');
  const entries = 13;
  const ifdSize = 2 + entries * 12 + 4;
  const xResAt = 8 + ifdSize;
  const yResAt = xResAt + 8;
  const descAt = yResAt + 8;
  const stripAt = descAt + desc.length + (desc.length % 2); // word-aligned
  const pixels = width * height;
  const buf = Buffer.alloc(stripAt + pixels);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(8, 4);
  buf.writeUInt16LE(entries, 8);
  let at = 10;
  // Tags must be in ascending order. Types: 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL.
  const entry = (tag: number, type: number, count: number, value: number) => {
    buf.writeUInt16LE(tag, at);
    buf.writeUInt16LE(type, at + 2);
    buf.writeUInt32LE(count, at + 4);
    if (type === 3) buf.writeUInt16LE(value, at + 8);
    else buf.writeUInt32LE(value, at + 8);
    at += 12;
  };
  entry(256, 3, 1, width); // ImageWidth
  entry(257, 3, 1, height); // ImageLength
  entry(258, 3, 1, 8); // BitsPerSample
  entry(259, 3, 1, 1); // Compression: none
  entry(262, 3, 1, 1); // PhotometricInterpretation: BlackIsZero
  entry(270, 2, desc.length, descAt); // ImageDescription
  entry(273, 4, 1, stripAt); // StripOffsets
  entry(277, 3, 1, 1); // SamplesPerPixel
  entry(278, 3, 1, height); // RowsPerStrip
  entry(279, 4, 1, pixels); // StripByteCounts
  entry(282, 5, 1, xResAt); // XResolution
  entry(283, 5, 1, yResAt); // YResolution
  entry(296, 3, 1, 2); // ResolutionUnit: inch
  buf.writeUInt32LE(0, at); // no next IFD
  buf.writeUInt32LE(200, xResAt);
  buf.writeUInt32LE(1, xResAt + 4);
  buf.writeUInt32LE(200, yResAt);
  buf.writeUInt32LE(1, yResAt + 4);
  desc.copy(buf, descAt);
  // Light paper with a little noise, like a scanned page.
  for (let i = 0; i < pixels; i++) buf[stripAt + i] = 200 + Math.floor(rand() * 56);
  return buf;
}

/** RFC 5987 ext-value of a UTF-8 file name. */
function rfc5987(name: string): string {
  return "UTF-8''" + encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function quoted(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

// ---------------------------------------------------------------------------------------------
// The server.
// ---------------------------------------------------------------------------------------------

function queryParam(req: Request, name: string): string | undefined {
  const v = req.query[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Reads EKO loan items for the loan book; all or nothing, every problem named by index and field. */
function readLoanBook(body: unknown): { ok: true; loans: BookedLoan[] } | { ok: false; problems: string[] } {
  if (!Array.isArray(body)) return { ok: false, problems: ['body: expected a JSON array of EKO loan items'] };
  const problems: string[] = [];
  const loans: BookedLoan[] = [];
  body.forEach((item: unknown, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push(`[${i}]: expected an object`);
      return;
    }
    const v = item as Record<string, unknown>;
    const before = problems.length;
    if (!isValidIinBin(v.iinbin)) problems.push(`[${i}].iinbin: expected a valid IIN/BIN`);
    if (!isValidKzIban(v.iban)) problems.push(`[${i}].iban: expected a valid Kazakhstan IBAN`);
    if (!isIso4217(v.cur)) problems.push(`[${i}].cur: expected an ISO 4217 code`);
    const debtProblem = moneyProblem(v.debt);
    if (debtProblem) problems.push(`[${i}].debt: ${debtProblem}`);
    const dbzNumber =
      typeof v.dbz_contract_number === 'string' && v.dbz_contract_number !== ''
        ? v.dbz_contract_number
        : typeof v.contract_number === 'string'
          ? v.contract_number
          : undefined;
    const dbzDate = v.dbz_date === undefined || v.dbz_date === null ? undefined : parseWireDate(v.dbz_date);
    if (v.dbz_date !== undefined && v.dbz_date !== null && dbzDate === undefined) problems.push(`[${i}].dbz_date: expected YYYY-MM-DD or YYYY.MM.DD`);
    if (problems.length > before) return;
    loans.push({
      iinbin: v.iinbin as string,
      iban: v.iban as string,
      cur: v.cur as string,
      debt: parseMoney(v.debt),
      system: typeof v.system === 'string' && v.system !== '' ? v.system : 'way4',
      fullname: typeof v.fullname === 'string' && v.fullname.trim() !== '' ? v.fullname.trim() : undefined,
      dbzNumber,
      dbzDate,
    });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, loans };
}

export function createAbsSimulator(options: AbsSimulatorOptions): AbsSimulator {
  const { faults } = options;
  const seed = options.seed ?? 0;
  const now = options.now ?? Date.now;
  const scanAfterRequests = options.scanAfterRequests ?? 2;
  const scanAfterMs = options.scanAfterMs ?? 60_000;
  const scenarioOf = new Map<string, AbsScenario>();
  for (const [name, iin] of Object.entries(ABS_SCENARIO_IINS)) scenarioOf.set(iin, name as AbsScenario);
  for (const [iin, name] of Object.entries(options.scenarios ?? {})) scenarioOf.set(iin, name);

  // The loan book: by IBAN (statement) and by IIN (accounts, scan, client name).
  const loansByIban = new Map<string, BookedLoan>();
  const loansByIin = new Map<string, BookedLoan[]>();
  const book = (loan: BookedLoan) => {
    const previous = loansByIban.get(loan.iban);
    if (previous)
      loansByIin.set(
        previous.iinbin,
        (loansByIin.get(previous.iinbin) ?? []).filter((l) => l !== previous),
      );
    loansByIban.set(loan.iban, loan);
    loansByIin.set(loan.iinbin, [...(loansByIin.get(loan.iinbin) ?? []), loan]);
  };

  // Scan scenarios that change over time, per (IIN, agreement).
  const scanRequests = new Map<string, number>();
  const scanFirstSeen = new Map<string, number>();

  // Requests held by the timeout fault; close() ends them.
  const held = new Set<Response>();

  // The journal: counts only (cheap), per path and outcome.
  let journal: AbsJournal = { since: new Date(now()).toISOString(), total: 0, calls: {} };
  const count = (path: string, outcome: AbsCallOutcome) => {
    const byOutcome = (journal.calls[path] ??= {});
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
    journal.total += 1;
  };
  /** The outcome of an answer the route did not name (res.locals.absOutcome), from its HTTP status. */
  const outcomeOfStatus = (status: number): AbsCallOutcome => (status === 200 ? 'ok' : status === 404 ? 'not-found' : status === 400 ? 'bad-request' : 'other');

  /** Sends a JSON answer, unless the businessError or malformed fault spoils it. */
  const sendAnswer = (res: Response, answer: AbsAnswerWire & Record<string, unknown>) => {
    let body: Record<string, unknown> = answer;
    if (faults.roll('businessError')) body = { ...ABS_SIM_ERRORS.REFUSED };
    res.locals.absOutcome = body.error_code === 0 ? 'ok' : 'business-error';
    if (faults.roll('malformed')) {
      res.locals.absOutcome = 'malformed';
      const kind = faults.get('malformedKind') || 1 + Math.floor(Math.random() * 3);
      if (kind === 3) {
        res.status(200).type('text/html').send('<html><body><h1>Сервис временно недоступен</h1></body></html>');
        return;
      }
      if (kind === 1) {
        const text = JSON.stringify(body);
        res
          .status(200)
          .set('Content-Type', 'application/json; charset=utf-8')
          .send(text.slice(0, Math.floor(text.length / 2)));
        return;
      }
      body = dropRequiredField(body);
    }
    res.status(200).set('Content-Type', 'application/json; charset=utf-8').send(JSON.stringify(body));
  };

  const clientOf = (iinbin: string): AbsClientWire => {
    const derived = deriveClient(iinbin, seed);
    const registeredName = (loansByIin.get(iinbin) ?? []).find((l) => l.fullname)?.fullname;
    return { error_code: 0, error_text: '', ...derived, fullname: registeredName ?? derived.fullname };
  };

  const accountsOf = (iinbin: string): AbsAccountWire[] => {
    const scenario = scenarioOf.get(iinbin);
    const name = clientOf(iinbin).fullname;
    const accounts = deriveAccounts(iinbin, seed).map((a) => ({ ...a, accountName: name }));
    const loanIban = derivedIban(iinbin, 1);
    for (const loan of loansByIin.get(iinbin) ?? []) {
      const account: AbsAccountWire = { iban: loan.iban, accountName: name, ps: '1417191', system: loan.system, cur: loan.cur };
      const at = accounts.findIndex((a) => a.iban === loan.iban);
      if (at >= 0) accounts[at] = account;
      else accounts.push(account);
    }
    const isLoanAccount = (a: AbsAccountWire) => a.iban === loanIban || loansByIban.has(a.iban);
    if (scenario === 'ibanNotAmongAccounts') return accounts.filter((a) => !isLoanAccount(a));
    if (scenario === 'currencyMismatch') return accounts.map((a) => (isLoanAccount(a) ? { ...a, cur: otherCurrency(a.cur) } : a));
    return accounts;
  };

  /** The statement lines of an account, or undefined when ABS has no such account. */
  const statementOf = (iban: string): AbsStatementLineWire[] | undefined => {
    const booked = loansByIban.get(iban);
    let iinbin: string;
    let cur: string;
    let amount: string;
    let agreement: string | undefined;
    if (booked) {
      ({ iinbin, cur, debt: amount, dbzNumber: agreement } = booked);
    } else {
      const embedded = iban.slice(7, 19);
      const isDerived = iban.slice(4, 7) === SIM_BANK_CODE && isValidIinBin(embedded) && derivedIban(embedded, Number(iban[19])) === iban;
      if (!isDerived) return undefined;
      iinbin = embedded;
      const account = deriveAccounts(iinbin, seed).find((a) => a.iban === iban);
      if (!account) return undefined;
      if (iban !== derivedIban(iinbin, 1)) return []; // current and deposit accounts: nothing on that date
      ({ cur, amount } = deriveLoanAccount(iinbin, seed));
    }
    const scenario = scenarioOf.get(iinbin);
    if (scenario === 'clientUnknown') return undefined;
    if (scenario === 'noDisbursement') return [];
    if (scenario === 'currencyMismatch') cur = otherCurrency(cur);
    const purpose = agreement ? `Предоставление кредита по договору № ${agreement}` : 'Предоставление кредита по договору';
    // At the disbursement the outgoing balance of the loan account is the amount disbursed.
    return [{ purpose, amount: wireAmount(amount), cur, DC: 'D', out_bal: wireAmount(amount) }];
  };

  const app = express();
  app.disable('x-powered-by');

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // --- simulator control -------------------------------------------------------------------
  app.use(faultControl(faults, ABS_FAULT_KEYS));
  // 50,000 loans are about 17 MB of JSON.
  app.post('/_sim/loans', express.json({ limit: '100mb' }), (req, res) => {
    const read = readLoanBook(req.body);
    if (!read.ok) {
      res.status(400).json({ error: 'loan book rejected', problems: read.problems.slice(0, 50), problemCount: read.problems.length });
      return;
    }
    for (const loan of read.loans) book(loan);
    res.json({ registered: read.loans.length, total: loansByIban.size });
  });
  app.get('/_sim/journal', (_req, res) => {
    res.json(journal);
  });
  app.delete('/_sim/journal', (_req, res) => {
    journal = { since: new Date(now()).toISOString(), total: 0, calls: {} };
    res.json(journal);
  });
  app.get('/_sim/loans', (_req, res) => {
    res.json({ total: loansByIban.size });
  });
  app.delete('/_sim/loans', (_req, res) => {
    loansByIban.clear();
    loansByIin.clear();
    scanRequests.clear();
    scanFirstSeen.clear();
    res.json({ total: 0 });
  });

  // --- transport faults, before any ABS call ---------------------------------------------------
  app.use('/abs', async (req: Request, res: Response, next: NextFunction) => {
    const path = req.baseUrl + req.path;
    res.on('finish', () => count(path, (res.locals.absOutcome as AbsCallOutcome | undefined) ?? outcomeOfStatus(res.statusCode)));
    const latency = faults.get('latencyMs');
    if (latency > 0) await sleep(latency);
    if (faults.roll('timeout')) {
      // No answer at all: the client's timeout must fire. The hang ends when the client disconnects or close() runs.
      count(path, 'timeout');
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    if (faults.roll('http5xx')) {
      res.locals.absOutcome = 'http5xx';
      res
        .status(pick(Math.random, [500, 502, 503]))
        .type('text/plain')
        .send('Service Unavailable');
      return;
    }
    if (faults.roll('http429')) {
      res.locals.absOutcome = 'http429';
      res.status(429).set('Retry-After', '1').type('text/plain').send('Too Many Requests');
      return;
    }
    next();
  });

  // --- the four services -------------------------------------------------------------------------
  app.get(ABS_SIM_PATHS.client, (req, res) => {
    const iinbin = queryParam(req, 'iinbin');
    if (!iinbin) return sendAnswer(res, { ...ABS_SIM_ERRORS.MISSING_PARAMETER });
    if (!isValidIinBin(iinbin)) return sendAnswer(res, { ...ABS_SIM_ERRORS.INVALID_IINBIN });
    if (scenarioOf.get(iinbin) === 'clientUnknown') return sendAnswer(res, { ...ABS_SIM_ERRORS.CLIENT_NOT_FOUND });
    sendAnswer(res, { ...clientOf(iinbin) });
  });

  app.get(ABS_SIM_PATHS.accounts, (req, res) => {
    const iinbin = queryParam(req, 'iinbin');
    if (!iinbin) return sendAnswer(res, { ...ABS_SIM_ERRORS.MISSING_PARAMETER });
    if (!isValidIinBin(iinbin)) return sendAnswer(res, { ...ABS_SIM_ERRORS.INVALID_IINBIN });
    if (scenarioOf.get(iinbin) === 'clientUnknown') return sendAnswer(res, { ...ABS_SIM_ERRORS.CLIENT_NOT_FOUND });
    const answer: AbsAccountsWire = { error_code: 0, error_text: '', ibans: accountsOf(iinbin) };
    sendAnswer(res, { ...answer });
  });

  app.get(ABS_SIM_PATHS.statement, (req, res) => {
    const iban = queryParam(req, 'iban');
    const dt = queryParam(req, 'dt');
    if (!iban || !dt) return sendAnswer(res, { ...ABS_SIM_ERRORS.MISSING_PARAMETER });
    // Both the seed's example form (2020-01-01) and its table's form (2020.01.01) are accepted.
    if (parseWireDate(dt) === undefined) return sendAnswer(res, { ...ABS_SIM_ERRORS.INVALID_DATE });
    const stmt = isValidKzIban(iban) ? statementOf(iban) : undefined;
    if (!stmt) return sendAnswer(res, { ...ABS_SIM_ERRORS.ACCOUNT_NOT_FOUND });
    const answer: AbsStatementWire = { error_code: 0, error_text: '', stmt };
    sendAnswer(res, { ...answer });
  });

  app.get(ABS_SIM_PATHS.scan, (req, res) => {
    const dbzNum = queryParam(req, 'dbz_num');
    const dbzDate = parseWireDate(queryParam(req, 'dbz_dt'));
    const iinbin = queryParam(req, 'iinbin');
    if (!dbzNum || !dbzDate || !iinbin) {
      res.status(400).type('text/plain').send('dbz_num, dbz_dt (ГГГГ.ММ.ДД) and iinbin are required');
      return;
    }
    const notFound = () => res.status(404).type('text/plain').send('Скан ДБЗ не найден');
    const scenario = scenarioOf.get(iinbin);
    if (!isValidIinBin(iinbin) || scenario === 'clientUnknown' || scenario === 'scanMissing') return notFound();
    if (faults.roll('scanMissing')) return notFound();
    const key = `${iinbin}|${dbzNum}|${dbzDate}`;
    if (scenario === 'scanAfterRequests') {
      const count = (scanRequests.get(key) ?? 0) + 1;
      scanRequests.set(key, count);
      if (count <= scanAfterRequests) return notFound();
    }
    if (scenario === 'scanAfterTime') {
      const first = scanFirstSeen.get(key) ?? now();
      scanFirstSeen.set(key, first);
      if (now() - first < scanAfterMs) return notFound();
    }
    // A registered agreement is found only under its own date, as ABS looks agreements up by number and date.
    const booked = (loansByIin.get(iinbin) ?? []).find((l) => l.dbzNumber === dbzNum);
    if (booked?.dbzDate !== undefined && booked.dbzDate !== dbzDate) return notFound();

    if (faults.roll('malformed')) {
      res.locals.absOutcome = 'malformed';
      res.status(200).type('text/html').send('<html><body>Ошибка формирования файла</body></html>');
      return;
    }
    const rand = rngFor(seed, 'scan', key);
    const tiff = scenario === 'scanTiff' || (scenario === undefined && rngFor(seed, 'scan-format', iinbin)() < 0.2);
    // An opaque id instead of the IIN: the file is evidence about the agreement, and it travels.
    const scanId = createHash('sha256').update(`${seed}|${key}`).digest('hex').slice(0, 16);
    const [y, m, d] = dbzDate.split('-');
    const title = ['Loan agreement scan (DBZ)', `Agreement No. ${dbzNum}`, `Dated ${d}.${m}.${y}`, `Scan id ${scanId}`];
    const body = tiff ? buildScanTiff(title.join('; '), rand) : buildScanPdf(title);
    const fileName = `Скан ДБЗ ${dbzNum}.${tiff ? 'tif' : 'pdf'}`;
    const disposition =
      scenario === 'scanPlainFileName'
        ? // Raw UTF-8 bytes in the header, as the specification's example shows; Node writes header strings as Latin-1.
          Buffer.from(`attachment; filename=${quoted(fileName)}`, 'utf8').toString('latin1')
        : `attachment; filename=${quoted(`DBZ_${dbzNum.replace(/[^\x20-\x7e]/g, '_')}.${tiff ? 'tif' : 'pdf'}`)}; filename*=${rfc5987(fileName)}`;
    res.status(200);
    res.setHeader('Content-Type', tiff ? 'image/tiff' : 'application/pdf');
    res.setHeader('Content-Disposition', disposition);
    res.setHeader('Content-Length', String(body.length));
    // write() then end(), not end(body): Node 20 re-decodes a Content-Disposition value as UTF-8 when
    // end() is given the body, which would mangle the raw UTF-8 bytes of the plain-filename scenario.
    res.write(body);
    res.end();
  });

  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status && err.status >= 400 && err.status < 600 ? err.status : 500).json({ error: err.message });
  });

  let server: http.Server | undefined;
  return {
    app,
    faults,
    journal: () => journal,
    async listen(port, host = '127.0.0.1') {
      server = await listenOn(app, port, host);
      return portOf(server);
    },
    async close() {
      for (const res of held) res.destroy();
      held.clear();
      const s = server;
      server = undefined;
      await closeServer(s);
    },
  };
}

/** The malformed fault's "required field missing": one field a reader must insist on. */
function dropRequiredField(body: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  if (copy.error_code !== 0) {
    delete copy.error_code;
  } else if (Array.isArray(copy.ibans) && copy.ibans.length > 0) {
    delete (copy.ibans[copy.ibans.length - 1] as Record<string, unknown>).cur;
  } else if (Array.isArray(copy.stmt) && copy.stmt.length > 0) {
    delete (copy.stmt[0] as Record<string, unknown>).amount;
  } else if ('fullname' in copy) {
    delete copy.fullname;
  } else {
    delete copy.error_code;
  }
  return copy;
}

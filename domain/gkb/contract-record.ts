/**
 * The GKB record of a case (DOMAIN.md §7): dossier → ContractRecord → one <Contract> element.
 * Pure functions, no I/O. Section numbers (§3.1, §6 ...) are those of the GKB document
 * "Загрузка данных"-Ломбард (gkb-batch-upload.txt); its examples fix element names and order.
 *
 * PRODUCT DECISION: operation 2 ("update") need not carry the blocks K2 has no source for.
 *   K2 never creates contracts at GKB. The bank's lending system reported each contract, with its
 *   collateral, subject addresses and contacts, when the loan was issued. K2 reports the overdue
 *   state of that existing contract with operation 2 ("Обновить"). Per the document (§4 "Механизм
 *   обновления/добавления данных", item 2) an update keeps the previous values for fields it leaves
 *   empty. So:
 *    - operation 2: Collaterals, subject Addresses and subject Communications are optional. They are
 *      sent when the dossier has them and left out when it has none. GKB then keeps what the
 *      lending system reported;
 *    - operation 1 ("Вставить"): the §3.1 note "Все вышеуказанные блоки обязательны для заполнения"
 *      applies to the letter. A dossier without those blocks is refused, and the reason names them.
 *
 * RULE: never send a value K2 does not know as of the record's accounting date (DOMAIN.md §7, G6).
 *   A default or a stale value would overwrite what GKB has, since an update only keeps the fields it
 *   leaves empty. So nothing is filled in by default: no stand-in collateral, no default Citizenship
 *   (sent only when a source knows it), and no ResidualAmount from the statement's out_bal (the balance
 *   right after disbursement; sent only when the dossier has the residual amount as of the report date).
 *   What the mapping does send: codes, dates and names from EKO/ABS, Gender and DateOfBirth from the
 *   IIN, Residency from ABS, CreditLimit (the disbursed amount, fixed for the contract's life),
 *   OverdueAmount and ContractStatus from EKO's latest debt and overdue days, and the per-deployment
 *   dictionary ids of DOMAIN.md §7 (FundingType, CreditPurpose2, CreditObject, BranchLocation).
 *   The type-1 XSD (integrations/gkb/schema/gkb-records.xsd) cannot make an element's presence
 *   depend on the operation attribute (XSD 1.0), so it makes the three blocks minOccurs="0". The
 *   operation-1 completeness rule is enforced here (K2 side) and by the sandbox's own rules
 *   (simulators/gkb/rules.ts, GKB side).
 *
 * Two file types (DOMAIN.md §5, document §4.1.1 / §6):
 *  - 1 "Кредитный договор": §3.1 says every block is mandatory ("Все вышеуказанные блоки обязательны
 *    для заполнения"): General, credit data, collaterals, subjects with identifications, addresses
 *    and communications, accounting dates. For operation 2 K2 relaxes the last three, as decided above.
 *  - 3 "Оперативная загрузка" (one-day): only newly issued contracts; a smaller mandatory set, shown
 *    by the §6.1 example. We send exactly that set (extra fields would be accepted but not stored).
 */
import { classifyIinBin, iinBinProblem } from '../iin';
import { isIsoDate } from '../dates';
import { moneyProblem, parseMoney } from '../money';
import type { GkbCollateralInput, GkbDictionary, GkbDossier, GkbId } from './dossier';

export type GkbOperation = 1 | 2;
export type GkbFileType = 1 | 3;

export interface GkbMoney {
  /** Normalized decimal string with 2 fraction digits, e.g. "2000000.00". */
  value: string;
  currency: string;
}

export interface GkbText {
  language: 'ru-RU' | 'kk-KZ' | 'en-GB';
  text: string;
}

export interface GkbAddress {
  katoId: string;
  locationId?: GkbId;
  typeId: GkbId;
  streetName?: GkbText[];
  streetNumber?: string;
  additionalInformation?: string;
}

export interface GkbCollateral {
  statusId: GkbId;
  typeId: GkbId;
  pledgeName?: GkbText[];
  value?: GkbMoney & { typeId: GkbId };
}

export interface GkbIdentification {
  rank: GkbId;
  typeId: GkbId;
  number: string;
  issueDate?: string;
}

export interface GkbIndividual {
  firstName: GkbText[];
  surname: GkbText[];
  fathersName?: GkbText[];
  gender?: 'M' | 'F';
  residencyId: GkbId;
  dateOfBirth: string;
  /** Only when a source knows it; never a default (see the rule at the top). */
  citizenshipId?: GkbId;
  identifications: GkbIdentification[];
  /** Always present in an operation-1 type-1 record; absent in operation 2 when the dossier has none. */
  addresses?: GkbAddress[];
  /** Same rule as addresses; never in file type 3 (§6.1). */
  communications?: Array<{ typeId: GkbId; value: string }>;
}

export interface GkbSubject {
  roleId: GkbId;
  individual: GkbIndividual;
}

/** One <Record accountingDate> of <RecordsList> (§3.2 / §6.2). */
export interface GkbAccountingRecord {
  accountingDate: string;
  /** Only when known as of accountingDate (see the rule at the top); always in file type 3. */
  residualAmount?: GkbMoney;
  overdueInstalmentCount?: number;
  overdueAmount?: GkbMoney;
  prolongationEndDate?: string;
  lastPaymentDate?: string;
}

/** A plain object mirroring <Contract> of §3.1 / §6.1, field for field, in document order. */
export interface ContractRecord {
  operation: GkbOperation;
  /** Which file type the record was built for; decides nothing in the XML itself. */
  fileType: GkbFileType;
  general: {
    contractCode: string;
    agreementNumber: string;
    fundingTypeId: GkbId;
    creditPurpose2Id?: GkbId;
    creditObjectId?: GkbId;
    contractPhaseId: GkbId;
    contractStatusId: GkbId;
    startDate: string;
    endDate?: string;
    realPaymentDate?: string;
    branchLocationKatoId?: string;
    /** Type 1 only: always present for operation 1; absent in operation 2 when the dossier has none. */
    collaterals?: GkbCollateral[];
    subjects: GkbSubject[];
  };
  credit: {
    creditLimit: GkbMoney;
    records: GkbAccountingRecord[];
  };
}

export type MapResult = { ok: true; record: ContractRecord } | { ok: false; notApplicable?: true; reason: string };

export const LEGAL_ENTITY_REASON = 'legal entity: the pawnshop GKB format covers individuals only (G3)';

// ---------------------------------------------------------------------------------------------
// ContractStatus bucket
// ---------------------------------------------------------------------------------------------

/**
 * ContractStatus id for a number of overdue days (DOMAIN.md §5): 0 → not overdue, else the
 * configured bucket. Throws RangeError on a negative or fractional count or a gap in the buckets:
 * those are programming / configuration errors, and guessing a status would misreport a borrower.
 */
export function contractStatusFor(overdueDays: number, dict: GkbDictionary): GkbId {
  if (!Number.isSafeInteger(overdueDays) || overdueDays < 0) {
    throw new RangeError(`overdue days must be a non-negative integer, got ${overdueDays}`);
  }
  if (overdueDays === 0) return dict.contractStatus.notOverdue;
  const bucket = dict.contractStatus.overdueBuckets.find((b) => overdueDays >= b.minDays && (b.maxDays === undefined || overdueDays <= b.maxDays));
  if (!bucket) throw new RangeError(`no ContractStatus bucket configured for ${overdueDays} overdue days`);
  return bucket.id;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

export type NameSplit = { ok: true; surname: string; firstName: string; fathersName?: string } | { ok: false; reason: string };

/**
 * Turkic patronymics are often written as two words: the father's name and a particle
 * ("Алиев Рашид Ахмед оглы", "Серікұлы" is one word but "Нурлан улы" is two). The particle belongs
 * to the patronymic, never to the first name.
 */
const PATRONYMIC_PARTICLES = new Set(['оглы', 'оғлы', 'оглу', 'угли', 'улы', 'ұлы', 'уулу', 'кызы', 'қызы', 'гызы', 'кизи']);

/**
 * "Фамилия Имя Отчество" → parts (ABS `fullname`, DOMAIN.md §7). Decisions:
 *  - whitespace is collapsed; hyphenated and apostrophe parts stay one word ("Петрова-Водкина");
 *  - 2 words: no patronymic (many people have none);
 *  - 3 words: surname, first name, patronymic;
 *  - 4+ words ending in a patronymic particle: surname, first name(s), "<father> <particle>";
 *  - 4+ words otherwise: refused. We cannot tell a double first name from a double surname or a
 *    two-word patronymic, and a wrong split is a wrong credit history; an operator supplies the
 *    split (GkbDossier.nameParts).
 */
export function splitFullName(fullname: string): NameSplit {
  const words = (fullname ?? '')
    .trim()
    .split(/\s+/)
    .filter((w) => w.length > 0);
  if (words.length === 0) return { ok: false, reason: 'missing client full name' };
  if (words.length === 1) {
    return { ok: false, reason: `client full name "${words[0]}" has one word; GKB needs at least surname and first name` };
  }
  if (words.length === 2) return { ok: true, surname: words[0], firstName: words[1] };
  if (words.length === 3) return { ok: true, surname: words[0], firstName: words[1], fathersName: words[2] };
  const last = words[words.length - 1].toLowerCase();
  if (PATRONYMIC_PARTICLES.has(last)) {
    return {
      ok: true,
      surname: words[0],
      firstName: words.slice(1, -2).join(' '),
      fathersName: words.slice(-2).join(' '),
    };
  }
  return {
    ok: false,
    reason: `client full name has ${words.length} words ("${words.join(' ')}"); cannot tell surname, first name and patronymic apart — an operator must supply the split`,
  };
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/**
 * A money amount as GKB shows it ("15000.00"): non-negative, at most 2 decimals on input, always
 * 2 on output, no floating point (DOMAIN.md §6, via domain/money.ts). undefined when not an amount.
 */
export function normalizeGkbAmount(raw: string | number): string | undefined {
  return moneyProblem(raw) === undefined ? parseMoney(raw) : undefined;
}

/**
 * Why a string cannot go into XML 1.0 at all, or undefined. Escaping fixes &, <, > and quotes, but
 * control characters (other than tab, LF, CR), lone surrogates and U+FFFE/U+FFFF are forbidden
 * by XML 1.0 §2.2 and would make GKB reject the whole file at the XSD stage (§4 step 1).
 */
export function xmlTextProblem(s: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(s);
  return bad ? `contains a character not allowed in XML (U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})` : undefined;
}

const CURRENCY = /^[A-Z]{3}$/;

// ---------------------------------------------------------------------------------------------
// Dossier → record
// ---------------------------------------------------------------------------------------------

export interface MapOptions {
  operation: GkbOperation;
  fileType: GkbFileType;
}

/**
 * The case's GKB record, or why there is none. Nothing is invented: a record missing data the
 * format requires is not produced; every missing item is named in one reason, for the operator.
 * What is required depends on the operation: an insert (1) of file type 1 needs every §3.1 block,
 * an update (2) leaves out the collateral, address and contact blocks the dossier lacks (see the top).
 * A legal entity (BIN) is not applicable (G3), not an error.
 */
export function mapDossierToContract(dossier: GkbDossier, dict: GkbDictionary, options: MapOptions): MapResult {
  const { operation, fileType } = options;
  if (operation !== 1 && operation !== 2) throw new RangeError(`operation must be 1 or 2, got ${operation}`);
  if (fileType !== 1 && fileType !== 3) throw new RangeError(`GKB contract file type must be 1 or 3, got ${fileType}`);

  // Who: an individual, known by a valid IIN (DateOfBirth and Gender come from it, DOMAIN.md §6).
  const iinProblem = iinBinProblem(dossier.iinbin);
  if (iinProblem) return { ok: false, reason: `iinbin is not a valid IIN: ${iinProblem}` };
  const holder = classifyIinBin(dossier.iinbin);
  if (!holder) return { ok: false, reason: 'iinbin is not a valid IIN' };
  if (holder.kind === 'legal-entity') return { ok: false, notApplicable: true, reason: LEGAL_ENTITY_REASON };

  // §6: "Данный тип файла предназначен исключительно для отправки вновь выданных контрактов".
  // A closed or already overdue contract is not newly issued; it goes in file type 1.
  if (fileType === 3 && (dossier.phase !== 'active' || dossier.overdueDays !== 0)) {
    return {
      ok: false,
      notApplicable: true,
      reason: `one-day upload (file type 3) is only for newly issued contracts (GKB document §6); this contract is ${dossier.phase === 'active' ? `${dossier.overdueDays} days overdue` : dossier.phase} and is reported in file type 1`,
    };
  }

  const missing: string[] = [];
  const invalid: string[] = [];

  const contractCode = (dossier.contractNumber ?? '').trim();
  if (!contractCode) missing.push('contract number');
  const agreementNumber = (dossier.dbzContractNumber ?? '').trim();
  if (!agreementNumber) missing.push('agreement (DBZ) number');

  // G1: GKB identifies a contract by code + start date + provider (§4); never guessed.
  if (dossier.agreementStartDate === undefined || dossier.agreementStartDate === '') missing.push('agreement start date');
  else if (!isIsoDate(dossier.agreementStartDate)) invalid.push(`agreement start date "${dossier.agreementStartDate}" is not a YYYY-MM-DD date`);
  for (const [label, value] of [
    ['agreement end date', dossier.agreementEndDate],
    ['real payment date', dossier.realPaymentDate],
  ] as const) {
    if (value !== undefined && value !== '' && !isIsoDate(value)) invalid.push(`${label} "${value}" is not a YYYY-MM-DD date`);
  }
  if (!dossier.reportDate) missing.push('report date');
  else if (!isIsoDate(dossier.reportDate)) invalid.push(`report date "${dossier.reportDate}" is not a YYYY-MM-DD date`);

  // Status from the overdue days; a closed contract must no longer be overdue (DOMAIN.md §2 step 8).
  let statusId: GkbId | undefined;
  if (!Number.isSafeInteger(dossier.overdueDays) || dossier.overdueDays < 0) {
    invalid.push(`overdue days ${dossier.overdueDays} is not a non-negative integer`);
  } else {
    try {
      statusId = contractStatusFor(dossier.overdueDays, dict);
    } catch (e) {
      invalid.push((e as Error).message);
    }
    if (dossier.phase !== 'active' && dossier.overdueDays > 0) {
      invalid.push(`contract is ${dossier.phase} but still ${dossier.overdueDays} days overdue`);
    }
  }
  const phaseId = { active: dict.contractPhase.active, closed: dict.contractPhase.closed, 'closed-early': dict.contractPhase.closedEarly }[dossier.phase];
  if (phaseId === undefined) invalid.push(`unknown case phase "${String(dossier.phase)}"`);

  // Amounts: all in the loan currency.
  const currency = (dossier.currency ?? '').trim();
  if (!currency) missing.push('currency');
  else if (!CURRENCY.test(currency)) invalid.push(`currency "${currency}" is not an ISO 4217 code`);
  const amount = (label: string, raw: string | undefined): string | undefined => {
    if (raw === undefined || raw === null || String(raw).trim() === '') {
      missing.push(label);
      return undefined;
    }
    const problem = moneyProblem(raw);
    if (problem) {
      invalid.push(`${label} "${raw}" is not an amount: ${problem}`);
      return undefined;
    }
    return parseMoney(raw);
  };
  const creditLimit = amount('credit limit (disbursed amount)', dossier.creditLimit);
  // Type 1 leaves ResidualAmount out unless it is known as of the report date; the §6.2 record has nothing else.
  const hasResidual = dossier.residualAmount !== undefined && String(dossier.residualAmount).trim() !== '';
  const residual = hasResidual || fileType === 3 ? amount('residual amount as of the report date', dossier.residualAmount) : undefined;
  const overdueAmount = fileType === 1 ? amount('overdue amount (debt)', dossier.debt) : undefined;
  if (dossier.phase !== 'active' && overdueAmount !== undefined && overdueAmount !== '0.00') {
    invalid.push(`contract is ${dossier.phase} but its overdue amount is ${overdueAmount}`);
  }

  // Names (Subject/Individual, §3.4).
  let names: { surname: string; firstName: string; fathersName?: string } | undefined;
  if (dossier.nameParts) {
    names = dossier.nameParts;
    if (!names.surname?.trim() || !names.firstName?.trim()) missing.push('surname or first name in the supplied name split');
  } else {
    const split = splitFullName(dossier.fullname);
    if (split.ok) names = split;
    else missing.push(split.reason.startsWith('missing ') ? split.reason.slice('missing '.length) : split.reason);
  }

  // Residency from ABS residfl: 1 = resident (DOMAIN.md §4, §7).
  let residencyId: GkbId | undefined;
  const residfl = String(dossier.residfl ?? '').trim();
  if (residfl === '') missing.push('resident flag (residfl)');
  else if (residfl === '1') residencyId = dict.residency.resident;
  else if (residfl === '0' || residfl === '2') {
    residencyId = dict.residency.nonResident;
    if (residencyId === undefined) invalid.push('client is a non-resident and no GKB Residency id is configured for non-residents');
  } else invalid.push(`resident flag residfl "${residfl}" is neither 1 (resident) nor 0/2 (non-resident)`);

  // Blocks §3.1 declares mandatory for file type 1 that no K2 source fills today. Mandatory for an
  // insert (operation 1); for an update (operation 2) sent only when the dossier has them (see the
  // product decision at the top of this file). Never a stand-in (G6).
  const collaterals = dossier.collaterals ?? [];
  if (fileType === 1 && operation === 1) {
    if (collaterals.length === 0) missing.push('collateral block (mandatory in file type 1, GKB document §3.1)');
    if (!dossier.addresses?.length) missing.push('subject address (mandatory in file type 1, GKB document §3.1)');
    if (!dossier.communications?.length) missing.push('subject contact details (mandatory in file type 1, GKB document §3.1)');
  }

  // Nothing that cannot be written as XML (names from ABS may carry anything).
  const texts: Array<[string, string | undefined]> = [
    ['contract number', contractCode],
    ['agreement number', agreementNumber],
    ['surname', names?.surname],
    ['first name', names?.firstName],
    ['patronymic', names?.fathersName],
    ...(dossier.addresses ?? []).flatMap((a): Array<[string, string | undefined]> => [
      ['address street', a.streetName],
      ['address street number', a.streetNumber],
      ['address information', a.additionalInformation],
    ]),
    ...(dossier.communications ?? []).map((c): [string, string] => ['contact', c.value]),
  ];
  for (const [label, t] of texts) {
    const p = t === undefined ? undefined : xmlTextProblem(t);
    if (p) invalid.push(`${label} ${p}`);
  }

  if (missing.length || invalid.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.join(', ')}`);
    if (invalid.length) parts.push(invalid.join('; '));
    return { ok: false, reason: parts.join('; ') };
  }

  // All checked above; the non-null assertions below restate that.
  const ru = (text: string): GkbText[] => [{ language: 'ru-RU', text }];
  const n = names!;
  const individual: GkbIndividual = {
    firstName: ru(n.firstName.trim()),
    surname: ru(n.surname.trim()),
    ...(n.fathersName?.trim() ? { fathersName: ru(n.fathersName.trim()) } : {}),
    residencyId: residencyId!,
    dateOfBirth: holder.birthDate,
    identifications: [{ rank: dict.identification.iin.rank, typeId: dict.identification.iin.typeId, number: dossier.iinbin }],
  };
  if (fileType === 1) {
    // §6.1 omits Gender, Citizenship and Communications; §3.1 has them.
    individual.gender = holder.gender;
    if (dossier.citizenshipId !== undefined && dossier.citizenshipId !== '') individual.citizenshipId = dossier.citizenshipId;
    // Checked above for operation 1; for operation 2 absent means "keep what GKB has".
    if (dossier.communications?.length) {
      individual.communications = dossier.communications.map((c) => ({ typeId: c.typeId, value: c.value }));
    }
  }
  if (dossier.addresses?.length) {
    individual.addresses = dossier.addresses.map((a) => ({
      katoId: a.katoId,
      ...(a.locationId !== undefined ? { locationId: a.locationId } : {}),
      typeId: a.typeId,
      ...(a.streetName ? { streetName: ru(a.streetName) } : {}),
      ...(fileType === 1 && a.streetNumber ? { streetNumber: a.streetNumber } : {}),
      ...(fileType === 1 && a.additionalInformation ? { additionalInformation: a.additionalInformation } : {}),
    }));
  }

  const record: ContractRecord = {
    operation,
    fileType,
    general: {
      contractCode,
      agreementNumber,
      fundingTypeId: dict.fundingType,
      ...(fileType === 1 ? { creditPurpose2Id: dict.creditPurpose2, creditObjectId: dict.creditObject } : {}),
      contractPhaseId: phaseId!,
      contractStatusId: statusId!,
      startDate: dossier.agreementStartDate!,
      ...(dossier.agreementEndDate ? { endDate: dossier.agreementEndDate } : {}),
      ...(fileType === 1 && dossier.realPaymentDate ? { realPaymentDate: dossier.realPaymentDate } : {}),
      ...(fileType === 1 ? { branchLocationKatoId: dict.branchLocationKatoId } : {}),
      ...(fileType === 1 && collaterals.length > 0 ? { collaterals: collaterals.map((c) => toCollateral(c)) } : {}),
      subjects: [{ roleId: dict.subjectRole.borrower, individual }],
    },
    credit: {
      creditLimit: { value: creditLimit!, currency },
      records: [
        {
          accountingDate: dossier.reportDate,
          ...(residual !== undefined ? { residualAmount: { value: residual, currency } } : {}),
          ...(fileType === 1 ? { overdueAmount: { value: overdueAmount!, currency } } : {}),
        },
      ],
    },
  };
  return { ok: true, record };
}

function toCollateral(c: GkbCollateralInput): GkbCollateral {
  const out: GkbCollateral = { statusId: c.statusId, typeId: c.typeId };
  if (c.pledgeName) out.pledgeName = [{ language: 'ru-RU', text: c.pledgeName }];
  if (c.value) {
    const v = normalizeGkbAmount(c.value.amount);
    if (v === undefined) throw new RangeError(`collateral value "${c.value.amount}" is not an amount`);
    out.value = { value: v, currency: c.value.currency, typeId: c.value.typeId };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Record → XML
// ---------------------------------------------------------------------------------------------

/**
 * Everything escapeXml must look at: the characters it replaces and those xmlTextProblem refuses
 * (controls, surrogates — a valid pair is checked by the slow path —, U+FFFE/U+FFFF). Most values
 * (codes, dates, ids, amounts, plain names) contain none, and are returned as they are.
 */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE_OR_CHECK = /[&<>"'\u0000-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;

/** Escapes text content and attribute values (we always quote attributes with "). */
export function escapeXml(s: string): string {
  if (!NEEDS_ESCAPE_OR_CHECK.test(s)) return s;
  const p = xmlTextProblem(s);
  if (p) throw new RangeError(`cannot write ${JSON.stringify(s)} to XML: ${p}`);
  return s.replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c]);
}
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // Kept as references so attribute-value normalization cannot turn them into spaces.
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

// The writer below builds one string by concatenation (no per-line arrays, closures or
// Object.entries per element: it runs once per contract, tens of thousands of times per file).
const PADS: string[] = [];
/** Indentation for `depth` (two spaces a level), computed once per depth. */
function pad(depth: number): string {
  return PADS[depth] ?? (PADS[depth] = '  '.repeat(depth));
}
/** ` name="value"`, or '' when the value is absent. */
function attr(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : ` ${name}="${escapeXml(String(value))}"`;
}
function leaf(d: number, name: string, text: string, attrs = ''): string {
  return `${pad(d)}<${name}${attrs}>${escapeXml(text)}</${name}>\n`;
}
function empty(d: number, name: string, attrs: string): string {
  return `${pad(d)}<${name}${attrs}/>\n`;
}
function open(d: number, name: string, attrs = ''): string {
  return `${pad(d)}<${name}${attrs}>\n`;
}
function close(d: number, name: string): string {
  return `${pad(d)}</${name}>\n`;
}
function texts(d: number, name: string, t: GkbText[]): string {
  let s = open(d, name);
  for (const x of t) s += leaf(d + 1, 'Text', x.text, attr('language', x.language));
  return s + close(d, name);
}
function money(d: number, name: string, m: GkbMoney): string {
  return leaf(d, name, m.value, attr('currency', m.currency));
}

/**
 * One <Contract operation="…"> element, in the element order and names of §3.1 (file type 1) or
 * §6.1 (file type 3; the record simply has fewer fields). One element per line, indented, so that
 * XSD error line numbers point at one field. `indent` is the depth of <Contract> (1 inside <Records>).
 */
export function writeContractXml(record: ContractRecord, indent = 1): string {
  const g = record.general;
  let d = indent;
  let s = open(d, 'Contract', attr('operation', record.operation));
  s += open(++d, 'General');
  d++;
  s += leaf(d, 'ContractCode', g.contractCode);
  s += leaf(d, 'AgreementNumber', g.agreementNumber);
  s += empty(d, 'FundingType', attr('id', g.fundingTypeId));
  if (g.creditPurpose2Id !== undefined) s += empty(d, 'CreditPurpose2', attr('id', g.creditPurpose2Id));
  if (g.creditObjectId !== undefined) s += empty(d, 'CreditObject', attr('id', g.creditObjectId));
  s += empty(d, 'ContractPhase', attr('id', g.contractPhaseId));
  s += empty(d, 'ContractStatus', attr('id', g.contractStatusId));
  s += leaf(d, 'StartDate', g.startDate);
  if (g.endDate !== undefined) s += leaf(d, 'EndDate', g.endDate);
  if (g.realPaymentDate !== undefined) s += leaf(d, 'RealPaymentDate', g.realPaymentDate);
  if (g.branchLocationKatoId !== undefined) s += empty(d, 'BranchLocation', attr('katoId', g.branchLocationKatoId));
  if (g.collaterals?.length) {
    s += open(d, 'Collaterals');
    for (const c of g.collaterals) {
      const ca = attr('statusId', c.statusId) + attr('typeId', c.typeId);
      if (!c.pledgeName && !c.value) {
        s += empty(d + 1, 'Collateral', ca);
        continue;
      }
      s += open(d + 1, 'Collateral', ca);
      if (c.pledgeName) s += texts(d + 2, 'PledgeName', c.pledgeName);
      if (c.value) s += leaf(d + 2, 'Value', c.value.value, attr('currency', c.value.currency) + attr('typeId', c.value.typeId));
      s += close(d + 1, 'Collateral');
    }
    s += close(d, 'Collaterals');
  }
  s += open(d, 'Subjects');
  for (const subject of g.subjects) {
    const p = subject.individual;
    s += open(d + 1, 'Subject', attr('roleId', subject.roleId));
    s += open(d + 2, 'Entity');
    s += open(d + 3, 'Individual');
    const i = d + 4;
    s += texts(i, 'FirstName', p.firstName);
    s += texts(i, 'Surname', p.surname);
    if (p.fathersName) s += texts(i, 'FathersName', p.fathersName);
    if (p.gender !== undefined) s += leaf(i, 'Gender', p.gender);
    s += empty(i, 'Residency', attr('id', p.residencyId));
    s += leaf(i, 'DateOfBirth', p.dateOfBirth);
    if (p.citizenshipId !== undefined) s += empty(i, 'Citizenship', attr('id', p.citizenshipId));
    s += open(i, 'Identifications');
    for (const id of p.identifications) {
      s += open(i + 1, 'Identification', attr('rank', id.rank) + attr('typeId', id.typeId));
      s += leaf(i + 2, 'Number', id.number);
      if (id.issueDate !== undefined) s += leaf(i + 2, 'IssueDate', id.issueDate);
      s += close(i + 1, 'Identification');
    }
    s += close(i, 'Identifications');
    if (p.addresses?.length) {
      s += open(i, 'Addresses');
      for (const a of p.addresses) {
        s += open(i + 1, 'Address', attr('katoId', a.katoId) + attr('locationId', a.locationId) + attr('typeId', a.typeId));
        if (a.streetName) s += texts(i + 2, 'StreetName', a.streetName);
        if (a.streetNumber !== undefined) s += leaf(i + 2, 'StreetNumber', a.streetNumber);
        if (a.additionalInformation !== undefined) s += leaf(i + 2, 'AdditionalInformation', a.additionalInformation);
        s += close(i + 1, 'Address');
      }
      s += close(i, 'Addresses');
    }
    if (p.communications?.length) {
      s += open(i, 'Communications');
      for (const c of p.communications) s += leaf(i + 1, 'Communication', c.value, attr('typeId', c.typeId));
      s += close(i, 'Communications');
    }
    s += close(d + 3, 'Individual');
    s += close(d + 2, 'Entity');
    s += close(d + 1, 'Subject');
  }
  s += close(d, 'Subjects');
  s += close(--d, 'General');
  s += open(d, 'Type');
  s += open(d + 1, 'Credit');
  s += money(d + 2, 'CreditLimit', record.credit.creditLimit);
  s += open(d + 2, 'RecordsList');
  for (const r of record.credit.records) {
    s += open(d + 3, 'Record', attr('accountingDate', r.accountingDate));
    if (r.residualAmount !== undefined) s += money(d + 4, 'ResidualAmount', r.residualAmount);
    if (r.overdueInstalmentCount !== undefined) s += leaf(d + 4, 'OverdueInstalmentCount', String(r.overdueInstalmentCount));
    if (r.overdueAmount !== undefined) s += money(d + 4, 'OverdueAmount', r.overdueAmount);
    if (r.prolongationEndDate !== undefined) s += leaf(d + 4, 'ProlongationEndDate', r.prolongationEndDate);
    if (r.lastPaymentDate !== undefined) s += leaf(d + 4, 'LastPaymentDate', r.lastPaymentDate);
    s += close(d + 3, 'Record');
  }
  s += close(d + 2, 'RecordsList');
  s += close(d + 1, 'Credit');
  s += close(d, 'Type');
  s += close(--d, 'Contract');
  return s;
}

/**
 * The GKB sandbox's own reading of the GKB document «Загрузка данных»-Ломбард (gkb-batch-upload.txt,
 * completed by DOMAIN.md §5–§6). It shares nothing with K2's XSD or mapping code on purpose: a
 * misreading shared by both would pass unseen. simulators/gkb/README.md says where each rule comes from.
 *
 * Two stages, as the document's «Процесс загрузки данных» describes them:
 *  1. the file's structure (structureProblems): the element tree of the document's examples (§3.1–§3.4,
 *     §6.1–§6.4), in their order; a file that breaks it is refused at upload (ScbValidationFault);
 *  2. business rules per record (readContract): required fields per file type and operation,
 *     dictionaries, formats of dates and amounts, the IIN check digit and its birth date and gender.
 */
import { attr, elements, fingerprint, kid, kids, nameText, textOf, type El } from './dom';

export type FileType = 1 | 2 | 3;

/** Dictionary values the sandbox knows: those of the document's examples and of DOMAIN.md §5. */
export interface GkbDictionaries {
  fundingType: string[];
  creditPurpose2: string[];
  creditObject: string[];
  contractPhase: string[];
  contractStatus: string[];
  subjectRole: string[];
  gender: string[];
  residency: string[];
  negativeStatus: string[];
  citizenship: string[];
  identificationType: string[];
  identificationRank: string[];
  addressType: string[];
  addressLocation: string[];
  communicationType: string[];
  collateralType: string[];
  collateralStatus: string[];
  valueType: string[];
  collateralState: string[];
  weightUnit: string[];
  lengthUnit: string[];
  language: string[];
  currency: string[];
}

export const DOCUMENT_DICTIONARIES: GkbDictionaries = Object.freeze({
  fundingType: ['2'],
  creditPurpose2: ['1'],
  creditObject: ['03'],
  // DOMAIN §5: 4 active, 5 closed, 6 closed early.
  contractPhase: ['4', '5', '6'],
  // DOMAIN §5: 1 not overdue, 10–16 overdue buckets; 4 is in the document's §6.1 example.
  contractStatus: ['1', '4', '10', '11', '12', '13', '15', '16'],
  subjectRole: ['1'],
  gender: ['M', 'F'],
  residency: ['1'],
  negativeStatus: ['11'],
  citizenship: ['110'],
  // 14 = IIN (DOMAIN §5), 7 = the second document of the §3.1 example.
  identificationType: ['14', '7'],
  identificationRank: ['1', '2'],
  addressType: ['1', '5', '6'],
  addressLocation: ['110'],
  communicationType: ['1', '2', '3'],
  collateralType: ['5'],
  collateralStatus: ['1'],
  valueType: ['1', '5'],
  collateralState: ['1'],
  weightUnit: ['2'],
  lengthUnit: ['1'],
  language: ['ru-RU', 'kk-KZ', 'en-GB'],
  currency: ['KZT', 'USD', 'EUR', 'RUB', 'CNY', 'GBP', 'CHF'],
});

// ---------------------------------------------------------------------------------------------
// Stage 1: structure

interface ElementSpec {
  /** Allowed child elements, in the order the document's examples write them. */
  children: string[];
  repeated?: string[];
  required?: string[];
}

const TEXTS: ElementSpec = { children: ['Text'], repeated: ['Text'] };
const ADDRESS: ElementSpec = { children: ['StreetName', 'StreetNumber', 'AdditionalInformation'] };

/** Every element with children in §3.1–§3.4 and §6.1–§6.4; any other known element is a leaf. */
export const STRUCTURE: Record<string, ElementSpec> = {
  Records: { children: ['Contract'], repeated: ['Contract'], required: ['Contract'] },
  Contract: { children: ['General', 'Type'], required: ['General', 'Type'] },
  General: {
    children: [
      'ContractCode',
      'AgreementNumber',
      'FundingType',
      'CreditPurpose2',
      'CreditObject',
      'ContractPhase',
      'ContractStatus',
      'StartDate',
      'EndDate',
      'RealPaymentDate',
      'AnnualEffectiveRate',
      'NominalRate',
      'ProlongationCount',
      'BranchLocation',
      'Address',
      'CriminalCase',
      'Collaterals',
      'Subjects',
    ],
  },
  Collaterals: { children: ['Collateral'], repeated: ['Collateral'] },
  Collateral: { children: ['PledgeName', 'Value', 'SerialNumber', 'Model', 'State', 'Weight', 'Colour', 'Measurement', 'ProductionDate'] },
  PledgeName: TEXTS,
  Measurement: { children: ['Length', 'Width'] },
  Subjects: { children: ['Subject'], repeated: ['Subject'] },
  Subject: { children: ['Entity'], required: ['Entity'] },
  Entity: { children: ['Individual'], required: ['Individual'] },
  Individual: {
    children: [
      'FirstName',
      'Surname',
      'FathersName',
      'Gender',
      'Residency',
      'DateOfBirth',
      'NegativeStatus',
      'Citizenship',
      'Identifications',
      'Addresses',
      'Communications',
    ],
  },
  FirstName: TEXTS,
  Surname: TEXTS,
  FathersName: TEXTS,
  StreetName: TEXTS,
  Identifications: { children: ['Identification'], repeated: ['Identification'] },
  Identification: { children: ['Number', 'IssueDate'] },
  Addresses: { children: ['Address'], repeated: ['Address'] },
  Address: ADDRESS,
  Communications: { children: ['Communication'], repeated: ['Communication'] },
  Type: { children: ['Credit'], required: ['Credit'] },
  Credit: { children: ['CreditLimit', 'RecordsList'] },
  RecordsList: { children: ['Record'], repeated: ['Record'] },
  Record: { children: ['ResidualAmount', 'OverdueInstalmentCount', 'OverdueAmount', 'ProlongationEndDate', 'LastPaymentDate'] },
};

const MAX_STRUCTURE_PROBLEMS = 100;

/** What breaks the structure of the document's examples; empty when the file may go on to the business rules. */
export function structureProblems(root: El): string[] {
  const problems: string[] = [];
  if (root.nodeName !== 'Records') return [`Корневой элемент <${root.nodeName}>, ожидается <Records>.`];
  walk(root, 'Records', problems);
  elements(root).forEach((c, i) => {
    if (c.nodeName === 'Contract' && attr(c, 'operation') === undefined)
      problems.push(`Records/Contract[${i + 1}]: не указан атрибут operation (вид операции).`);
  });
  return problems.slice(0, MAX_STRUCTURE_PROBLEMS);
}

function walk(el: El, where: string, problems: string[]): void {
  if (problems.length >= MAX_STRUCTURE_PROBLEMS) return;
  const spec = STRUCTURE[el.nodeName];
  const children = elements(el);
  if (!spec) {
    if (children.length > 0) problems.push(`${where}: элемент <${el.nodeName}> не может содержать вложенных элементов.`);
    return;
  }
  let last = -1;
  const seen = new Map<string, number>();
  children.forEach((c) => {
    const n = (seen.get(c.nodeName) ?? 0) + 1;
    seen.set(c.nodeName, n);
    const at = `${where}/${c.nodeName}${spec.repeated?.includes(c.nodeName) ? `[${n}]` : ''}`;
    const index = spec.children.indexOf(c.nodeName);
    if (index < 0) {
      problems.push(`${where}: элемент <${c.nodeName}> не допускается в <${el.nodeName}>.`);
      return;
    }
    if (index < last) problems.push(`${at}: элемент стоит не на своем месте (порядок: ${spec.children.join(', ')}).`);
    else if (index === last && !spec.repeated?.includes(c.nodeName)) problems.push(`${at}: элемент <${c.nodeName}> повторяется.`);
    last = Math.max(last, index);
    walk(c, at, problems);
  });
  for (const r of spec.required ?? []) {
    if (!seen.has(r)) problems.push(`${where}: нет обязательного элемента <${r}>.`);
  }
}

// ---------------------------------------------------------------------------------------------
// Formats

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** YYYY-MM-DD and a real calendar date (the document's examples write every date so). */
export function isIsoDate(s: string | undefined): s is string {
  const m = s === undefined ? null : ISO_DATE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** Non-negative, at most 2 decimals, a point as separator (15000.00, 0). */
export function isAmount(s: string | undefined): boolean {
  return s !== undefined && /^\d+(\.\d{1,2})?$/.test(s);
}

// ---------------------------------------------------------------------------------------------
// IIN (DOMAIN.md §6; the document's «Алгоритм расчета контрольного разряда для ИИН»)

const FIRST_WEIGHTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND_WEIGHTS = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/** a12 for the first 11 digits: Σ a_i·b_i mod 11, the second weights when that is 10; undefined when both give 10. */
export function iinCheckDigit(first11: string): number | undefined {
  const pass = (w: number[]) => w.reduce((sum, b, i) => sum + Number(first11[i]) * b, 0) % 11;
  const first = pass(FIRST_WEIGHTS);
  if (first !== 10) return first;
  const second = pass(SECOND_WEIGHTS);
  return second === 10 ? undefined : second;
}

/** Birth date and gender an individual's IIN says: digits 1–6 YYMMDD, digit 7 century and gender. */
export interface IinFacts {
  birthDate: string;
  gender: 'M' | 'F';
}

const CENTURIES: Record<string, number> = { '1': 1800, '2': 1800, '3': 1900, '4': 1900, '5': 2000, '6': 2000 };

const IIN_PREFIX = 'ИИН/БИН субъекта не прошел проверку';

/** Why an individual's IIN is wrong (no digits of it in the text), or its facts. */
export function readIin(s: string): { problem: string } | { facts: IinFacts } {
  if (!/^\d{12}$/.test(s)) return { problem: `${IIN_PREFIX}: номер должен состоять из 12 цифр.` };
  const expected = iinCheckDigit(s.slice(0, 11));
  if (expected === undefined || expected !== Number(s[11])) return { problem: `${IIN_PREFIX}: неверный контрольный разряд.` };
  if (['4', '5', '6'].includes(s[4])) return { problem: `${IIN_PREFIX}: это БИН (5-й разряд — тип юридического лица), а субъект — физическое лицо.` };
  const century = CENTURIES[s[6]];
  if (century === undefined) return { problem: `${IIN_PREFIX}: 7-й разряд (век рождения и пол) должен быть от 1 до 6.` };
  const birthDate = `${century + Number(s.slice(0, 2))}-${s.slice(2, 4)}-${s.slice(4, 6)}`;
  if (!isIsoDate(birthDate)) return { problem: `${IIN_PREFIX}: разряды 1–6 не являются датой рождения.` };
  return { facts: { birthDate, gender: Number(s[6]) % 2 === 1 ? 'M' : 'F' } };
}

// ---------------------------------------------------------------------------------------------
// Stage 2: business rules of one record

/**
 * The §3.1 note «Все вышеуказанные блоки обязательны для заполнения», for an insert (operation 1) of a
 * type-1 (or type-2) file. An update (operation 2) keeps the previous values of what it leaves out (§4).
 */
export const MANDATORY_BLOCK_TEXTS = {
  Collaterals: 'Не заполнен обязательный блок: Collaterals (информация по обеспечениям).',
  Addresses: 'Не заполнен обязательный блок: Addresses (информация по адресам субъекта).',
  Communications: 'Не заполнен обязательный блок: Communications (информация по контактным данным субъекта).',
} as const;

export interface SubjectReading {
  iinBin?: string;
  name: string;
}

export interface ContractReading {
  operation: string;
  contractCode?: string;
  startDate?: string;
  contractPhase?: number;
  subjects: SubjectReading[];
  /** Rules the record breaks by itself, in GKB's words; empty when it may be loaded. */
  problems: string[];
  /** It carries every block an insert needs: a contract created from it is complete. */
  complete: boolean;
  /** The record's content (operation included), to recognise a re-send of what GKB already holds. */
  fingerprint: string;
}

/** Which fields a record must carry, by file type and operation. */
interface Needs {
  /** Operation 1 of file type 1/2: every block of §3.1. */
  allBlocks: boolean;
  /** A record that creates a contract by design (operation 1, or any record of a one-day file, §6): the §6.1 set. */
  contractData: boolean;
  /** Gender: in every §3 example, not in §6. */
  gender: boolean;
}

function needsOf(fileType: FileType, operation: string): Needs {
  const insert = operation === '1';
  return { allBlocks: insert && fileType !== 3, contractData: insert || fileType === 3, gender: insert && fileType !== 3 };
}

const missing = (label: string, element: string) => `Не заполнено обязательное поле «${label}» (${element}).`;

/** Reads one <Contract> and lists the rules it breaks. `dict`: the dictionaries the sandbox knows. */
export function readContract(c: El, fileType: FileType, dict: GkbDictionaries = DOCUMENT_DICTIONARIES): ContractReading {
  const problems: string[] = [];
  const operation = attr(c, 'operation') ?? '';
  if (operation !== '1' && operation !== '2') problems.push('Неверный вид операции (operation): допустимы 1 «Вставить» и 2 «Обновить».');
  const needs = needsOf(fileType, operation);
  const general = kid(c, 'General');

  const contractCode = textOf(kid(general, 'ContractCode'));
  if (!contractCode) problems.push(missing('Код контракта', 'ContractCode'));
  if (needs.contractData && !textOf(kid(general, 'AgreementNumber'))) problems.push(missing('Номер договора', 'AgreementNumber'));

  const ids = new IdChecks(dict, problems);
  ids.check(kid(general, 'FundingType'), 'id', 'fundingType', 'Вид финансирования', needs.contractData);
  ids.check(kid(general, 'CreditPurpose2'), 'id', 'creditPurpose2', 'Цель кредита 2', false);
  ids.check(kid(general, 'CreditObject'), 'id', 'creditObject', 'Объект кредитования', false);
  const phase = ids.check(kid(general, 'ContractPhase'), 'id', 'contractPhase', 'Фаза контракта', true);
  ids.check(kid(general, 'ContractStatus'), 'id', 'contractStatus', 'Статус контракта', true);

  const startDate = textOf(kid(general, 'StartDate'));
  if (!startDate) problems.push(missing('Дата начала действия договора', 'StartDate'));
  else if (!isIsoDate(startDate)) problems.push(`Неверная дата в поле «Дата начала действия договора» (StartDate): «${startDate}», ожидается ГГГГ-ММ-ДД.`);
  const validStart = isIsoDate(startDate) ? startDate : undefined;
  const endDate = contractDate(general, 'EndDate', 'Дата окончания действия договора', problems);
  if (validStart && endDate && endDate < validStart)
    problems.push(`Дата окончания действия договора (EndDate) ${endDate} раньше даты начала (StartDate) ${validStart}.`);
  contractDate(general, 'RealPaymentDate', 'Фактическая дата погашения', problems);
  for (const name of ['AnnualEffectiveRate', 'NominalRate']) {
    const v = textOf(kid(general, name));
    if (v !== undefined && !/^\d+(\.\d+)?$/.test(v)) problems.push(`Неверное значение ставки (${name}): «${v}».`);
  }
  const prolongations = textOf(kid(general, 'ProlongationCount'));
  if (prolongations !== undefined && !/^\d+$/.test(prolongations)) problems.push(`Неверное количество пролонгаций (ProlongationCount): «${prolongations}».`);
  kato(kid(general, 'BranchLocation'), 'BranchLocation', problems);
  const contractAddress = kid(general, 'Address');
  if (contractAddress) address(contractAddress, ids, problems);

  const collaterals = kids(kid(general, 'Collaterals'), 'Collateral');
  for (const col of collaterals) collateral(col, ids, problems);
  const missingBlocks = new Set<keyof typeof MANDATORY_BLOCK_TEXTS>();
  if (collaterals.length === 0) missingBlocks.add('Collaterals');

  const subjects: SubjectReading[] = [];
  const subjectEls = kids(kid(general, 'Subjects'), 'Subject');
  if (subjectEls.length === 0) problems.push('Не указан ни один субъект договора (Subjects).');
  for (const s of subjectEls) subjects.push(subject(s, needs, ids, problems, missingBlocks));
  if (needs.allBlocks) for (const block of missingBlocks) problems.push(MANDATORY_BLOCK_TEXTS[block]);

  credit(kid(c, 'Type', 'Credit'), validStart, needs, dict, problems);

  return {
    operation,
    contractCode,
    startDate: validStart ?? startDate,
    contractPhase: phase !== undefined ? Number(phase) : undefined,
    subjects,
    problems,
    complete: missingBlocks.size === 0,
    fingerprint: fingerprint(c),
  };
}

/** Dictionary ids: present when required, and a value the sandbox knows. */
class IdChecks {
  constructor(
    private readonly dict: GkbDictionaries,
    private readonly problems: string[],
  ) {}

  /** Returns the value when it is present (known or not). `personal`: the value is the subject's, so it is not quoted. */
  check(el: El | undefined, attribute: string, key: keyof GkbDictionaries, label: string, required: boolean, personal = false): string | undefined {
    if (!el) {
      if (required) this.problems.push(missing(label, ELEMENT_OF[key] ?? key));
      return undefined;
    }
    const value = attribute === '' ? textOf(el) : attr(el, attribute);
    const where = attribute === '' ? el.nodeName : `${el.nodeName}@${attribute}`;
    if (value === undefined) {
      this.problems.push(`Не указано значение «${label}» (${where}).`);
      return undefined;
    }
    if (!this.dict[key].includes(value)) {
      this.problems.push(
        personal ? `Значение «${label}» (${where}) отсутствует в справочнике.` : `Значение ${value} «${label}» (${where}) отсутствует в справочнике.`,
      );
    }
    return value;
  }
}

/** The element of a dictionary that a record may have to carry (named when it is missing). */
const ELEMENT_OF: Partial<Record<keyof GkbDictionaries, string>> = {
  fundingType: 'FundingType',
  contractPhase: 'ContractPhase',
  contractStatus: 'ContractStatus',
  gender: 'Gender',
  residency: 'Residency',
};

function contractDate(parent: El | undefined, name: string, label: string, problems: string[]): string | undefined {
  const v = textOf(kid(parent, name));
  if (v === undefined) return undefined;
  if (!isIsoDate(v)) {
    problems.push(`Неверная дата в поле «${label}» (${name}): «${v}», ожидается ГГГГ-ММ-ДД.`);
    return undefined;
  }
  return v;
}

function kato(el: El | undefined, where: string, problems: string[]): void {
  if (!el) return;
  const v = attr(el, 'katoId');
  if (v === undefined || !/^\d{9}$/.test(v)) problems.push(`Код КАТО (${where}@katoId) должен состоять из 9 цифр.`);
}

function texts(el: El | undefined, where: string, ids: IdChecks): void {
  for (const t of kids(el, 'Text')) ids.check(t, 'language', 'language', `Язык текста ${where}`, true);
}

function address(a: El, ids: IdChecks, problems: string[]): void {
  kato(a, 'Address', problems);
  ids.check(a, 'typeId', 'addressType', 'Тип адреса', true);
  if (a.getAttribute('locationId') !== null) ids.check(a, 'locationId', 'addressLocation', 'Местонахождение адреса', true);
  texts(kid(a, 'StreetName'), 'StreetName', ids);
}

function money(el: El | undefined, label: string, ids: IdChecks, problems: string[]): void {
  if (!el) return;
  if (!isAmount(textOf(el))) problems.push(`Неверная сумма в поле «${label}» (${el.nodeName}): неотрицательное число, не более 2 знаков после точки.`);
  ids.check(el, 'currency', 'currency', `Валюта суммы ${el.nodeName}`, true);
}

function collateral(col: El, ids: IdChecks, problems: string[]): void {
  ids.check(col, 'statusId', 'collateralStatus', 'Статус предмета залога', true);
  ids.check(col, 'typeId', 'collateralType', 'Вид залога', true);
  texts(kid(col, 'PledgeName'), 'PledgeName', ids);
  const value = kid(col, 'Value');
  money(value, 'Стоимость обеспечения', ids, problems);
  if (value) ids.check(value, 'typeId', 'valueType', 'Вид стоимости обеспечения', true);
  ids.check(kid(col, 'State'), 'id', 'collateralState', 'Состояние', false);
  const weight = kid(col, 'Weight');
  if (weight) ids.check(weight, 'unitId', 'weightUnit', 'Единица массы', true);
  for (const m of [kid(col, 'Measurement', 'Length'), kid(col, 'Measurement', 'Width')]) if (m) ids.check(m, 'unitId', 'lengthUnit', 'Единица длины', true);
  contractDate(col, 'ProductionDate', 'Дата производства', problems);
}

function subject(s: El, needs: Needs, ids: IdChecks, problems: string[], missingBlocks: Set<keyof typeof MANDATORY_BLOCK_TEXTS>): SubjectReading {
  ids.check(s, 'roleId', 'subjectRole', 'Роль субъекта', true);
  const person = kid(s, 'Entity', 'Individual');
  const surname = nameText(kid(person, 'Surname'));
  const firstName = nameText(kid(person, 'FirstName'));
  const fathersName = nameText(kid(person, 'FathersName'));
  if (!surname) problems.push('Не заполнено обязательное поле «Фамилия» субъекта (Surname).');
  if (!firstName) problems.push('Не заполнено обязательное поле «Имя» субъекта (FirstName).');
  for (const n of ['FirstName', 'Surname', 'FathersName']) texts(kid(person, n), n, ids);

  const gender = ids.check(kid(person, 'Gender'), '', 'gender', 'Пол', needs.gender, true);
  ids.check(kid(person, 'Residency'), 'id', 'residency', 'Признак резидентства', needs.contractData, true);
  ids.check(kid(person, 'NegativeStatus'), 'id', 'negativeStatus', 'Статус субъекта', false, true);
  ids.check(kid(person, 'Citizenship'), 'id', 'citizenship', 'Гражданство', false, true);
  const birth = textOf(kid(person, 'DateOfBirth'));
  if (birth === undefined && needs.contractData) problems.push('Не заполнено обязательное поле «Дата рождения» субъекта (DateOfBirth).');
  if (birth !== undefined && !isIsoDate(birth)) problems.push('Неверная дата в поле «Дата рождения» субъекта (DateOfBirth), ожидается ГГГГ-ММ-ДД.');

  const identifications = kids(kid(person, 'Identifications'), 'Identification');
  for (const i of identifications) {
    ids.check(i, 'typeId', 'identificationType', 'Вид документа', true);
    ids.check(i, 'rank', 'identificationRank', 'Категория документа', true);
    if (!textOf(kid(i, 'Number'))) problems.push('Не заполнен номер документа субъекта (Identification/Number).');
    const issued = textOf(kid(i, 'IssueDate'));
    if (issued !== undefined && !isIsoDate(issued)) problems.push('Неверная дата выдачи документа субъекта (IssueDate), ожидается ГГГГ-ММ-ДД.');
  }
  const iinEl = identifications.find((i) => attr(i, 'typeId') === '14');
  const iinBin = textOf(kid(iinEl, 'Number'));
  if (!iinBin) problems.push('Не указан ИИН субъекта (Identification typeId="14").');
  else {
    if (attr(iinEl, 'rank') !== '1') problems.push('ИИН субъекта (Identification typeId="14") должен иметь категорию документа rank="1".');
    const iin = readIin(iinBin);
    if ('problem' in iin) problems.push(iin.problem);
    else {
      if (isIsoDate(birth) && birth !== iin.facts.birthDate)
        problems.push('Дата рождения субъекта (DateOfBirth) не совпадает с датой рождения в ИИН (разряды 1–7).');
      if (gender && gender !== iin.facts.gender)
        problems.push('Пол субъекта (Gender) не соответствует ИИН (7-й разряд: нечетный — мужской, четный — женский).');
    }
  }

  const addresses = kids(kid(person, 'Addresses'), 'Address');
  for (const a of addresses) address(a, ids, problems);
  if (addresses.length === 0) missingBlocks.add('Addresses');
  const communications = kids(kid(person, 'Communications'), 'Communication');
  for (const m of communications) {
    ids.check(m, 'typeId', 'communicationType', 'Вид связи', true, true);
    if (!textOf(m)) problems.push('Не заполнены контактные данные субъекта (Communication).');
  }
  if (communications.length === 0) missingBlocks.add('Communications');
  return { iinBin, name: [surname, firstName, fathersName].filter(Boolean).join(' ') };
}

function credit(cr: El | undefined, startDate: string | undefined, needs: Needs, dict: GkbDictionaries, problems: string[]): void {
  const ids = new IdChecks(dict, problems);
  const limit = kid(cr, 'CreditLimit');
  if (!limit && needs.contractData) problems.push('Не заполнено обязательное поле «Лимит кредита» (CreditLimit).');
  money(limit, 'Лимит кредита', ids, problems);

  const records = kids(kid(cr, 'RecordsList'), 'Record');
  if (records.length === 0) problems.push('Не передана ни одна учетная дата (RecordsList/Record).');
  const dates = new Set<string>();
  for (const r of records) {
    const accountingDate = attr(r, 'accountingDate');
    if (!isIsoDate(accountingDate)) {
      problems.push('Не заполнено или неверно обязательное поле «Учетная дата» (accountingDate).');
    } else {
      if (startDate && accountingDate < startDate) {
        problems.push(`Учетная дата (accountingDate) ${accountingDate} раньше даты начала действия договора (StartDate) ${startDate}.`);
      }
      if (dates.has(accountingDate)) problems.push(`Учетная дата (accountingDate) ${accountingDate} передана в записи договора более одного раза.`);
      dates.add(accountingDate);
    }
    money(kid(r, 'ResidualAmount'), 'Остаток задолженности', ids, problems);
    money(kid(r, 'OverdueAmount'), 'Сумма просроченной задолженности', ids, problems);
    const count = textOf(kid(r, 'OverdueInstalmentCount'));
    if (count !== undefined && !/^\d+$/.test(count)) problems.push(`Неверное количество просроченных взносов (OverdueInstalmentCount): «${count}».`);
    contractDate(r, 'ProlongationEndDate', 'Дата окончания пролонгации', problems);
    contractDate(r, 'LastPaymentDate', 'Дата последнего платежа', problems);
  }
}

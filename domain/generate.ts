/**
 * Deterministic generators of valid test data for the demo, simulators, tests and benchmarks.
 * Everything derives from a seed through mulberry32, never Math.random, so a seed names a data set.
 * Kept cheap: 50,000 loans take about 0.2 s of CPU in plain Node (a little more under jest).
 */
import { formatIsoDate, daysInMonth } from './dates';
import { kzIbanCheckDigits } from './iban';
import { computeCheckDigit } from './iin';
import type { EkoLoanItem } from './loan';

// Captured once: under jest every access to a global like `Math` goes through the sandbox's
// global object and costs ~100x a local read, which turned 50,000 loans into seconds.
const { imul, floor } = Math;

/** A source of uniform numbers in [0, 1). */
export type Rand = () => number;

/** mulberry32: tiny, fast, good enough for test data (not for anything secret). */
export function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max], both inclusive. */
export function randomInt(rand: Rand, min: number, max: number): number {
  return min + floor(rand() * (max - min + 1));
}

export function pick<T>(rand: Rand, items: readonly T[]): T {
  return items[floor(rand() * items.length)];
}

const DIGITS = '0123456789';

function digits(rand: Rand, count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += DIGITS[floor(rand() * 10)];
  return s;
}

function pad(n: number, width: number): string {
  return `${n}`.padStart(width, '0');
}

/**
 * Appends the check digit to 11 generated digits, drawing new serial digits while the check digit
 * is undefined (about 1 number in 120 has none).
 */
function withCheckDigit(rand: Rand, prefix: string, serialDigits: number): string {
  for (;;) {
    const first11 = prefix + digits(rand, serialDigits);
    const check = computeCheckDigit(first11);
    if (check !== undefined) return first11 + check;
  }
}

export interface IinOptions {
  /** YYYY-MM-DD, years 1800..2099. Default: a random date in birthYears. */
  birthDate?: string;
  gender?: 'M' | 'F';
  /** Inclusive range of birth years for a random birth date. Default 1950..2005. */
  birthYears?: readonly [number, number];
}

/** A valid IIN of an individual: real birth date, century/gender digit, valid check digit. */
export function generateIin(rand: Rand, opts: IinOptions = {}): string {
  let year: number;
  let month: number;
  let day: number;
  if (opts.birthDate !== undefined) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(opts.birthDate);
    if (!m) throw new RangeError(`birthDate must be YYYY-MM-DD, got ${opts.birthDate}`);
    [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (year < 1800 || year > 2099) throw new RangeError(`an IIN can encode birth years 1800..2099, got ${year}`);
  } else {
    const [from, to] = opts.birthYears ?? [1950, 2005];
    year = randomInt(rand, from, to);
    month = randomInt(rand, 1, 12);
    day = randomInt(rand, 1, daysInMonth(year, month));
  }
  const gender = opts.gender ?? (rand() < 0.5 ? 'M' : 'F');
  const centuryBase = year < 1900 ? 1 : year < 2000 ? 3 : 5;
  const centuryGender = centuryBase + (gender === 'M' ? 0 : 1);
  const prefix = pad(year % 100, 2) + pad(month, 2) + pad(day, 2) + centuryGender;
  return withCheckDigit(rand, prefix, 4);
}

export interface BinOptions {
  /** 4 resident, 5 non-resident, 6 individual entrepreneur. Default 4. */
  entityTypeDigit?: 4 | 5 | 6;
  /** 0 head office, 1 branch, 2 representative office, 3 peasant farm. Default 0. */
  divisionDigit?: 0 | 1 | 2 | 3;
}

/** A valid BIN: registration YYMM in 1995..2024, entity type and division digits, valid check digit. */
export function generateBin(rand: Rand, opts: BinOptions = {}): string {
  const yy = randomInt(rand, 1995, 2024) % 100;
  const mm = randomInt(rand, 1, 12);
  const prefix = pad(yy, 2) + pad(mm, 2) + (opts.entityTypeDigit ?? 4) + (opts.divisionDigit ?? 0);
  return withCheckDigit(rand, prefix, 5);
}

/** A valid Kazakhstan IBAN at the given bank (default 722). Account parts look like "S000123456789" or all digits. */
export function generateKzIban(rand: Rand, bankCode = '722'): string {
  if (!/^\d{3}$/.test(bankCode)) throw new RangeError(`bank code must be 3 digits, got ${bankCode}`);
  const lead = pick(rand, ['C', 'S', 'K', '0', '1', '2']);
  const bban = bankCode + lead + digits(rand, 12);
  return `KZ${kzIbanCheckDigits(bban)}${bban}`;
}

// Surnames as [male, female]; Kazakh and Russian forms both take -ов/-ова, -ев/-ева.
const SURNAMES: readonly (readonly [string, string])[] = [
  ['Ахметов', 'Ахметова'],
  ['Иванов', 'Иванова'],
  ['Нургалиев', 'Нургалиева'],
  ['Касымов', 'Касымова'],
  ['Жумабаев', 'Жумабаева'],
  ['Смагулов', 'Смагулова'],
  ['Петров', 'Петрова'],
  ['Сериков', 'Серикова'],
  ['Абдрахманов', 'Абдрахманова'],
  ['Кузнецов', 'Кузнецова'],
  ['Омаров', 'Омарова'],
  ['Ким', 'Ким'],
  ['Есенов', 'Есенова'],
  ['Байжанов', 'Байжанова'],
  ['Соколов', 'Соколова'],
  ['Тулеуов', 'Тулеуова'],
];
const MALE_NAMES = ['Ерлан', 'Нурлан', 'Асхат', 'Алексей', 'Бауыржан', 'Дмитрий', 'Тимур', 'Данияр', 'Арман', 'Сергей', 'Ержан', 'Максим'];
const FEMALE_NAMES = ['Айгуль', 'Анна', 'Динара', 'Гульнара', 'Елена', 'Асель', 'Мария', 'Жанар', 'Сауле', 'Ольга', 'Алия', 'Наталья'];
// Fathers' names ending in a consonant take -ович/-овна regularly.
const PATRONYMIC_ROOTS = ['Серик', 'Ерлан', 'Иван', 'Болат', 'Марат', 'Асхат', 'Нурлан', 'Петр', 'Канат', 'Александр', 'Талгат', 'Руслан'];

/** "Фамилия Имя Отчество" agreeing with the gender. */
export function generateFullname(rand: Rand, gender: 'M' | 'F'): string {
  const [male, female] = pick(rand, SURNAMES);
  const root = pick(rand, PATRONYMIC_ROOTS);
  return gender === 'M' ? `${male} ${pick(rand, MALE_NAMES)} ${root}ович` : `${female} ${pick(rand, FEMALE_NAMES)} ${root}овна`;
}

const COMPANY_NAMES = ['ТОО «Алтын Дала»', 'ТОО «Степь Агро»', 'АО «Каспий Транс»', 'ТОО «Бастау Строй»', 'ТОО «Нур Трейд»'];

export interface LoanOptions {
  /** Make the borrower a legal entity (BIN, company name) instead of an individual. */
  legalEntity?: boolean;
  /** The contract number's 10 digits; random when absent. generateLoans passes a sequence to keep them unique. */
  contractSerial?: number;
}

/** A valid EKO loan item in wire form (debt is a JSON number). Overrides are applied last, as given. */
export function generateLoan(rand: Rand, overrides: Partial<EkoLoanItem> = {}, opts: LoanOptions = {}): EkoLoanItem {
  let iinbin: string;
  let fullname: string;
  if (opts.legalEntity) {
    iinbin = generateBin(rand);
    fullname = pick(rand, COMPANY_NAMES);
  } else {
    const gender = rand() < 0.5 ? 'M' : 'F';
    iinbin = generateIin(rand, { gender });
    fullname = generateFullname(rand, gender);
  }
  const contractNumber = 'KD' + (opts.contractSerial === undefined ? digits(rand, 10) : pad(opts.contractSerial % 1e10, 10));
  // Whole tenge most of the time, tiyn sometimes; minor/100 is the double nearest to that decimal,
  // so String(debt) is exactly its two-decimal text.
  const debtMinor = randomInt(rand, 10_000, 5_000_000) * 100 + (rand() < 0.3 ? randomInt(rand, 1, 99) : 0);
  const dbzYear = randomInt(rand, 2015, 2024);
  const dbzMonth = randomInt(rand, 1, 12);
  const dbzDay = randomInt(rand, 1, daysInMonth(dbzYear, dbzMonth));

  return {
    iban: generateKzIban(rand),
    cur: 'KZT',
    debt: debtMinor / 100,
    fullname,
    contract_number: contractNumber,
    dbz_contract_number: contractNumber,
    iinbin,
    overdue_days: randomInt(rand, 1, 720),
    system: 'way4',
    dbz_date: formatIsoDate(dbzYear, dbzMonth, dbzDay),
    ...overrides,
  };
}

/**
 * `count` valid loans with distinct contract numbers: they run in sequence from a seed-chosen start,
 * so one batch never repeats a contract and different seeds rarely share one. About 1 in 10 borrowers
 * is a legal entity.
 */
export function generateLoans(seed: number, count: number): EkoLoanItem[] {
  const rand = mulberry32(seed);
  const start = randomInt(rand, 0, 8_999_999_999);
  const loans: EkoLoanItem[] = new Array(count);
  for (let i = 0; i < count; i++) {
    loans[i] = generateLoan(rand, {}, { contractSerial: start + i, legalEntity: rand() < 0.1 });
  }
  return loans;
}

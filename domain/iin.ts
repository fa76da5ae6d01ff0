/**
 * IIN (individual identification number) and BIN (business identification number) of Kazakhstan,
 * DOMAIN.md §6. Both are 12 digits with the same check digit; the first 11 digits mean different
 * things.
 *
 *   IIN: YY MM DD | C | NNNN | K    C = century and gender (1/2: 1800s, 3/4: 1900s, 5/6: 2000s; odd = male)
 *   BIN: YY MM | T | A | NNNNN | K  T = entity type (4 resident, 5 non-resident, 6 individual entrepreneur
 *                                   acting jointly), A = division (0 head office, 1 branch,
 *                                   2 representative office, 3 peasant farm)
 *
 * How we tell them apart: digit 5 alone. In an IIN it is the tens digit of the birth day, so 0..3;
 * in a BIN it is the entity type, 4..6. The ranges do not overlap, so no number can be read both
 * ways, and digit 7 (which in a BIN is just a serial digit) is not needed for the decision. Digit 5
 * of 7..9 is neither and the number is invalid. After that, an IIN must have a real YYMMDD birth
 * date and a century/gender digit 1..6; a BIN must have a registration month 01..12.
 */
import { formatIsoDate, isRealDate } from './dates';

export type EntityType = 'resident' | 'non-resident' | 'individual-entrepreneur';
export type Division = 'head-office' | 'branch' | 'representative-office' | 'peasant-farm' | 'other';

export type IinBinClass =
  | { kind: 'individual'; birthDate: string; gender: 'M' | 'F' }
  | {
      kind: 'legal-entity';
      entityType: EntityType;
      division: Division;
      /** Digits 1–4 as they are (YYMM): the century of a registration year cannot be told from the number. */
      registrationYyMm: string;
    };

const FIRST_PASS_WEIGHTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND_PASS_WEIGHTS = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/** The seed's examples use this; it even has a "valid" check digit (all zeros), so it is named explicitly. */
export const SEED_PLACEHOLDER_IINBIN = '000000000000';

const ENTITY_TYPES: Record<string, EntityType> = { '4': 'resident', '5': 'non-resident', '6': 'individual-entrepreneur' };
const DIVISIONS: Record<string, Division> = { '0': 'head-office', '1': 'branch', '2': 'representative-office', '3': 'peasant-farm' };
const CENTURY_START: Record<string, number> = { '1': 1800, '2': 1800, '3': 1900, '4': 1900, '5': 2000, '6': 2000 };

function weightedSumMod11(digits: string, weights: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum += (digits.charCodeAt(i) - 48) * weights[i];
  return sum % 11;
}

/**
 * The 12th digit for the first 11, or undefined when both passes give 10 (such numbers are never
 * issued). Throws on input that is not 11 digits, which is a programming error, not bad data.
 */
export function computeCheckDigit(first11: string): number | undefined {
  if (!/^\d{11}$/.test(first11)) throw new RangeError(`computeCheckDigit needs 11 digits, got ${JSON.stringify(first11)}`);
  const first = weightedSumMod11(first11, FIRST_PASS_WEIGHTS);
  if (first !== 10) return first;
  const second = weightedSumMod11(first11, SECOND_PASS_WEIGHTS);
  return second === 10 ? undefined : second;
}

/** Why `s` is not a valid IIN/BIN, in words an operator can act on; undefined when it is valid. */
export function iinBinProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return 'must be a string of 12 digits';
  if (!/^\d{12}$/.test(s)) return 'must be 12 digits';
  if (s === SEED_PLACEHOLDER_IINBIN) return 'placeholder 000000000000 from the specification examples, not a real IIN/BIN';

  const expected = computeCheckDigit(s.slice(0, 11));
  if (expected === undefined) return 'check digit undefined (second pass gives 10)';
  const actual = s.charCodeAt(11) - 48;
  if (actual !== expected) return `check digit mismatch (expected ${expected}, got ${actual})`;

  return structureProblem(s);
}

function structureProblem(s: string): string | undefined {
  const digit5 = s[4];
  if (digit5 >= '0' && digit5 <= '3') {
    if (!(s[6] in CENTURY_START)) return `century/gender digit 7 must be 1..6 for an IIN, got ${s[6]}`;
    if (birthDateOf(s) === undefined) return 'birth date (digits 1–6, YYMMDD) is not a real date';
    return undefined;
  }
  if (digit5 in ENTITY_TYPES) {
    const month = +s.slice(2, 4);
    if (month < 1 || month > 12) return `registration month not 01..12 for a BIN (YYMM ${s.slice(0, 4)})`;
    return undefined;
  }
  return `digit 5 is ${digit5}: neither an IIN (birth day tens 0..3) nor a BIN (entity type 4..6)`;
}

function birthDateOf(s: string): string | undefined {
  // Unary plus: the caller has checked these are digits.
  const year = CENTURY_START[s[6]] + +s.slice(0, 2);
  const month = +s.slice(2, 4);
  const day = +s.slice(4, 6);
  return isRealDate(year, month, day) ? formatIsoDate(year, month, day) : undefined;
}

export function isValidIinBin(s: unknown): s is string {
  return iinBinProblem(s) === undefined;
}

/** What a valid number says about its holder; undefined for an invalid number (nothing is guessed from it). */
export function classifyIinBin(s: unknown): IinBinClass | undefined {
  if (!isValidIinBin(s)) return undefined;
  const digit5 = s[4];
  if (digit5 in ENTITY_TYPES) {
    return {
      kind: 'legal-entity',
      entityType: ENTITY_TYPES[digit5],
      division: DIVISIONS[s[5]] ?? 'other',
      registrationYyMm: s.slice(0, 4),
    };
  }
  // Valid and not a BIN, so structureProblem guaranteed the birth date exists.
  const birthDate = birthDateOf(s) as string;
  const gender = (s.charCodeAt(6) - 48) % 2 === 1 ? 'M' : 'F';
  return { kind: 'individual', birthDate, gender };
}

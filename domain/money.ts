/**
 * Money without floating-point arithmetic (DOMAIN.md §6: non-negative, at most 2 decimals).
 *
 * A money value inside K2 is a normalized decimal string with exactly two decimals, "2000000.00".
 * Arithmetic and comparison go through minor units (bigint tiyn/cents).
 *
 * On the wire an amount is a JSON number (2000000, 1500.5) or a decimal string ("1500.50").
 *  - A number is read through its shortest round-trip text, String(n), which for any decimal of
 *    at most 15 significant digits is exactly the text the sender wrote. Beyond 15 significant
 *    digits JSON.parse may already have changed the value (12345678901234567 arrives as
 *    12345678901234568), so such numbers are rejected and the sender is asked for a string.
 *  - A string must be plain decimal text: digits, an optional point and 1–2 decimals; no sign, no
 *    exponent, no spaces, no thousands separators, no leading zeros.
 *  - Largest amount: 15 integer digits (999 999 999 999 999.99), far above any single loan and
 *    well inside what bigint minor units and the database columns carry.
 */

export const MAX_INTEGER_DIGITS = 15;
/** Doubles carry any decimal of up to 15 significant digits exactly (IEEE 754 binary64, DBL_DIG). */
export const MAX_SIGNIFICANT_DIGITS_IN_NUMBER = 15;

// Globals read once: under jest every read of a global such as `Number` goes through the test
// sandbox at ~100x the cost of a local, and these functions run 50,000 times per big request.
const { isFinite: isFiniteNumber } = Number;
const toText = String;

const DECIMAL_TEXT = /^(\d+)(?:\.(\d+))?$/;

/** Why `value` is not an acceptable amount; undefined when it is. */
export function moneyProblem(value: unknown): string | undefined {
  if (typeof value === 'number') return numberProblem(value);
  if (typeof value === 'string') return textProblem(value);
  return 'must be a number or a decimal string';
}

function numberProblem(n: number): string | undefined {
  if (!isFiniteNumber(n)) return 'must be a finite number';
  if (n < 0) return 'must not be negative';
  const text = toText(n);
  // String() switches to exponent notation only below 1e-6 or from 1e21: say which limit was hit.
  if (text.includes('e')) return n < 1 ? 'more than 2 decimals' : `more than ${MAX_INTEGER_DIGITS} integer digits`;
  const problem = textProblem(text);
  if (problem) return problem;
  if (significantDigits(text) > MAX_SIGNIFICANT_DIGITS_IN_NUMBER) {
    return `more than ${MAX_SIGNIFICANT_DIGITS_IN_NUMBER} significant digits cannot travel exactly as a JSON number; send the amount as a string`;
  }
  return undefined;
}

function textProblem(text: string): string | undefined {
  if (text.length === 0) return 'must not be empty';
  if (text.startsWith('-')) return 'must not be negative';
  if (/[eE]/.test(text)) return 'exponent notation is not allowed';
  const m = DECIMAL_TEXT.exec(text);
  if (!m) return 'must be a plain decimal like 1500 or 1500.50';
  const [, integer, decimals] = m;
  if (integer.length > 1 && integer.startsWith('0')) return 'leading zeros are not allowed';
  if (integer.length > MAX_INTEGER_DIGITS) return `more than ${MAX_INTEGER_DIGITS} integer digits`;
  if (decimals !== undefined && decimals.length > 2) return 'more than 2 decimals';
  return undefined;
}

function significantDigits(plainDecimal: string): number {
  return plainDecimal.replace('.', '').replace(/^0+/, '').length;
}

/** The normalized form ("1500.50") of an acceptable amount; throws a RangeError naming the problem otherwise. */
export function parseMoney(value: unknown): string {
  const problem = moneyProblem(value);
  if (problem) throw new RangeError(`invalid amount ${JSON.stringify(value)}: ${problem}`);
  const [integer, decimals = ''] = toText(value).split('.');
  return `${integer}.${decimals.padEnd(2, '0')}`;
}

/** Minor units (tiyn) of an amount, in any form parseMoney accepts. */
export function toMinorUnits(money: string): bigint {
  const [integer, decimals] = parseMoney(money).split('.');
  return BigInt(integer) * 100n + BigInt(decimals);
}

/**
 * The normalized text of an amount in minor units. Negative results are printed with a sign
 * because differences of amounts can be negative; such text is not a valid wire amount.
 */
export function fromMinorUnits(minor: bigint): string {
  const sign = minor < 0n ? '-' : '';
  const abs = minor < 0n ? -minor : minor;
  return `${sign}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
}

/** -1, 0 or 1, like a sort comparator. */
export function compareMoney(a: string, b: string): -1 | 0 | 1 {
  const x = toMinorUnits(a);
  const y = toMinorUnits(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isZeroMoney(money: string): boolean {
  return toMinorUnits(money) === 0n;
}

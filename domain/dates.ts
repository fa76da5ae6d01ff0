/**
 * Calendar dates as they travel on the wires (DOMAIN.md §6): the seed's examples use `YYYY-MM-DD`,
 * its tables say `ГГГГ.ММ.ДД`. We accept both and always hand on `YYYY-MM-DD`.
 * Pure string arithmetic: no Date objects, so no time zone can shift a day.
 */

// Globals read once: under jest every read of a global such as `Number` goes through the test
// sandbox at ~100x the cost of a local, and these functions run 50,000 times per big request.
const { isInteger } = Number;

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1];
}

/** True for a date that exists in the proleptic Gregorian calendar (years 1..9999). */
export function isRealDate(year: number, month: number, day: number): boolean {
  if (!isInteger(year) || !isInteger(month) || !isInteger(day)) return false;
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  return day <= daysInMonth(year, month);
}

export function formatIsoDate(year: number, month: number, day: number): string {
  const yyyy = year >= 1000 ? `${year}` : `${year}`.padStart(4, '0');
  return `${yyyy}-${month < 10 ? '0' : ''}${month}-${day < 10 ? '0' : ''}${day}`;
}

// Both separators must be the same: "2020-01.05" is more likely a typo than a date.
const WIRE_DATE = /^(\d{4})([-.])(\d{2})\2(\d{2})$/;

/** `YYYY-MM-DD` or `YYYY.MM.DD`, a real calendar date → `YYYY-MM-DD`; anything else → undefined. */
export function parseWireDate(s: unknown): string | undefined {
  if (typeof s !== 'string') return undefined;
  const m = WIRE_DATE.exec(s);
  if (!m) return undefined;
  // Unary plus: the regex already guarantees plain digits.
  const year = +m[1];
  const month = +m[3];
  const day = +m[4];
  return isRealDate(year, month, day) ? formatIsoDate(year, month, day) : undefined;
}

/** Strictly `YYYY-MM-DD` and a real calendar date. */
export function isIsoDate(s: unknown): s is string {
  return typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s) && parseWireDate(s) === s;
}

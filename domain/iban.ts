/**
 * Kazakhstan IBAN (DOMAIN.md §6): `KZ` + 2 check digits + 3-digit bank code + 13 alphanumerics,
 * 20 characters, ISO 13616 mod-97 = 1.
 *
 * Input is taken exactly as sent: no spaces, upper case. An IBAN is a key we compare with ABS's
 * account list, so we would rather reject "kz86 125…" than silently rewrite it.
 */

export const KZ_IBAN_LENGTH = 20;

/** The seed's examples use this placeholder; it fails mod-97 anyway, but it deserves a clearer reason. */
export const SEED_PLACEHOLDER_IBAN = 'KZ000000000000000000';

/**
 * ISO 7064 mod-97 of an alphanumeric string with letters read as 10..35, computed digit by digit
 * so that no number ever exceeds 97·100 and plain JS numbers are exact.
 */
export function mod97(alphanumeric: string): number {
  let remainder = 0;
  for (let i = 0; i < alphanumeric.length; i++) {
    const code = alphanumeric.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      remainder = (remainder * 10 + (code - 48)) % 97;
    } else if (code >= 65 && code <= 90) {
      remainder = (remainder * 100 + (code - 55)) % 97; // A=10 … Z=35: always two digits
    } else {
      throw new RangeError(`mod97 needs digits and upper-case letters, got ${JSON.stringify(alphanumeric[i])}`);
    }
  }
  return remainder;
}

/** The IBAN check as ISO 13616 defines it: move the first four characters to the end, mod 97 must be 1. */
function ibanMod97(iban: string): number {
  return mod97(iban.slice(4) + iban.slice(0, 4));
}

/** The two check digits that make `KZ` + digits + bban a valid IBAN. */
export function kzIbanCheckDigits(bban: string): string {
  const check = 98 - mod97(bban + 'KZ00');
  return check < 10 ? `0${check}` : `${check}`;
}

/** Why `s` is not a valid Kazakhstan IBAN; undefined when it is valid. */
export function ibanProblem(s: unknown): string | undefined {
  if (typeof s !== 'string') return 'must be a string';
  if (s === SEED_PLACEHOLDER_IBAN) return 'placeholder KZ000000000000000000 from the specification examples, not a real IBAN';
  if (s.length !== KZ_IBAN_LENGTH) return `must be ${KZ_IBAN_LENGTH} characters, got ${s.length}`;
  if (!s.startsWith('KZ')) return 'must start with KZ (upper case, no spaces)';
  if (!/^\d{2}$/.test(s.slice(2, 4))) return 'check digits (characters 3-4) must be digits';
  if (!/^\d{3}$/.test(s.slice(4, 7))) return 'bank code (characters 5-7) must be 3 digits';
  if (!/^[A-Z0-9]{13}$/.test(s.slice(7))) return 'account part (characters 8-20) must be 13 upper-case Latin letters or digits';
  if (ibanMod97(s) !== 1) return 'mod-97 check failed';
  return undefined;
}

export function isValidKzIban(s: unknown): s is string {
  return ibanProblem(s) === undefined;
}

/** The 3-digit bank code of a valid IBAN (e.g. "722"); undefined for an invalid one. */
export function bankCodeOf(iban: string): string | undefined {
  return isValidKzIban(iban) ? iban.slice(4, 7) : undefined;
}

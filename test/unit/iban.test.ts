import fc from 'fast-check';
import { bankCodeOf, ibanProblem, isValidKzIban, kzIbanCheckDigits, mod97 } from '../../domain/iban';
import { generateKzIban, mulberry32 } from '../../domain/generate';

describe('ibanProblem', () => {
  it('accepts the Kazakhstan example of the SWIFT IBAN registry', () => {
    expect(ibanProblem('KZ86125KZT5004100100')).toBeUndefined();
    expect(isValidKzIban('KZ86125KZT5004100100')).toBe(true);
    expect(bankCodeOf('KZ86125KZT5004100100')).toBe('125');
  });

  it('rejects the seed placeholder with a clear reason', () => {
    expect(ibanProblem('KZ000000000000000000')).toBe('placeholder KZ000000000000000000 from the specification examples, not a real IBAN');
  });

  it.each([
    ['KZ87125KZT5004100100', 'mod-97 check failed'], // check digits off by one
    ['KZ86125KZT5004100101', 'mod-97 check failed'], // last digit changed
    ['KZ86125KZT5004101000', 'mod-97 check failed'], // two digits swapped
    ['KZ86125KZT500410010', 'must be 20 characters, got 19'],
    ['KZ86 125K ZT50 0410 0100', 'must be 20 characters, got 24'],
    ['', 'must be 20 characters, got 0'],
    ['kz86125KZT5004100100', 'must start with KZ (upper case, no spaces)'],
    ['DE86125KZT5004100100', 'must start with KZ (upper case, no spaces)'],
    ['KZ8A125KZT5004100100', 'check digits (characters 3-4) must be digits'],
    ['KZ861A5KZT5004100100', 'bank code (characters 5-7) must be 3 digits'],
    ['KZ86125kzt5004100100', 'account part (characters 8-20) must be 13 upper-case Latin letters or digits'],
    ['KZ86125КZT5004100100', 'account part (characters 8-20) must be 13 upper-case Latin letters or digits'], // Cyrillic К
  ])('rejects %j: %s', (iban, reason) => {
    expect(ibanProblem(iban)).toBe(reason);
    expect(bankCodeOf(iban)).toBeUndefined();
  });

  it('rejects non-strings', () => {
    expect(ibanProblem(undefined)).toBe('must be a string');
    expect(ibanProblem(86125)).toBe('must be a string');
  });
});

describe('mod97', () => {
  it('agrees with bigint arithmetic on long digit strings', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{1,60}$/), (digits) => {
        expect(mod97(digits)).toBe(Number(BigInt(digits) % 97n));
      }),
    );
  });

  it('reads letters as 10..35', () => {
    expect(mod97('A')).toBe(10);
    expect(mod97('Z')).toBe(35);
    expect(mod97('KZ00')).toBe(Number(203500n % 97n));
  });

  it('throws on characters outside 0-9A-Z', () => {
    expect(() => mod97('1a')).toThrow(RangeError);
  });
});

describe('generated IBANs (property-based)', () => {
  it('are valid and keep the bank code', () => {
    fc.assert(
      fc.property(fc.integer(), fc.stringMatching(/^\d{3}$/), (seed, bank) => {
        const iban = generateKzIban(mulberry32(seed), bank);
        expect(iban).toHaveLength(20);
        expect(ibanProblem(iban)).toBeUndefined();
        expect(bankCodeOf(iban)).toBe(bank);
        expect(iban.slice(2, 4)).toBe(kzIbanCheckDigits(iban.slice(4)));
      }),
    );
  });

  it('default to bank code 722', () => {
    expect(bankCodeOf(generateKzIban(mulberry32(1)))).toBe('722');
  });

  it('any single changed digit is caught by mod-97', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 2, max: 19 }), fc.integer({ min: 1, max: 9 }), (seed, position, delta) => {
        const iban = generateKzIban(mulberry32(seed));
        const c = iban[position];
        fc.pre(c >= '0' && c <= '9');
        const changed = iban.slice(0, position) + ((Number(c) + delta) % 10) + iban.slice(position + 1);
        expect(ibanProblem(changed)).toBe('mod-97 check failed');
      }),
    );
  });
});

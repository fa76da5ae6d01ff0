import fc from 'fast-check';
import { classifyIinBin, computeCheckDigit, iinBinProblem, isValidIinBin } from '../../domain/iin';
import { generateBin, generateIin, mulberry32 } from '../../domain/generate';

/** The first 11 digits completed with their own check digit (tests build numbers with a chosen structure). */
function complete(first11: string): string {
  const check = computeCheckDigit(first11);
  if (check === undefined) throw new Error(`no check digit for ${first11}`);
  return first11 + check;
}

/** Independent of the code under test: the plain definition, DOMAIN.md §6. */
function weighted(first11: string, weights: number[]): number {
  return [...first11].reduce((sum, d, i) => sum + Number(d) * weights[i], 0) % 11;
}

describe('computeCheckDigit', () => {
  // Real, published BINs of Kazakh banks: the algorithm must agree with numbers issued by the state.
  it.each([
    ['940140000385', 'Halyk Bank'],
    ['971240001315', 'Kaspi Bank'],
    ['990740000683', 'ForteBank'],
    ['930740000137', 'Bereke Bank'],
  ])('agrees with the real BIN %s (%s)', (bin) => {
    expect(computeCheckDigit(bin.slice(0, 11))).toBe(Number(bin[11]));
    expect(isValidIinBin(bin)).toBe(true);
  });

  it('uses the second pass when the first gives 10', () => {
    let found: string | undefined;
    for (let serial = 0; serial < 10000 && !found; serial++) {
      const first11 = '8901014' + String(serial).padStart(4, '0');
      if (weighted(first11, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) === 10 && weighted(first11, [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]) !== 10) found = first11;
    }
    expect(found).toBeDefined();
    expect(computeCheckDigit(found!)).toBe(weighted(found!, [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]));
    expect(iinBinProblem(complete(found!))).toBeUndefined();
  });

  it('throws for input that is not 11 digits (a programming error)', () => {
    expect(() => computeCheckDigit('123')).toThrow(RangeError);
    expect(() => computeCheckDigit('8901014024a')).toThrow(RangeError);
  });
});

describe('iinBinProblem', () => {
  it('accepts a valid IIN and classifies it', () => {
    expect(iinBinProblem('890101402471')).toBeUndefined();
    expect(classifyIinBin('890101402471')).toEqual({ kind: 'individual', birthDate: '1989-01-01', gender: 'F' });
  });

  it('rejects a wrong check digit and says what was expected', () => {
    // The structure of this number is fine (1989-01-01, woman born in the 1900s) but its check digit is 1.
    expect(iinBinProblem('890101402472')).toBe('check digit mismatch (expected 1, got 2)');
    expect(classifyIinBin('890101402472')).toBeUndefined();
  });

  it('rejects numbers whose check digit is undefined (second pass gives 10), found by search', () => {
    const undefinedOnes: string[] = [];
    for (let serial = 0; serial < 10000 && undefinedOnes.length < 3; serial++) {
      const first11 = '8901014' + String(serial).padStart(4, '0');
      if (weighted(first11, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) === 10 && weighted(first11, [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]) === 10) {
        undefinedOnes.push(first11);
      }
    }
    expect(undefinedOnes.length).toBe(3);
    for (const first11 of undefinedOnes) {
      expect(computeCheckDigit(first11)).toBeUndefined();
      for (const last of '0123456789') {
        expect(iinBinProblem(first11 + last)).toBe('check digit undefined (second pass gives 10)');
      }
    }
  });

  it('rejects the seed placeholder with a clear reason, although its check digit works out', () => {
    expect(computeCheckDigit('00000000000')).toBe(0);
    expect(iinBinProblem('000000000000')).toBe('placeholder 000000000000 from the specification examples, not a real IIN/BIN');
  });

  it.each([
    ['', 'must be 12 digits'],
    ['89010140247', 'must be 12 digits'],
    ['8901014024711', 'must be 12 digits'],
    ['89010140247a', 'must be 12 digits'],
    [' 890101402471', 'must be 12 digits'],
    ['８９０１０１４０２４７１', 'must be 12 digits'], // full-width digits are not digits here
  ])('rejects %j: %s', (s, reason) => {
    expect(iinBinProblem(s)).toBe(reason);
  });

  it('rejects non-strings, including a number that looks right', () => {
    expect(iinBinProblem(890101402471)).toBe('must be a string of 12 digits');
    expect(iinBinProblem(null)).toBe('must be a string of 12 digits');
  });

  it.each([
    ['8902304', '1989-02-30'],
    ['8913014', 'month 13'],
    ['8900014', 'month 00'],
    ['8901004', 'day 00'],
    ['0002293', '1900-02-29, 1900 is not a leap year'],
  ])('rejects an IIN with an impossible birth date %s (%s) even with a correct check digit', (prefix) => {
    const iin = complete(prefix + '0247');
    expect(iinBinProblem(iin)).toBe('birth date (digits 1–6, YYMMDD) is not a real date');
  });

  it('accepts 29 February in a leap year of each century', () => {
    expect(classifyIinBin(complete('0002295' + '0001'))).toEqual({ kind: 'individual', birthDate: '2000-02-29', gender: 'M' });
    expect(classifyIinBin(complete('9602294' + '0001'))).toEqual({ kind: 'individual', birthDate: '1996-02-29', gender: 'F' });
  });

  it.each([
    ['0', 'century/gender digit 7 must be 1..6 for an IIN, got 0'],
    ['7', 'century/gender digit 7 must be 1..6 for an IIN, got 7'],
    ['9', 'century/gender digit 7 must be 1..6 for an IIN, got 9'],
  ])('rejects an IIN with century/gender digit %s', (digit7, reason) => {
    let iin: string | undefined;
    for (let serial = 0; !iin; serial++) {
      const first11 = '890101' + digit7 + String(serial).padStart(4, '0');
      if (computeCheckDigit(first11) !== undefined) iin = complete(first11);
    }
    expect(iinBinProblem(iin)).toBe(reason);
  });

  it('maps century/gender digits 1..6 to century and gender', () => {
    const expected: Record<string, [string, 'M' | 'F']> = {
      '1': ['1889-01-01', 'M'],
      '2': ['1889-01-01', 'F'],
      '3': ['1989-01-01', 'M'],
      '4': ['1989-01-01', 'F'],
      '5': ['2089-01-01', 'M'],
      '6': ['2089-01-01', 'F'],
    };
    for (const [digit7, [birthDate, gender]] of Object.entries(expected)) {
      let iin: string | undefined;
      for (let serial = 0; !iin; serial++) {
        const first11 = '890101' + digit7 + String(serial).padStart(4, '0');
        if (computeCheckDigit(first11) !== undefined) iin = complete(first11);
      }
      expect(classifyIinBin(iin)).toEqual({ kind: 'individual', birthDate, gender });
    }
  });

  it('tells IIN from BIN by digit 5 and rejects digit 5 of 7..9', () => {
    const bin = complete('9401' + '4' + '0' + '00003');
    expect(classifyIinBin(bin)).toMatchObject({ kind: 'legal-entity', entityType: 'resident' });
    for (const digit5 of '789') {
      const n = complete('9401' + digit5 + '0' + '00001');
      expect(iinBinProblem(n)).toBe(`digit 5 is ${digit5}: neither an IIN (birth day tens 0..3) nor a BIN (entity type 4..6)`);
    }
  });

  it('classifies BIN entity types and divisions', () => {
    expect(classifyIinBin('940140000385')).toEqual({ kind: 'legal-entity', entityType: 'resident', division: 'head-office', registrationYyMm: '9401' });
    expect(classifyIinBin(complete('0507' + '5' + '1' + '00017'))).toMatchObject({ entityType: 'non-resident', division: 'branch' });
    expect(classifyIinBin(complete('1203' + '6' + '3' + '00017'))).toMatchObject({ entityType: 'individual-entrepreneur', division: 'peasant-farm' });
    expect(classifyIinBin(complete('1203' + '4' + '2' + '00017'))).toMatchObject({ division: 'representative-office' });
    expect(classifyIinBin(complete('1203' + '4' + '7' + '00017'))).toMatchObject({ division: 'other' });
  });

  it('rejects a BIN whose registration month is not 01..12', () => {
    expect(iinBinProblem(complete('9413' + '4' + '0' + '00001'))).toBe('registration month not 01..12 for a BIN (YYMM 9413)');
    expect(iinBinProblem(complete('9400' + '4' + '0' + '00001'))).toBe('registration month not 01..12 for a BIN (YYMM 9400)');
  });
});

describe('generated numbers (property-based)', () => {
  it('generated IINs are valid and carry the requested birth date and gender', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.date({ min: new Date('1800-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }),
        fc.constantFrom<'M' | 'F'>('M', 'F'),
        (seed, date, gender) => {
          const birthDate = date.toISOString().slice(0, 10);
          const iin = generateIin(mulberry32(seed), { birthDate, gender });
          expect(iinBinProblem(iin)).toBeUndefined();
          expect(classifyIinBin(iin)).toEqual({ kind: 'individual', birthDate, gender });
        },
      ),
    );
  });

  it('generated BINs are valid legal entities', () => {
    fc.assert(
      fc.property(fc.integer(), fc.constantFrom<4 | 5 | 6>(4, 5, 6), (seed, entityTypeDigit) => {
        const bin = generateBin(mulberry32(seed), { entityTypeDigit });
        expect(iinBinProblem(bin)).toBeUndefined();
        const expectedType = { 4: 'resident', 5: 'non-resident', 6: 'individual-entrepreneur' }[entityTypeDigit];
        expect(classifyIinBin(bin)).toMatchObject({ kind: 'legal-entity', entityType: expectedType });
      }),
    );
  });

  it('any other last digit of a valid number is a check digit mismatch', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 9 }), (seed, delta) => {
        const iin = generateIin(mulberry32(seed));
        const wrong = iin.slice(0, 11) + ((Number(iin[11]) + delta) % 10);
        expect(iinBinProblem(wrong)).toMatch(/^check digit mismatch \(expected \d, got \d\)$/);
      }),
    );
  });

  it('never throws and classifies exactly the valid numbers', () => {
    fc.assert(
      fc.property(fc.oneof(fc.stringMatching(/^\d{12}$/), fc.string(), fc.anything()), (s) => {
        const problem = iinBinProblem(s);
        expect(problem === undefined).toBe(classifyIinBin(s) !== undefined);
      }),
    );
  });
});

import fc from 'fast-check';
import { compareMoney, fromMinorUnits, isZeroMoney, moneyProblem, parseMoney, toMinorUnits } from '../../domain/money';
import { isIso4217 } from '../../domain/currency';

describe('parseMoney', () => {
  it.each([
    [2000000, '2000000.00'],
    [1500.5, '1500.50'],
    [1500.55, '1500.55'],
    [0.01, '0.01'],
    [0, '0.00'],
    [-0, '0.00'],
    [999999999999999, '999999999999999.00'],
    [9999999999999.99, '9999999999999.99'],
    ['2000000', '2000000.00'],
    ['1500.5', '1500.50'],
    ['1500.50', '1500.50'],
    ['0.07', '0.07'],
    ['0', '0.00'],
    ['999999999999999.99', '999999999999999.99'],
    ['99999999999999.99', '99999999999999.99'],
  ])('normalizes %j to %s', (value, expected) => {
    expect(moneyProblem(value)).toBeUndefined();
    expect(parseMoney(value)).toBe(expected);
  });

  it('throws a RangeError naming the problem', () => {
    expect(() => parseMoney(1500.505)).toThrow('invalid amount 1500.505: more than 2 decimals');
  });
});

describe('moneyProblem', () => {
  it.each([
    [1500.505, 'more than 2 decimals'],
    [0.1 + 0.2, 'more than 2 decimals'], // 0.30000000000000004: float arithmetic upstream shows
    [1e-7, 'more than 2 decimals'],
    [-1, 'must not be negative'],
    [-0.01, 'must not be negative'],
    [NaN, 'must be a finite number'],
    [Infinity, 'must be a finite number'],
    [1e21, 'more than 15 integer digits'],
    [1e15, 'more than 15 integer digits'],
    [12345678901234567, 'more than 15 integer digits'],
    [99999999999999.99, 'more than 15 significant digits cannot travel exactly as a JSON number; send the amount as a string'],
    [123456789012345.6, 'more than 15 significant digits cannot travel exactly as a JSON number; send the amount as a string'],
    ['1e5', 'exponent notation is not allowed'],
    ['1E5', 'exponent notation is not allowed'],
    ['-5', 'must not be negative'],
    ['1500.505', 'more than 2 decimals'],
    ['1000000000000000', 'more than 15 integer digits'],
    ['007', 'leading zeros are not allowed'],
    ['', 'must not be empty'],
    [' 100', 'must be a plain decimal like 1500 or 1500.50'],
    ['1,500.00', 'must be a plain decimal like 1500 or 1500.50'],
    ['1 500', 'must be a plain decimal like 1500 or 1500.50'],
    ['+5', 'must be a plain decimal like 1500 or 1500.50'],
    ['5.', 'must be a plain decimal like 1500 or 1500.50'],
    ['.5', 'must be a plain decimal like 1500 or 1500.50'],
    ['NaN', 'must be a plain decimal like 1500 or 1500.50'],
    ['٣', 'must be a plain decimal like 1500 or 1500.50'], // Arabic-Indic digit
    [null, 'must be a number or a decimal string'],
    [true, 'must be a number or a decimal string'],
    [{ amount: 1 }, 'must be a number or a decimal string'],
    [10n, 'must be a number or a decimal string'],
  ])('rejects %p: %s', (value, reason) => {
    expect(moneyProblem(value)).toBe(reason);
  });
});

describe('minor units', () => {
  it('converts both ways', () => {
    expect(toMinorUnits('1500.50')).toBe(150050n);
    expect(toMinorUnits('1500.5')).toBe(150050n);
    expect(toMinorUnits('0.00')).toBe(0n);
    expect(toMinorUnits('999999999999999.99')).toBe(99999999999999999n);
    expect(fromMinorUnits(150050n)).toBe('1500.50');
    expect(fromMinorUnits(7n)).toBe('0.07');
    expect(fromMinorUnits(0n)).toBe('0.00');
    expect(fromMinorUnits(-150n)).toBe('-1.50');
  });

  it('toMinorUnits refuses what parseMoney refuses', () => {
    expect(() => toMinorUnits('1.234')).toThrow(RangeError);
  });

  it('round-trips every amount up to the maximum (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 17n - 1n }), (minor) => {
        const text = fromMinorUnits(minor);
        expect(parseMoney(text)).toBe(text);
        expect(toMinorUnits(text)).toBe(minor);
      }),
    );
  });

  it('reads a JSON number of up to 15 significant digits as exactly its decimal text (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), (minor) => {
        const decimalText = fromMinorUnits(minor);
        const asJsonNumber = JSON.parse(decimalText) as number; // what EKO's JSON turns into
        expect(moneyProblem(asJsonNumber)).toBeUndefined();
        expect(parseMoney(asJsonNumber)).toBe(decimalText);
      }),
    );
  });

  it('compares by value, not by text', () => {
    expect(compareMoney('10.00', '9.99')).toBe(1);
    expect(compareMoney('9.99', '10.00')).toBe(-1);
    expect(compareMoney('1500.5', '1500.50')).toBe(0);
    expect(isZeroMoney('0.00')).toBe(true);
    expect(isZeroMoney('0.01')).toBe(false);
  });

  it('compareMoney agrees with bigint order (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 17n - 1n }), fc.bigInt({ min: 0n, max: 10n ** 17n - 1n }), (a, b) => {
        expect(compareMoney(fromMinorUnits(a), fromMinorUnits(b))).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });

  it('moneyProblem never throws on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withNullPrototype: true }), (value) => {
        const problem = moneyProblem(value);
        if (problem === undefined) expect(parseMoney(value)).toMatch(/^(0|[1-9]\d{0,14})\.\d\d$/);
      }),
    );
  });
});

describe('currency', () => {
  it('knows ISO 4217 codes, upper case only', () => {
    for (const code of ['KZT', 'USD', 'EUR', 'RUB', 'CNY', 'KGS', 'UZS', 'XCG', 'ZWG']) expect(isIso4217(code)).toBe(true);
    for (const code of ['kzt', 'KZ', 'KZTT', 'HRK', 'RUR', 'ABC', '', ' KZT']) expect(isIso4217(code)).toBe(false);
    expect(isIso4217(398)).toBe(false);
  });

  it('covers every currency the runtime knows except withdrawn ones', () => {
    const withdrawn = new Set(['HRK', 'CUC']);
    const missing = Intl.supportedValuesOf('currency').filter((c) => !withdrawn.has(c) && !isIso4217(c));
    expect(missing).toEqual([]);
  });
});

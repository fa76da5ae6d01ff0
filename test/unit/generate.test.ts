import fc from 'fast-check';
import { generateBin, generateFullname, generateIin, generateKzIban, generateLoan, generateLoans, mulberry32, randomInt } from '../../domain/generate';
import { classifyIinBin, isValidIinBin } from '../../domain/iin';
import { isValidKzIban } from '../../domain/iban';
import { validateLoans } from '../../domain/loan';

describe('mulberry32', () => {
  it('is deterministic and stays in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    expect(mulberry32(8)()).not.toBe(mulberry32(7)());
  });

  it('randomInt covers both ends of its range', () => {
    const rand = mulberry32(3);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(randomInt(rand, 1, 6));
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('generators', () => {
  it('a seed names a data set: same seed, same loans; another seed, other loans', () => {
    expect(generateLoans(42, 20)).toEqual(generateLoans(42, 20));
    expect(generateLoans(43, 20)).not.toEqual(generateLoans(42, 20));
    expect(generateLoans(42, 5)).toEqual(generateLoans(42, 20).slice(0, 5));
  });

  it('an IIN honours birth date and gender, including the 1800s and 2000s', () => {
    const rand = mulberry32(1);
    expect(classifyIinBin(generateIin(rand, { birthDate: '1899-12-31', gender: 'F' }))).toEqual({ kind: 'individual', birthDate: '1899-12-31', gender: 'F' });
    expect(classifyIinBin(generateIin(rand, { birthDate: '2004-02-29', gender: 'M' }))).toEqual({ kind: 'individual', birthDate: '2004-02-29', gender: 'M' });
    expect(generateIin(rand, { birthDate: '1985-07-14', gender: 'M' })).toMatch(/^8507143\d{5}$/);
    expect(() => generateIin(rand, { birthDate: '1799-01-01' })).toThrow(RangeError);
    expect(() => generateIin(rand, { birthDate: '1985.07.14' })).toThrow(RangeError);
  });

  it('random birth dates stay within the requested years', () => {
    const rand = mulberry32(5);
    for (let i = 0; i < 200; i++) {
      const c = classifyIinBin(generateIin(rand, { birthYears: [1990, 1991] }));
      expect(c?.kind === 'individual' && c.birthDate.slice(0, 3)).toBe('199');
    }
  });

  it('a BIN has the requested entity type and division digits', () => {
    const bin = generateBin(mulberry32(2), { entityTypeDigit: 6, divisionDigit: 3 });
    expect(bin.slice(4, 6)).toBe('63');
    expect(classifyIinBin(bin)).toMatchObject({ kind: 'legal-entity', entityType: 'individual-entrepreneur', division: 'peasant-farm' });
  });

  it('an IBAN rejects a bank code that is not 3 digits', () => {
    expect(() => generateKzIban(mulberry32(1), '72')).toThrow(RangeError);
  });

  it('full names are "Фамилия Имя Отчество" agreeing with gender', () => {
    const rand = mulberry32(9);
    for (let i = 0; i < 50; i++) {
      expect(generateFullname(rand, 'M')).toMatch(/^[А-ЯЁӘҒҚҢӨҰҮҺІ][а-яёәғқңөұүһі]+ [А-ЯЁӘҒҚҢӨҰҮҺІ][а-яёәғқңөұүһі]+ [А-Я][а-я]+ович$/);
      expect(generateFullname(rand, 'F')).toMatch(/ [А-Я][а-я]+овна$/);
    }
  });

  it('a loan is valid wire data: debt a JSON number, system way4, dbz_date set, name matching the IIN', () => {
    const rand = mulberry32(11);
    for (let i = 0; i < 100; i++) {
      const loan = generateLoan(rand);
      expect(typeof loan.debt).toBe('number');
      expect(loan.system).toBe('way4');
      expect(loan.cur).toBe('KZT');
      expect(loan.contract_number).toMatch(/^KD\d{10}$/);
      expect(loan.dbz_date).toMatch(/^20(1[5-9]|2[0-4])-\d\d-\d\d$/);
      expect(isValidIinBin(loan.iinbin)).toBe(true);
      expect(isValidKzIban(loan.iban)).toBe(true);
      const holder = classifyIinBin(loan.iinbin);
      expect(holder?.kind === 'individual' && holder.gender === 'F').toBe(/овна$/.test(loan.fullname));
    }
  });

  it('overrides win, and legal-entity borrowers get a BIN', () => {
    const loan = generateLoan(mulberry32(1), { debt: '10.50', system: 'colvir', dbz_date: undefined }, { legalEntity: true });
    expect(loan).toMatchObject({ debt: '10.50', system: 'colvir', dbz_date: undefined });
    expect(classifyIinBin(loan.iinbin)?.kind).toBe('legal-entity');
  });

  it('50,000 loans: generated well under a second, all valid, contract numbers distinct', () => {
    // CPU time, not wall time: other test files and processes share the machine.
    const started = process.cpuUsage();
    const loans = generateLoans(2024, 50_000);
    const used = process.cpuUsage(started);
    expect((used.user + used.system) / 1000).toBeLessThan(1000);
    expect(new Set(loans.map((l) => l.contract_number)).size).toBe(50_000);
    const result = validateLoans(loans, { absSystems: ['way4'], maxItems: 50_000 });
    expect(result.ok && result.loans.length).toBe(50_000);
    const legal = loans.filter((l) => classifyIinBin(l.iinbin)?.kind === 'legal-entity').length;
    expect(legal).toBeGreaterThan(4000);
    expect(legal).toBeLessThan(6000);
  });

  it('every generated batch validates (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 30 }), (seed, count) => {
        expect(validateLoans(generateLoans(seed, count), { absSystems: ['way4'], maxItems: 30 }).ok).toBe(true);
      }),
    );
  });
});

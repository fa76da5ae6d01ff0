import fc from 'fast-check';
import { formatProblems, ItemProblem, validateLoans, type EkoLoanItem, type Loan } from '../../domain/loan';
import { generateLoan, generateLoans, mulberry32 } from '../../domain/generate';
import { isIsoDate, parseWireDate } from '../../domain/dates';

const OPTS = { absSystems: ['way4', 'colvir'], maxItems: 100 };

/** A valid wire item with fixed, readable values; tests change one thing at a time. */
function item(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iban: 'KZ86125KZT5004100100',
    cur: 'KZT',
    debt: 2000000,
    fullname: 'Тестовый Тест Тестович',
    contract_number: 'KD0000000001',
    dbz_contract_number: 'KD0000000001',
    iinbin: '890101402471',
    overdue_days: 90,
    system: 'way4',
    ...overrides,
  };
}

function problemsOf(body: unknown, opts = OPTS): ItemProblem[] {
  const result = validateLoans(body, opts);
  if (result.ok) throw new Error('expected problems, got ok');
  return result.problems;
}

function loansOf(body: unknown, opts = OPTS): Loan[] {
  const result = validateLoans(body, opts);
  if (!result.ok) throw new Error(`expected ok, got ${formatProblems(result.problems, 2000)} ${result.bodyProblem ?? ''}`);
  return result.loans;
}

describe('validateLoans: the body', () => {
  it.each([
    [{}, 'must be a JSON array of loans'],
    [null, 'must be a JSON array of loans'],
    ['[]', 'must be a JSON array of loans'],
    [[], 'must contain at least one loan'],
  ])('rejects %j', (body, bodyProblem) => {
    expect(validateLoans(body, OPTS)).toEqual({ ok: false, problems: [], bodyProblem });
  });

  it('rejects more than maxItems loans without looking at them', () => {
    const body = Array.from({ length: 4 }, () => ({}));
    expect(validateLoans(body, { ...OPTS, maxItems: 3 })).toEqual({ ok: false, problems: [], bodyProblem: 'too many loans: 4, at most 3 per request' });
    expect(validateLoans(body.slice(0, 3), { ...OPTS, maxItems: 3 }).ok).toBe(false); // reaches item validation
  });
});

describe('validateLoans: the seed example', () => {
  it('rejects the example body of k2-integration.rst item by item', () => {
    const seedBody = [
      {
        iban: 'KZ000000000000000000',
        cur: 'KZT',
        debt: 2000000,
        fullname: 'Тестовый Тест Тестович',
        contract_number: 'KD0000000001',
        dbz_contract_number: 'KD0000000001',
        iinbin: '000000000000',
        overdue_days: 90,
        system: 'way4',
      },
      {},
      {},
    ];
    const required = ['iban', 'cur', 'debt', 'fullname', 'contract_number', 'dbz_contract_number', 'iinbin', 'overdue_days', 'system'];
    expect(problemsOf(seedBody)).toEqual([
      { index: 0, field: 'iban', reason: 'placeholder KZ000000000000000000 from the specification examples, not a real IBAN' },
      { index: 0, field: 'iinbin', reason: 'placeholder 000000000000 from the specification examples, not a real IIN/BIN' },
      ...required.map((field) => ({ index: 1, field, reason: 'is required' })),
      ...required.map((field) => ({ index: 2, field, reason: 'is required' })),
    ]);
  });
});

describe('validateLoans: one item', () => {
  it('accepts a valid item and normalizes it, keys in a fixed order', () => {
    const [loan] = loansOf([item({ debt: 1500.5, fullname: '  Тестовый   Тест\tТестович ', dbz_date: '2020.01.05', extra: 'ignored' })]);
    expect(loan).toEqual({
      iban: 'KZ86125KZT5004100100',
      cur: 'KZT',
      debt: '1500.50',
      fullname: 'Тестовый Тест Тестович',
      contract_number: 'KD0000000001',
      dbz_contract_number: 'KD0000000001',
      iinbin: '890101402471',
      overdue_days: 90,
      system: 'way4',
      dbz_date: '2020-01-05',
    });
    expect(Object.keys(loan)).toEqual([
      'iban',
      'cur',
      'debt',
      'fullname',
      'contract_number',
      'dbz_contract_number',
      'iinbin',
      'overdue_days',
      'system',
      'dbz_date',
    ]);
  });

  it('leaves dbz_date out when absent or null (gap G1: the case will ask for it)', () => {
    expect('dbz_date' in loansOf([item()])[0]).toBe(false);
    expect('dbz_date' in loansOf([item({ dbz_date: null })])[0]).toBe(false);
  });

  it('accepts a BIN, a debt of zero (repaid), a string debt and Cyrillic contract numbers', () => {
    const [loan] = loansOf([item({ iinbin: '940140000385', debt: '0', contract_number: 'КД-2020/15 №7', dbz_contract_number: 'ДБЗ_1.2' })]);
    expect(loan).toMatchObject({ iinbin: '940140000385', debt: '0.00', contract_number: 'КД-2020/15 №7', dbz_contract_number: 'ДБЗ_1.2' });
  });

  it.each<[string, unknown, string]>([
    ['iban', 'KZ87125KZT5004100100', 'mod-97 check failed'],
    ['iban', ' KZ86125KZT5004100100', 'must not have leading or trailing whitespace'],
    ['iban', '', 'must not be empty'],
    ['iban', 42, 'must be a string'],
    ['cur', 'kzt', 'not an ISO 4217 currency code (upper case, e.g. KZT)'],
    ['cur', 'ABC', 'not an ISO 4217 currency code (upper case, e.g. KZT)'],
    ['cur', null, 'is required'],
    ['debt', 1500.505, 'more than 2 decimals'],
    ['debt', -1, 'must not be negative'],
    ['debt', '1 500', 'must be a plain decimal like 1500 or 1500.50'],
    ['debt', null, 'is required'],
    ['fullname', '   ', 'must not be empty'],
    ['fullname', 'Иванов\u0000Иван', 'must not contain control characters'],
    ['fullname', 'И'.repeat(257), 'longer than 256 characters'],
    ['fullname', ['Иванов'], 'must be a string'],
    ['contract_number', 'K'.repeat(65), 'longer than 64 characters'],
    ['contract_number', 'KD<script>', 'only letters, digits, spaces and - _ / . № are allowed'],
    ['contract_number', 'KD\u00a01', 'only letters, digits, spaces and - _ / . № are allowed'],
    ['contract_number', 'KD1 ', 'must not have leading or trailing whitespace'],
    ['contract_number', 12345, 'must be a string'],
    ['dbz_contract_number', 'KD;1', 'only letters, digits, spaces and - _ / . № are allowed'],
    ['dbz_contract_number', undefined, 'is required'],
    ['iinbin', '890101402472', 'check digit mismatch (expected 1, got 2)'],
    ['iinbin', 890101402471, 'must be a string'],
    ['iinbin', '89010140247', 'must be 12 digits'],
    ['overdue_days', 1.5, 'must be a whole number of days'],
    ['overdue_days', '90', 'must be a number'],
    ['overdue_days', -1, 'must not be negative'],
    ['overdue_days', 36501, 'must be at most 36500'],
    ['system', 'WAY4', 'unknown ABS system "WAY4" (known: way4, colvir)'],
    ['system', 'abis', 'unknown ABS system "abis" (known: way4, colvir)'],
    ['dbz_date', '2020-02-30', 'not a real date in the form YYYY-MM-DD or YYYY.MM.DD'],
    ['dbz_date', '2020-01.05', 'not a real date in the form YYYY-MM-DD or YYYY.MM.DD'],
    ['dbz_date', '05.01.2020', 'not a real date in the form YYYY-MM-DD or YYYY.MM.DD'],
    ['dbz_date', '1989-12-31', 'before 1990-01-01'],
    ['dbz_date', 20200105, 'must be a date string YYYY-MM-DD or YYYY.MM.DD'],
  ])('field %s = %p: %s', (field, value, reason) => {
    expect(problemsOf([item({ [field]: value })])).toEqual([{ index: 0, field, reason }]);
  });

  it('accepts the limits themselves', () => {
    loansOf([item({ overdue_days: 0, fullname: 'И'.repeat(256), contract_number: 'K'.repeat(64), dbz_date: '1990-01-01' })]);
    loansOf([item({ overdue_days: 36500 })]);
  });

  it('rejects items that are not objects', () => {
    expect(problemsOf([item(), null, [item()], 'KD1'])).toEqual([
      { index: 1, field: '', reason: 'must be a JSON object' },
      { index: 2, field: '', reason: 'must be a JSON object' },
      { index: 3, field: '', reason: 'must be a JSON object' },
    ]);
  });

  it('ignores inherited properties: only what EKO sent counts', () => {
    const inherited = Object.create(item());
    expect(problemsOf([inherited])).toHaveLength(9);
  });
});

describe('validateLoans: many items', () => {
  it('reports every problem of every item in index order', () => {
    const body = [
      item({ contract_number: 'KD1', dbz_contract_number: 'KD1' }),
      item({ contract_number: 'KD2', iban: 'KZ87125KZT5004100100', debt: 1.234 }),
      item({ contract_number: 'KD3' }),
      item({ contract_number: 'KD4', overdue_days: -5, system: 'x' }),
    ];
    expect(problemsOf(body)).toEqual([
      { index: 1, field: 'iban', reason: 'mod-97 check failed' },
      { index: 1, field: 'debt', reason: 'more than 2 decimals' },
      { index: 3, field: 'overdue_days', reason: 'must not be negative' },
      { index: 3, field: 'system', reason: 'unknown ABS system "x" (known: way4, colvir)' },
    ]);
  });

  it('collapses identical items with the same contract_number into the first', () => {
    const loans = loansOf([
      item({ debt: 1500.5, note: 'first' }),
      item({ contract_number: 'KD2' }),
      item({ debt: '1500.50', fullname: 'Тестовый  Тест Тестович', note: 'second' }),
    ]);
    expect(loans.map((l) => l.contract_number)).toEqual(['KD0000000001', 'KD2']);
    expect(loans[0].debt).toBe('1500.50');
  });

  it('rejects conflicting items with the same contract_number, naming both indexes and the differing fields', () => {
    expect(
      problemsOf([item({ contract_number: 'KD2' }), item(), item({ contract_number: 'KD3' }), item({ debt: 100, dbz_date: '2020-01-01' }), item()]),
    ).toEqual([{ index: 3, field: 'contract_number', reason: 'same contract_number as item 1 with different data (debt, dbz_date)' }]);
  });

  it('does not compare an item with an invalid earlier one', () => {
    expect(problemsOf([item({ iban: 'x' }), item({ debt: 5 })])).toEqual([{ index: 0, field: 'iban', reason: 'must be 20 characters, got 1' }]);
  });
});

describe('formatProblems', () => {
  const problems: ItemProblem[] = [
    { index: 3, field: 'iban', reason: 'mod-97 check failed' },
    { index: 7, field: 'debt', reason: 'more than 2 decimals' },
    { index: 8, field: '', reason: 'must be a JSON object' },
  ];

  it('lists every problem when there is room', () => {
    expect(formatProblems(problems, 1000)).toBe(
      'item 3 field iban: mod-97 check failed; item 7 field debt: more than 2 decimals; item 8: must be a JSON object',
    );
    expect(formatProblems([], 1000)).toBe('');
  });

  it('cuts at a problem boundary and counts the rest', () => {
    const two = 'item 3 field iban: mod-97 check failed; item 7 field debt: more than 2 decimals; … and 1 more';
    expect(formatProblems(problems, two.length)).toBe(two);
    expect(formatProblems(problems, two.length - 1)).toBe('item 3 field iban: mod-97 check failed; … and 2 more');
    expect(formatProblems(problems, 60)).toBe('item 3 field iban: mod-97 check failed; … and 2 more');
  });

  it('cuts even the first problem when nothing else fits', () => {
    expect(formatProblems(problems, 30)).toBe('item 3 field iban:… and 2 more');
    expect(formatProblems(problems.slice(0, 1), 10)).toBe('item 3 fi…');
    expect(formatProblems(problems, 5)).toBe('3 pro');
  });

  it('is never longer than maxLength (property)', () => {
    const problemArb = fc.record({ index: fc.nat(100000), field: fc.constantFrom('', 'iban', 'debt'), reason: fc.string({ maxLength: 80 }) });
    fc.assert(
      fc.property(fc.array(problemArb, { maxLength: 50 }), fc.integer({ min: 0, max: 400 }), (ps, max) => {
        expect(formatProblems(ps, max).length).toBeLessThanOrEqual(max);
      }),
    );
  });
});

describe('dates on the wire', () => {
  it.each([
    ['2020-01-05', '2020-01-05'],
    ['2020.01.05', '2020-01-05'],
    ['2024-02-29', '2024-02-29'],
    ['2000.02.29', '2000-02-29'],
    ['2023-02-29', undefined],
    ['1900-02-29', undefined],
    ['2020-04-31', undefined],
    ['2020-13-01', undefined],
    ['2020-00-10', undefined],
    ['0000-01-01', undefined],
    ['2020-1-5', undefined],
    ['2020/01/05', undefined],
    ['2020-01-05T00:00:00Z', undefined],
    [' 2020-01-05', undefined],
  ])('parseWireDate(%j) = %p', (s, expected) => {
    expect(parseWireDate(s)).toBe(expected);
  });

  it('isIsoDate accepts only the dashed form', () => {
    expect(isIsoDate('2020-01-05')).toBe(true);
    expect(isIsoDate('2020.01.05')).toBe(false);
    expect(isIsoDate('2020-02-30')).toBe(false);
    expect(isIsoDate(20200105)).toBe(false);
  });
});

describe('validateLoans (property-based)', () => {
  it('generated loans always validate, survive JSON and normalize their debt exactly', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 60 }), (seed, count) => {
        const wire = generateLoans(seed, count);
        const loans = loansOf(JSON.parse(JSON.stringify(wire)), { absSystems: ['way4'], maxItems: 100 });
        expect(loans).toHaveLength(count);
        loans.forEach((loan, i) => {
          expect(loan.iinbin).toBe(wire[i].iinbin);
          expect(loan.debt).toBe((wire[i].debt as number).toFixed(2));
        });
      }),
      { numRuns: 200 },
    );
  });

  it('validated loans validate again unchanged (idempotent)', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const loans = loansOf(generateLoans(seed, 5));
        expect(loansOf(loans)).toEqual(loans);
      }),
    );
  });

  it('one corrupted field of a generated loan is reported at its index and field', () => {
    const corruptions: Record<string, unknown[]> = {
      iban: ['KZ000000000000000000', 'KZ00722S000000000000', 'kz', 7],
      cur: ['KZ', 'kzt', ''],
      debt: [-1, 0.001, '1e3', {}],
      fullname: ['', '\u0007', 3],
      contract_number: ['', 'KD 1 ', '<>', 'x'.repeat(65)],
      iinbin: ['000000000000', '12345', '890101402472'],
      overdue_days: [-1, 0.5, 36501, '1'],
      system: ['WAY4', ''],
      dbz_date: ['2020-02-30', '1980-01-01', 1],
    };
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 9 }), fc.constantFrom(...Object.keys(corruptions)), fc.nat(), (seed, position, field, choice) => {
        const body: EkoLoanItem[] = generateLoans(seed, 10);
        const values = corruptions[field];
        (body[position] as unknown as Record<string, unknown>)[field] = values[choice % values.length];
        const problems = problemsOf(body, { absSystems: ['way4'], maxItems: 10 });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatchObject({ index: position, field });
      }),
    );
  });

  it('never throws on arbitrary JSON; ok means valid loans, otherwise there are problems', () => {
    const anyBody = fc.oneof(
      fc.jsonValue(),
      fc.array(fc.jsonValue(), { minLength: 1, maxLength: 5 }),
      fc.array(
        fc.dictionary(
          fc.constantFrom('iban', 'cur', 'debt', 'fullname', 'contract_number', 'dbz_contract_number', 'iinbin', 'overdue_days', 'system', 'dbz_date', 'x'),
          fc.jsonValue(),
        ),
        { minLength: 1, maxLength: 5 },
      ),
      fc.anything({
        withNullPrototype: true,
        withBigInt: true,
        withBoxedValues: true,
        withSparseArray: true,
        withMap: true,
        withSet: true,
        withDate: true,
        withTypedArray: true,
      }),
      fc.array(fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true }), { minLength: 1 }),
    );
    fc.assert(
      fc.property(anyBody, (body) => {
        const result = validateLoans(body, OPTS);
        if (result.ok) {
          expect(result.loans.length).toBeGreaterThan(0);
          expect(validateLoans(result.loans, OPTS)).toEqual(result);
        } else {
          expect(result.problems.length > 0 || result.bodyProblem !== undefined).toBe(true);
          const indexes = result.problems.map((p) => p.index);
          expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary single-field values never make an otherwise valid item throw', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('iban', 'cur', 'debt', 'fullname', 'contract_number', 'iinbin', 'overdue_days', 'system', 'dbz_date'),
        fc.anything(),
        (field, value) => {
          const result = validateLoans([{ ...generateLoan(mulberry32(1)), [field]: value }], OPTS);
          if (!result.ok) expect(result.problems.every((p) => p.index === 0 && p.field === field)).toBe(true);
        },
      ),
    );
  });
});

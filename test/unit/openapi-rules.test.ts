/**
 * The Loan schema of the OpenAPI document against the validator, field by field, on generated values
 * (fast-check): a fuzzer that reads the document (test/e2e/fuzz-api.test.ts) expects every value the
 * document calls invalid to be rejected, so a value K2 accepts must be valid by the document. Where the
 * document states the rule whole (contract numbers, debt as a string) the two agree both ways.
 */
import fc from 'fast-check';
import { openApiDocument } from '../../api/openapi';
import { generateLoans } from '../../domain/generate';
import { validateLoanItem } from '../../domain/loan';

type Schema = {
  type?: string | readonly string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
};

const props = openApiDocument.components.schemas.Loan.properties as unknown as Record<string, Schema>;
const ABS_SYSTEMS = ['way4', 'colvir'];
const [base] = generateLoans(99, 1);

/** JSON Schema's verdict on `value`, for the keywords the Loan schema uses (JSON Schema counts code points; patterns are ECMA with u). */
function schemaAccepts(schema: Schema, value: unknown): boolean {
  const types = schema.type === undefined ? [] : ([] as string[]).concat(schema.type);
  const typeOf = value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
  if (types.length && !types.includes(typeOf) && !(typeOf === 'integer' && types.includes('number'))) return false;
  if (typeof value === 'string') {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength) return false;
    if (schema.maxLength !== undefined && length > schema.maxLength) return false;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return false;
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return false;
    if (schema.maximum !== undefined && value > schema.maximum) return false;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return false;
  }
  return true;
}

/** Whether K2's validator accepts `value` as the loan's `field` (the rest of the loan valid). */
function k2Accepts(field: string, value: unknown): boolean {
  const result = validateLoanItem({ ...base, [field]: value }, { absSystems: ABS_SYSTEMS });
  return result.ok || !result.problems.some((p) => p.field === field);
}

const contractChars = fc.constantFrom(...'AZaz09-_/.№ ФЗѐӿ+\t,é\u00a0'.split(''));

test.each(['contract_number', 'dbz_contract_number'])("%s: the document states the validator's rule exactly", (field) => {
  expect(props[field].pattern).toBeDefined();
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: contractChars, maxLength: 70 }), fc.string({ maxLength: 8 })), (value) => {
      expect(schemaAccepts(props[field], value)).toBe(k2Accepts(field, value));
    }),
    { numRuns: 3000, examples: [['A-1'], [' A'], ['A '], ['a+b'], ['№ 5/ФЗ'], ['x'.repeat(64)], ['x'.repeat(65)]] },
  );
});

test("debt as a string: the pattern is the validator's rule exactly", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'0123456789.-e+ ,'.split('')), maxLength: 20 }), (value) => {
      expect(schemaAccepts(props.debt, value)).toBe(k2Accepts('debt', value));
    }),
    { numRuns: 3000, examples: [['0'], ['00'], ['0.5'], ['1500.50'], ['1.234'], ['-1'], ['1e3'], ['9'.repeat(15)], ['9'.repeat(16)], ['']] },
  );
});

test('debt as a number: every amount the validator accepts is within the documented bounds, and a negative one is outside', () => {
  fc.assert(
    fc.property(fc.oneof(fc.double(), fc.integer(), fc.double({ min: -1e16, max: 1e16 })), (value) => {
      if (k2Accepts('debt', value)) expect(schemaAccepts(props.debt, value)).toBe(true);
    }),
    { numRuns: 3000, examples: [[-0], [0], [999_999_999_999_999], [1e15]] },
  );
  expect(schemaAccepts(props.debt, -0.01)).toBe(false);
});

test('fullname: every name the validator accepts is valid by the document, whitespace runs and all', () => {
  const padded = `  ${'Иванов   '.repeat(40)}Иван  `; // 366 characters as sent, 281 after collapsing: too long either way
  const collapsing = `${'A  '.repeat(100)}B`; // 301 as sent, 201 as K2 keeps it
  expect(k2Accepts('fullname', padded)).toBe(false);
  expect(k2Accepts('fullname', collapsing)).toBe(true);
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: fc.constantFrom('A', ' ', '\t', '\n', 'Ж'), maxLength: 400 }), fc.constant(collapsing)),
      (value) => {
        if (k2Accepts('fullname', value)) expect(schemaAccepts(props.fullname, value)).toBe(true);
      },
    ),
    { numRuns: 2000 },
  );
  expect(schemaAccepts(props.fullname, '   ')).toBe(false);
});

test('dbz_date: null (the same as absent) and every date the validator accepts are valid by the document', () => {
  expect(k2Accepts('dbz_date', null)).toBe(true);
  expect(schemaAccepts(props.dbz_date, null)).toBe(true);
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'0123456789-./ '.split('')), maxLength: 12 }), (value) => {
      if (k2Accepts('dbz_date', value)) expect(schemaAccepts(props.dbz_date, value)).toBe(true);
    }),
    { numRuns: 3000, examples: [['2020-01-31'], ['2020.01.31'], ['2020-01.31'], ['1989-12-31']] },
  );
  expect(schemaAccepts(props.dbz_date, '2020-01.31')).toBe(false);
});

test('system: an empty code is invalid by the document, as K2 rejects it', () => {
  expect(k2Accepts('system', '')).toBe(false);
  expect(schemaAccepts(props.system, '')).toBe(false);
});

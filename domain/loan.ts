/**
 * The EKO loan item (k2loan_from_eko, DOMAIN.md §3) and its validation.
 *
 * Rules chosen where the seed is silent:
 *  - Every problem of every item is reported, in index order (then field order within an item),
 *    so EKO can fix a whole batch in one round. Indexes are 0-based positions in the JSON array.
 *  - Identifiers (iban, iinbin, cur, contract_number, dbz_contract_number, system) must arrive
 *    exactly: no surrounding whitespace, no case folding. They are keys compared with ABS and GKB,
 *    and a silently rewritten key is worse than a rejected one. `fullname` is display text, so it
 *    is trimmed and inner whitespace runs are collapsed instead.
 *  - Unknown extra fields are ignored (EKO may add fields before K2 knows them); they are not
 *    carried into the Loan.
 *  - `dbz_date` (gap G1) is optional; null counts as absent. Both wire date forms are accepted and
 *    normalized to YYYY-MM-DD; dates before 1990-01-01 are rejected. There is no clock here, so no
 *    "not in the future" rule.
 *  - Two items with the same contract_number: if their normalized data is identical they collapse
 *    into the first; otherwise the later one is a problem naming the earlier index. Only items that
 *    are valid on their own take part (an invalid item already fails the request).
 */
import { isIso4217 } from './currency';
import { parseWireDate } from './dates';
import { ibanProblem } from './iban';
import { iinBinProblem } from './iin';
import { moneyProblem, parseMoney } from './money';

/** A validated, normalized loan: what the rest of K2 works with. Keys are always in this order. */
export interface Loan {
  iban: string;
  cur: string;
  /** Normalized money, e.g. "2000000.00". */
  debt: string;
  fullname: string;
  contract_number: string;
  dbz_contract_number: string;
  iinbin: string;
  overdue_days: number;
  system: string;
  /** YYYY-MM-DD, gap G1. */
  dbz_date?: string;
}

/** A loan as EKO sends it: `debt` is a JSON number or a decimal string, `dbz_date` may use dots. */
export type EkoLoanItem = Omit<Loan, 'debt'> & { debt: number | string };

/** `field` is '' when the problem is the item as a whole (e.g. it is not an object). */
export interface ItemProblem {
  index: number;
  field: string;
  reason: string;
}

export interface LoanValidationOptions {
  /** ABS system codes a loan may name, compared case-sensitively. */
  absSystems: readonly string[];
  maxItems: number;
}

export type LoanValidation = { ok: true; loans: Loan[] } | { ok: false; problems: ItemProblem[]; bodyProblem?: string };

export const MAX_CONTRACT_NUMBER_LENGTH = 64;
export const MAX_FULLNAME_LENGTH = 256;
export const MAX_OVERDUE_DAYS = 36500;
export const EARLIEST_DBZ_DATE = '1990-01-01';

/** Latin and Cyrillic (incl. Kazakh) letters, digits, and the separators seen in bank contract numbers. */
const CONTRACT_NUMBER_CHARS = /^[A-Za-z\u0400-\u04FF0-9\-_/.№ ]+$/;
const CONTROL_CHARS = /[\u0000-\u001F\u007F-\u009F]/;

// Globals read once: under jest every read of a global such as `Number` goes through the test
// sandbox at ~100x the cost of a local, and these functions run 50,000 times per big request.
const { hasOwn } = Object;

type Fields = Record<string, unknown>;

export function validateLoans(body: unknown, opts: LoanValidationOptions): LoanValidation {
  if (!Array.isArray(body)) return { ok: false, problems: [], bodyProblem: 'must be a JSON array of loans' };
  if (body.length === 0) return { ok: false, problems: [], bodyProblem: 'must contain at least one loan' };
  if (body.length > opts.maxItems) {
    return { ok: false, problems: [], bodyProblem: `too many loans: ${body.length}, at most ${opts.maxItems} per request` };
  }

  const problems: ItemProblem[] = [];
  const loans: Loan[] = [];
  const firstByContract = new Map<string, { index: number; loan: Loan }>();

  for (let index = 0; index < body.length; index++) {
    const result = validateLoanItem(body[index], opts);
    if (!result.ok) {
      for (const p of result.problems) problems.push({ index, field: p.field, reason: p.reason });
      continue;
    }
    const loan = result.loan;
    const first = firstByContract.get(loan.contract_number);
    if (first === undefined) {
      firstByContract.set(loan.contract_number, { index, loan });
      loans.push(loan);
      continue;
    }
    const differing = differingFields(first.loan, loan);
    if (differing.length > 0) {
      problems.push({
        index,
        field: 'contract_number',
        reason: `same contract_number as item ${first.index} with different data (${differing.join(', ')})`,
      });
    }
    // Identical repeat: dropped, the first occurrence stands for both.
  }

  return problems.length > 0 ? { ok: false, problems } : { ok: true, loans };
}

type FieldProblem = { field: string; reason: string };

/** One item on its own (no duplicate check). */
export function validateLoanItem(
  item: unknown,
  opts: Pick<LoanValidationOptions, 'absSystems'>,
): { ok: true; loan: Loan } | { ok: false; problems: FieldProblem[] } {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return { ok: false, problems: [{ field: '', reason: 'must be a JSON object' }] };
  }
  // Own properties only: an inherited `iban` is not something EKO sent.
  const get = (field: string): unknown => (hasOwn(item, field) ? (item as Fields)[field] : undefined);
  const problems: FieldProblem[] = [];
  const check = (field: string, reason: string | undefined): void => {
    if (reason !== undefined) problems.push({ field, reason });
  };

  const iban = get('iban');
  check('iban', identifierProblem(iban) ?? ibanProblem(iban));

  const cur = get('cur');
  check('cur', identifierProblem(cur) ?? (isIso4217(cur) ? undefined : 'not an ISO 4217 currency code (upper case, e.g. KZT)'));

  const debt = get('debt');
  check('debt', debt === undefined || debt === null ? 'is required' : moneyProblem(debt));

  const fullname = get('fullname');
  check('fullname', fullnameProblem(fullname));

  const contractNumber = get('contract_number');
  check('contract_number', identifierProblem(contractNumber) ?? contractNumberProblem(contractNumber as string));

  const dbzContractNumber = get('dbz_contract_number');
  check('dbz_contract_number', identifierProblem(dbzContractNumber) ?? contractNumberProblem(dbzContractNumber as string));

  const iinbin = get('iinbin');
  check('iinbin', identifierProblem(iinbin) ?? iinBinProblem(iinbin));

  const overdueDays = get('overdue_days');
  check('overdue_days', overdueDaysProblem(overdueDays));

  const system = get('system');
  check('system', identifierProblem(system) ?? systemProblem(system as string, opts.absSystems));

  const dbzDateValue = get('dbz_date');
  const dbzDate = dbzDateValue === undefined || dbzDateValue === null ? undefined : parseWireDate(dbzDateValue);
  if (dbzDateValue !== undefined && dbzDateValue !== null) check('dbz_date', dbzDateProblem(dbzDateValue, dbzDate));

  if (problems.length > 0) return { ok: false, problems };

  const loan: Loan = {
    iban: iban as string,
    cur: cur as string,
    debt: parseMoney(debt),
    fullname: normalizeFullname(fullname as string),
    contract_number: contractNumber as string,
    dbz_contract_number: dbzContractNumber as string,
    iinbin: iinbin as string,
    overdue_days: overdueDays as number,
    system: system as string,
  };
  if (dbzDate !== undefined) loan.dbz_date = dbzDate;
  return { ok: true, loan };
}

/** The checks every identifier shares; the field's own check runs only when this passes. */
function identifierProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'is required';
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.trim() !== value) return 'must not have leading or trailing whitespace';
  return undefined;
}

function contractNumberProblem(value: string): string | undefined {
  if (value.length > MAX_CONTRACT_NUMBER_LENGTH) return `longer than ${MAX_CONTRACT_NUMBER_LENGTH} characters`;
  if (!CONTRACT_NUMBER_CHARS.test(value)) return 'only letters, digits, spaces and - _ / . № are allowed';
  return undefined;
}

function normalizeFullname(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

function fullnameProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'is required';
  if (typeof value !== 'string') return 'must be a string';
  const name = normalizeFullname(value);
  if (name.length === 0) return 'must not be empty';
  if (CONTROL_CHARS.test(name)) return 'must not contain control characters';
  // Characters, not UTF-16 units; the cheap length test first, as a name has no more characters than units.
  if (name.length > MAX_FULLNAME_LENGTH && [...name].length > MAX_FULLNAME_LENGTH) return `longer than ${MAX_FULLNAME_LENGTH} characters`;
  return undefined;
}

function overdueDaysProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'is required';
  if (typeof value !== 'number') return 'must be a number';
  if (!Number.isInteger(value)) return 'must be a whole number of days';
  if (value < 0) return 'must not be negative';
  if (value > MAX_OVERDUE_DAYS) return `must be at most ${MAX_OVERDUE_DAYS}`;
  return undefined;
}

function systemProblem(value: string, absSystems: readonly string[]): string | undefined {
  return absSystems.includes(value) ? undefined : `unknown ABS system ${JSON.stringify(value)} (known: ${absSystems.join(', ')})`;
}

function dbzDateProblem(value: unknown, parsed: string | undefined): string | undefined {
  if (typeof value !== 'string') return 'must be a date string YYYY-MM-DD or YYYY.MM.DD';
  if (parsed === undefined) return 'not a real date in the form YYYY-MM-DD or YYYY.MM.DD';
  if (parsed < EARLIEST_DBZ_DATE) return `before ${EARLIEST_DBZ_DATE}`;
  return undefined;
}

const LOAN_FIELDS: readonly (keyof Loan)[] = [
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
];

function differingFields(a: Loan, b: Loan): string[] {
  return LOAN_FIELDS.filter((field) => a[field] !== b[field]);
}

/**
 * Problems as one line for error_text, cut to maxLength: "item 3 field iban: mod-97 check failed;
 * item 7 field debt: more than 2 decimals; … and 12 more". Never longer than maxLength.
 */
export function formatProblems(problems: readonly ItemProblem[], maxLength: number): string {
  const parts = problems.map((p) => (p.field === '' ? `item ${p.index}: ${p.reason}` : `item ${p.index} field ${p.field}: ${p.reason}`));
  const more = (n: number): string => `… and ${n} more`;

  let text = '';
  let shown = 0;
  for (; shown < parts.length; shown++) {
    const candidate = text === '' ? parts[shown] : `${text}; ${parts[shown]}`;
    const remaining = parts.length - shown - 1;
    const withTail = remaining > 0 ? `${candidate}; ${more(remaining)}` : candidate;
    if (withTail.length > maxLength) break;
    text = candidate;
  }
  if (shown === parts.length) return text;
  if (shown > 0) return `${text}; ${more(parts.length - shown)}`;
  // Not even the first problem fits with its tail: cut it.
  const tail = parts.length > 1 ? ` and ${parts.length - 1} more` : '';
  const room = maxLength - tail.length - 1; // 1 for the '…' that marks the cut
  if (room <= 0) return `${parts.length} problems`.slice(0, Math.max(0, maxLength));
  return `${parts[0].slice(0, room)}…${tail}`;
}

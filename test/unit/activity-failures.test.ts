/** The case activities' failure mapping (activities/index.ts): types per integration, and no personal data in messages. */
import { absFailure, ekoFailure, k2DatabaseFailure, redactPersonalData } from '../../activities';
import { AbsProtocolError, AbsTransientError } from '../../integrations/abs';
import { EkoRejectedError, EkoTransientError } from '../../integrations/eko';
import { DocumentRejectedError } from '../../documents/store';
import { ATTENTION_FOR_FAILURE, isFailureType, RETRYABLE_FAILURE_TYPES } from '../../domain/failures';

describe('redactPersonalData', () => {
  it.each([
    ['an IIN', 'client 850210301893 unknown', 'client <IIN/BIN> unknown'],
    ['a KZ IBAN', 'account KZ86125KZT5004100100 closed', 'account <IBAN> closed'],
    ['a lower-case IBAN', 'kz86125kzt5004100100', '<IBAN>'],
    [
      "V8's quoted JSON snippet",
      `ABS client: answer is not valid JSON (Unexpected token 'И', "Иванов Ива"... is not valid JSON)`,
      "ABS client: answer is not valid JSON (Unexpected token 'И', (answer text omitted) is not valid JSON)",
    ],
    ['a short snippet', `Unexpected token 'o', "oops" is not valid JSON`, "Unexpected token 'o', (answer text omitted) is not valid JSON"],
  ])('masks %s', (_label, text, expected) => {
    expect(redactPersonalData(text)).toBe(expected);
  });

  it.each([
    'ABS statement: stmt[0].amount missing',
    'payment demand PTP00000000001 is not in the database',
    'contract KD0000000001',
    'HTTP 503',
    'no answer within 10000 ms',
    'a 13-digit number 1234567890123 is not an IIN',
    "Expected ',' or '}' after property value in JSON at position 50",
  ])('keeps %j', (text) => {
    expect(redactPersonalData(text)).toBe(text);
  });
});

describe('failure types', () => {
  const cases: Array<[string, () => ReturnType<typeof absFailure>, string, boolean]> = [
    ['ABS transient', () => absFailure('ABS accounts', new AbsTransientError('accounts', 'HTTP 503', 503)), 'AbsUnavailable', true],
    ['ABS protocol', () => absFailure('ABS accounts', new AbsProtocolError('accounts', 'ibans missing')), 'AbsProtocolError', false],
    ['ABS scan not storable', () => absFailure('ABS loan-agreement scan', new DocumentRejectedError('document is empty')), 'AbsProtocolError', false],
    ['ABS, an unexpected error in the call', () => absFailure('ABS statement', new RangeError('dt is not a date')), 'AbsProtocolError', false],
    ['EKO transient', () => ekoFailure('EKO payment demand', new EkoTransientError('EKO answered HTTP 503', 503)), 'EkoUnavailable', true],
    ['EKO rejected', () => ekoFailure('EKO payment demand', new EkoRejectedError(2, 'refused', 200)), 'EkoRejected', false],
    ['EKO, an unexpected error', () => ekoFailure('EKO payment demand', new TypeError('x')), 'EkoRejected', false],
    [
      'K2 database busy',
      () => k2DatabaseFailure('K2 database: issue', Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })),
      'K2DatabaseUnavailable',
      true,
    ],
    [
      'K2 database refusing',
      () => k2DatabaseFailure('K2 database: issue', Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' })),
      'K2DatabaseError',
      false,
    ],
  ];

  it.each(cases)('%s', (_label, make, type, retryable) => {
    const f = make();
    expect({ type: f.type, nonRetryable: f.nonRetryable }).toEqual({ type, nonRetryable: !retryable });
    expect(isFailureType(f.type)).toBe(true);
    expect(RETRYABLE_FAILURE_TYPES.has(f.type as string)).toBe(retryable);
    expect(ATTENTION_FOR_FAILURE).toHaveProperty(f.type as string);
  });

  it('names the call and masks personal data in the message', () => {
    const f = ekoFailure('EKO payment demand', new EkoRejectedError(2, 'client 850210301893 has no account KZ86125KZT5004100100', 200));
    expect(f.message).toBe('EKO payment demand: EKO rejected the demand (code 2): client <IIN/BIN> has no account <IBAN>');
    expect(f.details).toEqual([{ code: 2, httpStatus: 200 }]);
  });
});

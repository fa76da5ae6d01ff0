/**
 * The rules test/e2e/fuzz-api.test.ts applies to a schemathesis cassette (test/helpers/fuzz-cassette.ts),
 * on hand-made cassettes: each rule holds for a clean run and fails, naming the request, for the
 * violation it is there for.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  caseViolations,
  contractTrails,
  demandStatusViolations,
  failedCheckLines,
  namedContracts,
  outboxViolations,
  readCassette,
  readmeErrorCodes,
  type Exchange,
} from '../helpers/fuzz-cassette';

const LOANS = '/restapi/services/k2loan_from_eko';
const STATUS = '/restapi/services/k2req_status_from_eko';
const OK = { error_code: 0, error_text: '' };
const INVALID = { error_code: 1, error_text: 'item 0 field iban: mod-97 check failed' };

const loans = (id: string, items: unknown[], answer = OK): Exchange => ({
  id,
  method: 'POST',
  path: LOANS,
  body: JSON.stringify(items),
  status: answer.error_code === 0 ? 200 : 400,
  answer,
  failedChecks: [],
});
const status = (id: string, reference: string, code: string, answer = OK): Exchange => ({
  id,
  method: 'POST',
  path: STATUS,
  body: JSON.stringify({ reference, status_code: code }),
  status: answer.error_code === 0 ? 200 : 400,
  answer,
  failedChecks: [],
});
const item = (contract_number: unknown, debt: unknown = '100') => ({ contract_number, debt });

test('readCassette reads ids, bodies (plain and base64), answers and failed checks', () => {
  const interaction = (id: string, body: Record<string, string>, response: unknown, checks: unknown[] = []) => ({
    id,
    request: { uri: `http://127.0.0.1:1${LOANS}`, method: 'POST', body },
    response,
    checks,
  });
  const yaml = YAML.stringify({
    http_interactions: [
      interaction(
        'a1',
        { encoding: 'utf-8', base64_string: Buffer.from('[{"contract_number":"Ж-1"}]').toString('base64') },
        { status: { code: '200' }, body: { base64_string: Buffer.from(JSON.stringify(OK)).toString('base64') } },
      ),
      interaction('b2', { encoding: 'utf-8', string: '[1]' }, { status: { code: '400' }, body: { string: JSON.stringify(INVALID) } }, [
        { name: 'not_a_server_error', status: 'SUCCESS', message: null },
        { name: 'k2_documented_answer', status: 'FAILURE', message: 'Custom check failed' },
      ]),
      interaction('c3', { string: '' }, null),
    ],
  });
  const [a, b, c] = readCassette(yaml);
  expect(a).toEqual({ id: 'a1', method: 'POST', path: LOANS, body: '[{"contract_number":"Ж-1"}]', status: 200, answer: OK, failedChecks: [] });
  expect(b.answer).toEqual(INVALID);
  expect(failedCheckLines([a, b, c])).toEqual([`b2 POST ${LOANS} → 400: k2_documented_answer: Custom check failed`]);
  expect(c.status).toBeUndefined();
});

test('namedContracts: the string contract numbers of the object items, once each, with whether the loan is repaid', () => {
  expect(namedContracts(JSON.stringify([item('A'), item('A'), item('B', 0), item('C', '0.00'), item(7), null, 'x', {}]))).toEqual([
    { contract: 'A', repaid: false },
    { contract: 'B', repaid: true },
    { contract: 'C', repaid: true },
  ]);
  expect(namedContracts('{"contract_number":"A"}')).toEqual([]);
  expect(namedContracts('[{"contract_number":"A"')).toEqual([]);
  expect(namedContracts(undefined)).toEqual([]);
});

describe('outboxViolations', () => {
  const run = [loans('acc1', [item('A'), item('B')]), loans('rej1', [item('A'), item('R')], INVALID), loans('acc2', [item('A')])];
  const trails = contractTrails(run, ['S']);

  test('a clean run: one row per accepting request, none for a contract only rejected requests named', () => {
    expect(
      outboxViolations(
        trails,
        new Map([
          ['A', 2],
          ['B', 1],
          ['S', 1],
        ]),
      ),
    ).toEqual([]);
  });

  test('a row of a contract only a rejected request named is a violation naming that request', () => {
    expect(
      outboxViolations(
        trails,
        new Map([
          ['A', 2],
          ['B', 1],
          ['S', 1],
          ['R', 1],
        ]),
      ),
    ).toEqual([expect.stringMatching(/^contract "R": 1 outbox row\(s\), but only 0 accepting .* rejected request\(s\) rej1$/)]);
  });

  test('a contract also accepted gets no extra row from the rejected request', () => {
    expect(
      outboxViolations(
        trails,
        new Map([
          ['A', 3],
          ['B', 1],
          ['S', 1],
        ]),
      ),
    ).toEqual([
      expect.stringContaining('contract "A": 3 outbox row(s), but only 2 accepting request(s) (acc1, acc2); the rest came from rejected request(s) rej1'),
    ]);
  });

  test('a missing row of an accepted request, and a row from no request at all, are violations too', () => {
    expect(
      outboxViolations(
        trails,
        new Map([
          ['A', 1],
          ['B', 1],
          ['S', 1],
          ['Z', 1],
        ]),
      ),
    ).toEqual([
      expect.stringContaining('contract "A": 1 outbox row(s) for 2 accepting request(s) (acc1, acc2): an accepted item is missing'),
      expect.stringContaining('contract "Z": 1 outbox row(s), but only 0 accepting request(s) (none); the rest came from no request of the run'),
    ]);
  });
});

describe('caseViolations', () => {
  const trails = contractTrails([loans('acc', [item('A'), item('P', 0)]), loans('rej', [item('R')], INVALID)]);

  test('cases for the contracts accepted overdue; a repaid item needs none', () => {
    expect(caseViolations(trails, new Set(['A']))).toEqual([]);
    expect(caseViolations(trails, new Set(['A', 'P']))).toEqual([]);
  });

  test('a case of a rejected contract, or an accepted overdue contract without one, is a violation', () => {
    expect(caseViolations(trails, new Set(['A', 'R']))).toEqual(['case-R: a case for a contract no request got accepted (rejected: rej)']);
    expect(caseViolations(trails, new Set())).toEqual(['contract "A": accepted overdue by acc but it has no case']);
  });
});

describe('demandStatusViolations', () => {
  const before = new Map([
    ['PTP00000000001', 'sent'],
    ['PTP00000000002', 'sent'],
  ]);
  const run = [
    status('s1', 'PTP00000000001', 'PC3'),
    status('s2', 'PTP00000000001', 'PC1'),
    status('r1', 'PTP00000000002', 'PC3', { error_code: 5, error_text: 'unknown status' }),
  ];

  test('the highest accepted status stands; a rejected request moves nothing', () => {
    expect(
      demandStatusViolations(
        run,
        before,
        new Map([
          ['PTP00000000001', 'PC3'],
          ['PTP00000000002', 'sent'],
        ]),
      ),
    ).toEqual([]);
  });

  test('a status moved by a rejected request is a violation naming it', () => {
    expect(
      demandStatusViolations(
        run,
        before,
        new Map([
          ['PTP00000000001', 'PC3'],
          ['PTP00000000002', 'PC3'],
        ]),
      ),
    ).toEqual(['demand PTP00000000002: status PC3, expected sent from the accepted requests (rejected ones naming it: r1)']);
  });
});

test("readmeErrorCodes reads the README's table, and refuses a row it cannot read", () => {
  const codes = readmeErrorCodes(fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8'));
  expect(codes[0]).toBe(200);
  expect(codes[4]).toBe(404);
  expect(() => readmeErrorCodes('| error_code | HTTP | meaning |\n| --- | --- | --- |\n| x | 200 | ok |\n')).toThrow(/cannot read the row/);
  expect(() => readmeErrorCodes('no table')).toThrow(/no error-code table/);
});

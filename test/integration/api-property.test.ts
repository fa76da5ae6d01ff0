/**
 * Properties of K2's HTTP facade under arbitrary input (fast-check), against the real app, a real
 * SQLite database, the real OutboxDispatcher and a real Temporal dev server (localEnv):
 *  - no body ever gets a 5xx; every answer is exactly { error_text, error_code } with the HTTP status
 *    of its code (api/error-codes.ts);
 *  - a case starts only from a valid body: an answer other than 0 leaves the outbox untouched, and at
 *    the end the workflows in Temporal are exactly the cases of the accepted overdue loans.
 * No worker runs here: whether a workflow is *created* is the observable, not what it then does.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createApp, MAX_LOANS_PER_REQUEST } from '../../api/app';
import { OutboxDispatcher } from '../../api/dispatcher';
import { ERROR_CODES, MAX_ERROR_TEXT } from '../../api/error-codes';
import { Config, DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { countPending } from '../../db/outbox';
import { caseWorkflowId } from '../../domain/case';
import { generateLoans } from '../../domain/generate';
import { EkoLoanItem, validateLoans } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { localEnv } from '../helpers/temporal';

jest.setTimeout(120_000);

const LOANS = '/restapi/services/k2loan_from_eko';
const STATUS = '/restapi/services/k2req_status_from_eko';
const quiet = createLogger('api-property', 'error', {}, () => undefined);
const HTTP_OF_CODE = new Map<number, number>(Object.values(ERROR_CODES).map((e) => [e.code, e.http]));

let env: TestWorkflowEnvironment;
let tmp: string;
let db: Db;
let config: Config;
let dispatcher: OutboxDispatcher;
let server: http.Server;
let base: string;

/** Contracts of every accepted loan with a debt (these, and only these, must have a case). */
const expectedCases = new Set<string>();

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-api-prop-'));
  env = await localEnv();
  config = loadConfig({ ...DEMO_ENV, K2_DATA_DIR: tmp, TEMPORAL_TASK_QUEUE: 'k2-api-property' });
  db = await openDb(config.db);
  const metrics = new Metrics();
  dispatcher = new OutboxDispatcher(db, env.client, config, quiet, metrics);
  const app = createApp({ config, db, temporal: env.client, logger: quiet, metrics, onLoansAccepted: () => dispatcher.nudge() });
  server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dispatcher.start();
});

afterAll(async () => {
  await dispatcher?.stop();
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  await db?.destroy();
  await env?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const outboxRows = async () => Number((await db('loan_outbox').count({ n: '*' }))[0].n);

interface Answer {
  status: number;
  code: number;
  text: string;
}

/** Posts a raw body and checks the answer's invariants; returns it for the property's own checks. */
async function post(pathname: string, body: string | undefined, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(base + pathname, { method: 'POST', headers: { 'content-type': contentType }, body });
  const raw = await res.text();
  expect(res.status).toBeLessThan(500);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const parsed = JSON.parse(raw);
  expect(typeof parsed).toBe('object');
  expect(Object.keys(parsed).sort()).toEqual(['error_code', 'error_text']);
  expect(typeof parsed.error_text).toBe('string');
  expect(parsed.error_text.length).toBeLessThanOrEqual(MAX_ERROR_TEXT);
  expect(HTTP_OF_CODE.get(parsed.error_code)).toBe(res.status);
  return { status: res.status, code: parsed.error_code, text: parsed.error_text };
}

/**
 * Posts to the loan service and checks what it did to the outbox: exactly the valid request's
 * distinct loans on 0, nothing otherwise. The validator is the oracle for *which* bodies are valid
 * (its own rules are tested in test/unit/loan-validation.test.ts); this checks the API keeps to it.
 */
async function postLoansChecked(body: string | undefined, contentType = 'application/json'): Promise<Answer> {
  const before = await outboxRows();
  const answer = await post(LOANS, body, contentType);
  const added = (await outboxRows()) - before;
  if (answer.code !== 0) {
    expect(added).toBe(0);
    return answer;
  }
  let parsed: unknown;
  expect(() => (parsed = JSON.parse(body ?? ''))).not.toThrow();
  const verdict = validateLoans(parsed, { absSystems: config.api.absSystems, maxItems: MAX_LOANS_PER_REQUEST });
  expect(verdict.ok).toBe(true);
  if (verdict.ok) {
    expect(added).toBe(verdict.loans.length);
    for (const loan of verdict.loans) if (!/^0+(\.0+)?$/.test(loan.debt)) expectedCases.add(loan.contract_number);
  }
  return answer;
}

async function postStatusChecked(body: string | undefined): Promise<Answer> {
  const before = await outboxRows();
  const answer = await post(STATUS, body);
  // No demand was ever issued in this database: nothing can be accepted, and a status never touches the outbox.
  expect(answer.code).not.toBe(0);
  expect(await outboxRows()).toBe(before);
  return answer;
}

const serialized = fc.anything().map((v) => JSON.stringify(v) as string | undefined);

test('any JSON document: never a 5xx, always the answer shape, and no case unless it is a valid loan list', async () => {
  await fc.assert(
    fc.asyncProperty(fc.json(), async (text) => {
      await postLoansChecked(text);
      await postStatusChecked(text);
    }),
    { numRuns: 150 },
  );
});

test('any JavaScript value serialized, and arbitrary text: the same', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(serialized, fc.string({ maxLength: 200 })), async (text) => {
      const loans = await postLoansChecked(text);
      const status = await postStatusChecked(text);
      if (text === undefined || text === '') {
        expect(loans.code).toBe(ERROR_CODES.MALFORMED_REQUEST.code);
        // express.json reads an empty body as {}: the status service then names both missing fields.
        expect([ERROR_CODES.MALFORMED_REQUEST.code, ERROR_CODES.VALIDATION.code]).toContain(status.code);
      }
    }),
    { numRuns: 150 },
  );
});

const REQUIRED: Array<keyof EkoLoanItem> = ['iban', 'cur', 'debt', 'fullname', 'contract_number', 'dbz_contract_number', 'iinbin', 'overdue_days', 'system'];
const FIELDS: string[] = [...REQUIRED, 'dbz_date', 'unknown_extra'];

/** Values that are wrong somewhere (or, by chance, fine): the mutation of one field of one item. */
const oddValue = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    0,
    -1,
    1.5,
    1e21,
    36501,
    '',
    ' ',
    '0',
    '0.00',
    '-1',
    '1e3',
    '0.001',
    '12.345',
    'KZT',
    'kzt',
    'USD',
    'XXX',
    'way4',
    'colvir',
    ' way4',
    'WAY4',
  ),
  fc.constantFrom<unknown>(
    '2020-02-30',
    '2020.01.01',
    '1989-12-31',
    '2020-1-1',
    '123456789012',
    '890101402471',
    'KZ86125KZT5004100100',
    'KZ000000000000000000',
    '№ 1/2-а',
    'x'.repeat(300),
    'Имя\u0000Фамилия',
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 30 }),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const) }),
  fc.record({ kind: fc.constant('set' as const), value: oddValue }),
  fc.record({ kind: fc.constant('pad' as const), pad: fc.constantFrom(' ', '\t', '\n', '\u00a0') }),
);

test('arrays of almost-valid loans with one field of one item mutated: accepted only when still valid, else nothing happens', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: 4 }),
      fc.nat(),
      fc.constantFrom(...FIELDS),
      mutation,
      async (seed, count, pickIndex, field, m) => {
        const items: Record<string, unknown>[] = generateLoans(seed, count).map((l) => ({ ...l }));
        const index = pickIndex % count;
        const item = items[index];
        if (m.kind === 'delete') delete item[field];
        else if (m.kind === 'set') item[field] = m.value;
        else if (typeof item[field] === 'string') item[field] = `${m.pad}${item[field]}`;
        else item[field] = `${m.pad}${String(item[field] ?? '')}`;
        const answer = await postLoansChecked(JSON.stringify(items));
        // An independent oracle where one exists: a required field that is absent or null is always named.
        if ((m.kind === 'delete' || (m.kind === 'set' && m.value === null)) && (REQUIRED as string[]).includes(field)) {
          expect(answer.code).toBe(ERROR_CODES.VALIDATION.code);
          expect(answer.text).toContain(`item ${index} field ${field}: is required`);
        }
        // Identifiers must arrive exactly: a padded identifier is never accepted.
        if (m.kind === 'pad' && ['iban', 'cur', 'contract_number', 'dbz_contract_number', 'iinbin', 'system'].includes(field)) {
          expect(answer.code).toBe(ERROR_CODES.VALIDATION.code);
          expect(answer.text).toContain(`item ${index} field ${field}: `);
        }
        // The status service never accepts a loan list.
        await postStatusChecked(JSON.stringify(items));
      },
    ),
    { numRuns: 200 },
  );
});

test('any Content-Type on a valid request: never a 5xx; accepted only as application/json', async () => {
  const headerValue = fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'text/json',
      'application/problem+json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '*/*',
      'application/',
      ';',
    ),
    fc.string({ maxLength: 40 }).filter((s) => /^[\x21-\x7e][\x20-\x7e]*$/.test(s) && !s.endsWith(' ')),
  );
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), headerValue, async (seed, contentType) => {
      const answer = await postLoansChecked(JSON.stringify(generateLoans(seed, 1)), contentType);
      if (answer.code === 0) expect(contentType).toMatch(/^application\/json\s*(;|$)/i);
    }),
    { numRuns: 120 },
  );
});

test('the workflows in Temporal are exactly the cases of the accepted overdue loans', async () => {
  for (let i = 0; (await countPending(db)) > 0; i++) {
    if (i > 300) throw new Error('the outbox was not drained');
    await new Promise((r) => setTimeout(r, 100));
  }
  const expected = [...expectedCases].map(caseWorkflowId).sort();
  expect(expected.length).toBeGreaterThan(10); // the properties above did accept loans: the comparison is not vacuous
  let listed: string[] = [];
  for (let i = 0; i < 100; i++) {
    listed = [];
    for await (const w of env.client.workflow.list()) listed.push(w.workflowId);
    listed = [...new Set(listed)].sort();
    if (listed.length >= expected.length) break;
    await new Promise((r) => setTimeout(r, 100)); // visibility trails a little
  }
  expect(listed).toEqual(expected);
});

/**
 * The OpenAPI document K2 serves at /openapi.json describes the app that serves it: its two routes,
 * every answer code, and the same Loan / DemandStatus rules the validators enforce. Served by the real
 * app on an ephemeral port; no Temporal is needed (a lazy client that never connects).
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { createApp, MAX_LOANS_PER_REQUEST } from '../../api/app';
import { ERROR_CODES, ErrorCodeName, MAX_ERROR_TEXT } from '../../api/error-codes';
import { openApiDocument } from '../../api/openapi';
import { DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { DEMAND_STATUSES, formatDemandReference } from '../../domain/demand-status';
import { generateLoans } from '../../domain/generate';
import { MAX_CONTRACT_NUMBER_LENGTH, MAX_FULLNAME_LENGTH, MAX_OVERDUE_DAYS, validateLoanItem, validateLoans } from '../../domain/loan';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';

const SERVICES = '/restapi/services';
const config = loadConfig({ ...DEMO_ENV, K2_API_AUTH: 'none', K2_DB_URL: ':memory:' });

let db: Db;
let connection: Connection;
let app: ReturnType<typeof createApp>;
let server: http.Server;
let doc: any;

beforeAll(async () => {
  db = await openDb({ client: 'sqlite', url: ':memory:' });
  connection = Connection.lazy({ address: '127.0.0.1:1' }); // never used: nothing here talks to Temporal
  app = createApp({
    config,
    db,
    temporal: new Client({ connection }),
    logger: createLogger('openapi-test', 'error', {}, () => undefined),
    metrics: new Metrics(),
  });
  server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = await res.json();
});

afterAll(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  await connection?.close();
  await db?.destroy();
});

/** The routes express really has under /restapi/services, as { path: [methods] }. */
function serviceRoutes(): Record<string, string[]> {
  const stack: any[] = (app as any).router.stack;
  const mounts = stack.filter((layer) => layer.rawPath === SERVICES && Array.isArray(layer.handle?.stack));
  expect(mounts).toHaveLength(1);
  const routes: Record<string, string[]> = {};
  for (const layer of mounts[0].handle.stack) {
    if (!layer.route) continue;
    routes[SERVICES + layer.route.path] = Object.keys(layer.route.methods)
      .filter((m) => layer.route.methods[m])
      .sort();
  }
  return routes;
}

test('the served document is OpenAPI 3.1 and equals the one in api/openapi.ts', () => {
  expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
  expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
  expect(doc.info.title).toBeTruthy();
});

test('it lists exactly the two service paths the app routes, with their methods', () => {
  const routes = serviceRoutes();
  expect(Object.keys(routes).sort()).toEqual([`${SERVICES}/k2loan_from_eko`, `${SERVICES}/k2req_status_from_eko`]);
  const documented = Object.fromEntries(Object.entries(doc.paths).map(([p, ops]) => [p, Object.keys(ops as object).sort()]));
  expect(documented).toEqual(routes);
});

test('every error code appears: in the answer schema, in the table of the description, and in the responses', () => {
  const codes = Object.values(ERROR_CODES).map((e) => e.code);
  expect(new Set(codes).size).toBe(codes.length); // never reused
  expect([...doc.components.schemas.Answer.properties.error_code.enum].sort((a: number, b: number) => a - b)).toEqual([...codes].sort((a, b) => a - b));
  expect(doc.components.schemas.Answer.required.sort()).toEqual(['error_code', 'error_text']);
  expect(doc.components.schemas.Answer.properties.error_text.maxLength).toBe(MAX_ERROR_TEXT);
  for (const { code, http, meaning } of Object.values(ERROR_CODES)) {
    expect(doc.info.description).toContain(`| ${code} | ${http} | ${meaning} |`);
  }
  // What each service can answer is documented under its HTTP status (NOT_FOUND is for other paths).
  const canAnswer: Record<string, ErrorCodeName[]> = {
    [`${SERVICES}/k2loan_from_eko`]: [
      'OK',
      'VALIDATION',
      'MALFORMED_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'UNAUTHORIZED',
      'TOO_MANY_REQUESTS',
      'TEMPORARILY_UNAVAILABLE',
      'INTERNAL',
    ],
    [`${SERVICES}/k2req_status_from_eko`]: [
      'OK',
      'VALIDATION',
      'MALFORMED_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'UNKNOWN_REFERENCE',
      'UNKNOWN_STATUS_CODE',
      'UNAUTHORIZED',
      'TOO_MANY_REQUESTS',
      'TEMPORARILY_UNAVAILABLE',
      'INTERNAL',
    ],
  };
  const mentioned = new Set<number>();
  for (const [p, names] of Object.entries(canAnswer)) {
    const responses = doc.paths[p].post.responses;
    for (const name of names) {
      const { code, http } = ERROR_CODES[name];
      expect(responses[String(http)]?.description).toContain(`error_code ${code}:`);
      // The Answer, narrowed to the codes of this HTTP status, which include this one.
      const schema = responses[String(http)].content['application/json'].schema;
      expect(schema.allOf[0]).toEqual({ $ref: '#/components/schemas/Answer' });
      expect(schema.allOf[1].properties.error_code.enum).toContain(code);
      expect(schema.allOf[1].properties.error_code.enum.every((c: number) => Object.values(ERROR_CODES).find((e) => e.code === c)?.http === http)).toBe(true);
      mentioned.add(code);
    }
  }
  // NOT_FOUND is for other paths, FORBIDDEN for /metrics and /ready only.
  expect(
    Object.values(ERROR_CODES)
      .filter((e) => !mentioned.has(e.code))
      .map((e) => e.code),
  ).toEqual([ERROR_CODES.NOT_FOUND.code, ERROR_CODES.FORBIDDEN.code]);
  // "Too many requests" says when to come back, on every service.
  for (const p of Object.keys(canAnswer)) {
    expect(doc.paths[p].post.responses[String(ERROR_CODES.TOO_MANY_REQUESTS.http)].headers['Retry-After'].schema).toEqual({ type: 'integer', minimum: 1 });
  }
});

test("the README's error-code table is ERROR_CODES: every code in order, with its HTTP status and meaning", () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8').replace(/\r\n/g, '\n');
  const header = '| error_code | HTTP | meaning |\n| --- | --- | --- |\n';
  const start = readme.indexOf(header);
  expect(start).toBeGreaterThanOrEqual(0);
  const rows = readme
    .slice(start + header.length)
    .split('\n\n')[0]
    .split('\n');
  // The README may set names in `code`; otherwise the text is the code's own.
  expect(rows.map((r) => r.replace(/`/g, ''))).toEqual(Object.values(ERROR_CODES).map((e) => `| ${e.code} | ${e.http} | ${e.meaning} |`));
});

test("the Loan schema's required fields are the fields validateLoans requires, and its properties the fields it reads", () => {
  const loanSchema = doc.components.schemas.Loan;
  const [valid] = generateLoans(42, 1);
  expect(validateLoans([valid], { absSystems: config.api.absSystems, maxItems: 1 }).ok).toBe(true);
  const required: string[] = [];
  for (const field of Object.keys(valid)) {
    const { [field]: _omit, ...without } = valid as unknown as Record<string, unknown>;
    const result = validateLoanItem(without, { absSystems: config.api.absSystems });
    if (!result.ok && result.problems.some((p) => p.field === field && p.reason === 'is required')) required.push(field);
  }
  expect(required).toContain('iban');
  expect([...loanSchema.required].sort()).toEqual(required.sort());
  // Every field the validated Loan carries (dbz_date included) is described.
  const accepted = validateLoanItem(valid, { absSystems: config.api.absSystems });
  if (!accepted.ok) throw new Error('generated loan invalid');
  expect(Object.keys(loanSchema.properties).sort()).toEqual(Object.keys(accepted.loan).sort());
  // Limits the document states are the validator's.
  expect(loanSchema.properties.overdue_days.maximum).toBe(MAX_OVERDUE_DAYS);
  expect(loanSchema.properties.contract_number.maxLength).toBe(MAX_CONTRACT_NUMBER_LENGTH);
  expect(loanSchema.properties.dbz_contract_number.maxLength).toBe(MAX_CONTRACT_NUMBER_LENGTH);
  // fullname's limit is on the normalized name, which a schema cannot state: in the description only.
  expect(loanSchema.properties.fullname.maxLength).toBeUndefined();
  expect(loanSchema.properties.fullname.description).toContain(`1 to ${MAX_FULLNAME_LENGTH} characters`);
  const body = doc.paths[`${SERVICES}/k2loan_from_eko`].post.requestBody.content['application/json'].schema;
  expect(body).toMatchObject({ type: 'array', minItems: 1, maxItems: MAX_LOANS_PER_REQUEST, items: { $ref: '#/components/schemas/Loan' } });
});

test("valid loans and references match the document's patterns", () => {
  const props = doc.components.schemas.Loan.properties;
  for (const loan of generateLoans(7, 300)) {
    for (const field of ['iban', 'cur', 'iinbin'] as const) expect(loan[field]).toMatch(new RegExp(props[field].pattern));
    expect(props.system.description).toContain('K2_ABS_SYSTEMS');
  }
  const reference = doc.components.schemas.DemandStatus.properties.reference.pattern;
  for (const n of [0, 1, 12345, 99_999_999_999]) expect(formatDemandReference(n)).toMatch(new RegExp(reference));
  expect('PTP1').not.toMatch(new RegExp(reference));
});

test('the status enum equals the keys of DEMAND_STATUSES', () => {
  const statusSchema = doc.components.schemas.DemandStatus;
  expect([...statusSchema.properties.status_code.enum].sort()).toEqual(Object.keys(DEMAND_STATUSES).sort());
  expect([...statusSchema.required].sort()).toEqual(['reference', 'status_code']);
});

/**
 * What the API fuzzing (test/e2e/fuzz-api.test.ts) found, each pinned here: every answer of the
 * services is K2's JSON { error_text, error_code }, also to OPTIONS (express answered it by itself, in
 * text/plain); and a body that is not JSON is named by the fault's position or character, never by an
 * excerpt of the body (V8 quotes ten characters either side, a name or an IIN). The real app on an
 * ephemeral port; no Temporal is needed (a lazy client that never connects).
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../api/app';
import { ERROR_CODES } from '../../api/error-codes';
import { jsonSyntaxReason } from '../../api/json-errors';
import { DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';

const SERVICES = ['/restapi/services/k2loan_from_eko', '/restapi/services/k2req_status_from_eko'];
const NAME = 'Иванов Иван Иванович';
const IIN = '861020419552';

let db: Db;
let connection: Connection;
let server: http.Server;
let base = '';

beforeAll(async () => {
  const config = loadConfig({ ...DEMO_ENV, K2_API_AUTH: 'none', K2_DB_URL: ':memory:' });
  db = await openDb({ client: 'sqlite', url: ':memory:' });
  connection = Connection.lazy({ address: '127.0.0.1:1' }); // never used: nothing here reaches Temporal
  const app = createApp({
    config,
    db,
    temporal: new Client({ connection }),
    logger: createLogger('api-answers-test', 'error', {}, () => undefined),
    metrics: new Metrics(),
  });
  server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await connection?.close();
  await db?.destroy();
});

test.each(SERVICES)('OPTIONS %s is answered as any other method there: error_code 8, in JSON', async (service) => {
  const res = await fetch(base + service, { method: 'OPTIONS' });
  expect(res.status).toBe(ERROR_CODES.NOT_FOUND.http);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await res.json()).toEqual({ error_code: ERROR_CODES.NOT_FOUND.code, error_text: `no endpoint OPTIONS ${service}` });
});

test('a method or path the services do not have keeps its answer: error_code 8 naming the full path', async () => {
  for (const [method, url] of [
    ['PUT', SERVICES[0]],
    ['POST', '/restapi/services/nothing'],
    ['GET', '/nowhere'],
  ]) {
    const res = await fetch(base + url, { method });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error_code: ERROR_CODES.NOT_FOUND.code, error_text: `no endpoint ${method} ${url}` });
  }
});

test.each([
  ['an unexpected character in the middle', `[{"iinbin":"${IIN}","fullname":${NAME}}]`],
  ['an unexpected character at the start', `${NAME}, ${IIN}`],
  ['a short body', `И${IIN}`],
  ['a fault after the value', `{"reference":"PTP00000000001","fullname":"${NAME}"} ${IIN}`],
])('a body that is not JSON (%s): error_code 2, and error_text quotes nothing of it', async (_what, body) => {
  for (const service of SERVICES) {
    const res = await fetch(base + service, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error_code: number; error_text: string };
    expect(answer.error_code).toBe(ERROR_CODES.MALFORMED_REQUEST.code);
    expect(answer.error_text).toMatch(/^the body is not valid JSON: /);
    for (const part of [IIN.slice(0, 6), IIN.slice(6), 'Иванов', 'Иван ', 'fullname', 'PTP000']) expect(answer.error_text).not.toContain(part);
  }
});

test('jsonSyntaxReason keeps the position or the unexpected character of each V8 message, and drops every excerpt', () => {
  const reason = (text: string) => {
    try {
      JSON.parse(text);
    } catch (err) {
      return jsonSyntaxReason((err as Error).message);
    }
    throw new Error(`${text} is JSON`);
  };
  expect(reason(`{"fullname": ${NAME}}`)).toBe('Unexpected token "И"');
  expect(reason(`{"iinbin":"${IIN}",}`)).toMatch(/^Expected double-quoted property name in JSON at position 25/);
  expect(reason(`{"iinbin":"${IIN}"} x`)).toMatch(/^Unexpected non-whitespace character after JSON at position 26/);
  expect(reason(`'`)).toBe(`Unexpected token "'"`);
  expect(reason('')).toBe('Unexpected end of JSON input');
  expect(jsonSyntaxReason(`"${IIN}" is not valid JSON`)).toBe('not valid JSON');
});

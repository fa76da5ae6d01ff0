/**
 * The codec server over real HTTP with K2's payload codec: Temporal's /encode and /decode protocol,
 * CORS for the Web UI's origins only, operators authenticated (bearer token or the sign-in cookie),
 * and logs without payload contents.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCodecServer } from '../../codec/app';
import { isValidSession, sameSecret, sessionCookieValue, SESSION_MS } from '../../codec/auth';
import { payloadsFromWire } from '../../codec/protocol';
import { createLogger } from '../../observability/logger';
import { AesGcmPayloadCodec } from '../../temporal/codec';

const TOKEN = 'codec-test-token-0123456789';
const UI = 'http://127.0.0.1:8233';
const IIN = '880514300125';
const NAME = 'Жумабекова Айгерим Маратовна';
const key = { id: 'test-2026-12', key: randomBytes(32) };

let server: http.Server;
let base: string;
let clock = Date.parse('2026-12-01T09:00:00Z');
const logLines: string[] = [];

beforeAll(async () => {
  const logger = createLogger('codec', 'debug', {}, (line) => logLines.push(line));
  server = createCodecServer({
    codec: new AesGcmPayloadCodec([key]),
    settings: { token: TOKEN, corsOrigins: [UI, 'http://localhost:8233'] },
    logger,
    now: () => clock,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string) => Buffer.from(text, 'base64').toString('utf8');
/** A JSON payload as the Temporal SDK writes it (a loan with its borrower). */
const loanPayload = () => ({
  metadata: { encoding: b64('json/plain') },
  data: b64(JSON.stringify({ contract_number: 'KD0000000042', iin: IIN, fullname: NAME })),
});

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
const bearer = { authorization: `Bearer ${TOKEN}` };

async function encodeLoan(): Promise<{ metadata: Record<string, string>; data: string }> {
  const res = await post('/encode', { payloads: [loanPayload()] }, bearer);
  expect(res.status).toBe(200);
  return ((await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads[0];
}

async function signIn(): Promise<string> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: new URLSearchParams({ token: TOKEN }).toString(),
  });
  expect(res.status).toBe(200);
  const cookie = res.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^k2_codec_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
  return cookie.split(';')[0];
}

describe('protocol', () => {
  test('encode gives ciphertext without the IIN or name; decode gives the original payload back', async () => {
    const encoded = await encodeLoan();
    expect(unb64(encoded.metadata.encoding)).toBe('binary/encrypted');
    expect(unb64(encoded.metadata['encryption-key-id'])).toBe(key.id);
    const raw = Buffer.from(encoded.data, 'base64').toString('latin1');
    expect(raw).not.toContain(IIN);
    expect(Buffer.from(encoded.data, 'base64').includes(Buffer.from(NAME, 'utf8'))).toBe(false);

    // The Web UI posts to <endpoint>/decode?preserveStorageRefs=true with X-Namespace; the CLI may template /<namespace>/decode.
    for (const path of ['/decode?preserveStorageRefs=true', '/default/decode']) {
      const res = await post(path, { payloads: [encoded] }, { ...bearer, 'x-namespace': 'default' });
      expect(res.status).toBe(200);
      const decoded = ((await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads;
      expect(decoded).toEqual([loanPayload()]);
    }
  });

  test('a payload written before the codec (plain JSON) decodes as it is', async () => {
    const res = await post('/decode', { payloads: [loanPayload()] }, bearer);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { payloads: unknown[] }).payloads).toEqual([loanPayload()]);
  });

  test('a payload of an unknown key is refused with 422 naming the key id only', async () => {
    const encoded = await encodeLoan();
    const res = await post('/decode', { payloads: [{ ...encoded, metadata: { ...encoded.metadata, 'encryption-key-id': b64('retired-2020') } }] }, bearer);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: string }).error).toMatch(/key "retired-2020"/);
  });

  test('a malformed body gets a clear 400 that does not quote it', async () => {
    const notJson = await post('/decode', `{"payloads": "${IIN}`, bearer);
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toEqual({ error: 'the body is not JSON' });
    const wrongShape = await post('/decode', { items: [] }, bearer);
    expect(wrongShape.status).toBe(400);
    expect(((await wrongShape.json()) as { error: string }).error).toMatch(/"payloads"/);
    const badData = await post('/decode', { payloads: [{ metadata: {}, data: `${IIN}!` }] }, bearer);
    expect(badData.status).toBe(400);
    const text = JSON.stringify(await badData.json());
    expect(text).toMatch(/payloads\[0\]\.data: expected base64/);
    expect(text).not.toContain(IIN);
  });

  test('GET on /decode is 405, an unknown path 404, /health answers without a credential', async () => {
    expect((await fetch(`${base}/decode`, { headers: bearer })).status).toBe(405);
    expect((await fetch(`${base}/nothing`, { headers: bearer })).status).toBe(404);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  test('payloadsFromWire: the protobuf JSON form, bytes as base64', () => {
    expect(payloadsFromWire({ payloads: [{ metadata: { encoding: b64('json/plain') }, data: b64('1') }] })).toEqual([
      { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('1') },
    ]);
    expect(() => payloadsFromWire({ payloads: [{ metadata: { encoding: 3 } }] })).toThrow('payloads[0].metadata.encoding: expected base64 text');
    expect(() => payloadsFromWire([])).toThrow(/expected a JSON object/);
  });
});

describe('who may call it', () => {
  test('a request without a credential is refused with 401 and decodes nothing', async () => {
    const encoded = await encodeLoan();
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Basic ${b64(`k2:${TOKEN}`)}` },
      { cookie: 'k2_codec_session=forged' },
    ] as Array<Record<string, string>>) {
      const res = await post('/decode', { payloads: [encoded] }, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="k2-codec"');
      const text = await res.text();
      expect(text).not.toContain(b64(JSON.stringify({ contract_number: 'KD0000000042' })).slice(0, 12));
      expect(JSON.parse(text).error).toMatch(/credential is required/);
    }
    expect((await post('/encode', { payloads: [loanPayload()] })).status).toBe(401);
  });

  test('a request from another origin is refused with 403, even with the right token; so is its preflight', async () => {
    const evil = 'http://evil.example:8233';
    const res = await post('/decode', { payloads: [loanPayload()] }, { ...bearer, origin: evil });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${base}/decode`, {
      method: 'OPTIONS',
      headers: { origin: evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });

  test("the Web UI's origin gets its preflight answered and CORS headers with credentials", async () => {
    const pre = await fetch(`${base}/decode?preserveStorageRefs=true`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI);
    expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect(pre.headers.get('vary')).toBe('Origin');

    // A refusal to the allowed origin still carries CORS headers, so the UI can read why.
    const refused = await post('/decode', { payloads: [] }, { origin: UI });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(UI);
  });

  test("signing in sets a session cookie that decodes for the Web UI's origin until it expires", async () => {
    const encoded = await encodeLoan();
    const cookie = await signIn();
    const res = await post('/decode', { payloads: [encoded] }, { cookie, origin: UI, 'x-namespace': 'default' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(((await res.json()) as { payloads: unknown[] }).payloads).toEqual([loanPayload()]);

    clock += SESSION_MS + 1;
    try {
      expect((await post('/decode', { payloads: [encoded] }, { cookie, origin: UI })).status).toBe(401);
    } finally {
      clock -= SESSION_MS + 1;
    }
  });

  test('sign-in with a wrong token sets no cookie; sign-in posted from another page is refused', async () => {
    const wrong = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=guess-0123456789',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const csrf = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      body: new URLSearchParams({ token: TOKEN }).toString(),
    });
    expect(csrf.status).toBe(403);
    expect(csrf.headers.get('set-cookie')).toBeNull();
    const form = await fetch(`${base}/login`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form method="post" action="/login">');
  });

  test('session cookies: made with the token, forged or expired ones fail; secrets compare by value only', () => {
    const at = Date.parse('2026-12-01T10:00:00Z');
    const value = sessionCookieValue(TOKEN, at);
    expect(isValidSession(TOKEN, value, at - 1)).toBe(true);
    expect(isValidSession(TOKEN, value, at)).toBe(false);
    expect(isValidSession('another-token-0123456789', value, at - 1)).toBe(false);
    expect(isValidSession(TOKEN, value.replace(/^\d+/, String(at + SESSION_MS)), at - 1)).toBe(false);
    expect(sameSecret(TOKEN, TOKEN)).toBe(true);
    expect(sameSecret(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(sameSecret('', '')).toBe(false);
  });
});

test("the log says what was done, never a payload's content or a credential", async () => {
  const encoded = await encodeLoan();
  await post('/decode', { payloads: [encoded] }, { ...bearer, 'x-namespace': 'default' });
  const text = logLines.join('\n');
  expect(text).toContain('"msg":"codec request","op":"decode","namespace":"default","payloads":1,"authenticatedBy":"bearer"');
  for (const secret of [IIN, NAME, TOKEN, encoded.data.slice(0, 16), b64(IIN)]) expect(text).not.toContain(secret);
});

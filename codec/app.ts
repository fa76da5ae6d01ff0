/**
 * The codec server: Temporal's Remote Codec protocol (POST …/encode, POST …/decode; only the last
 * part of the path counts, so /default/decode works as well) over K2's payload codec, for the Web UI
 * and the temporal CLI. Operators see decoded loans; Temporal itself keeps only ciphertext.
 *
 * - CORS for the Web UI's origins only (config.codec.corsOrigins): a request or preflight from any
 *   other origin is refused with 403. Requests without an Origin (the CLI, scripts) are not browsers
 *   and need only the credential.
 * - Every /encode and /decode needs a credential (codec/auth.ts), else 401.
 * - GET /login is a small sign-in page that sets the session cookie; GET /health answers without one.
 * - Logs say what was done (operation, namespace, payload count, status), never a payload's content.
 */
import http from 'node:http';
import type { PayloadCodec } from '@temporalio/common';
import type { Logger } from '../observability/logger';
import { PayloadDecryptionError } from '../temporal/codec';
import { authenticate, sameSecret, SESSION_COOKIE, SESSION_MS, sessionCookieValue, type Credential } from './auth';
import { CodecRequestError, payloadsFromWire, payloadsToWire } from './protocol';

/** Largest request body: the Web UI decodes one event's payloads (or one page of them) at a time. */
export const BODY_LIMIT_BYTES = 16 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The operators' token (K2_CODEC_TOKEN) and the Web UI's origins. */
  settings: { token: string; corsOrigins: readonly string[] };
  logger: Logger;
  now?: () => number;
}

type Operation = 'encode' | 'decode';

/** The codec operation a path asks for: its last segment. */
export function operationOf(pathname: string): Operation | undefined {
  const last = pathname.replace(/\/+$/, '').split('/').pop();
  return last === 'encode' || last === 'decode' ? last : undefined;
}

class HttpError extends Error {
  constructor(
    public readonly status: number,
    message: string,
    public readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function sendHtml(res: http.ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    ...headers,
  });
  res.end(html);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `the body exceeds ${limit} bytes: send fewer payloads per request`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** CORS headers for an allowed origin (credentials included: the session cookie rides on them). */
function corsHeaders(origin: string): Record<string, string> {
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
}

const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'Content-Type, X-Namespace, Authorization, Authorization-Extras',
  'access-control-max-age': '600',
};

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
  '<style>body{font-family:sans-serif;max-width:34rem;margin:4rem auto;line-height:1.4}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}button{margin-top:.8rem;font-size:1rem;padding:.4rem 1rem}</style>' +
  `</head><body><h1>${title}</h1>${body}</body></html>`;

const LOGIN_FORM = page(
  'K2 codec server',
  '<p>Sign in with the codec token (K2_CODEC_TOKEN) so that the Temporal Web UI in this browser can show decoded payloads.</p>' +
    '<form method="post" action="/login"><label for="token">Codec token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>' +
    '<button type="submit">Sign in</button></form>',
);

export function createCodecServer(opts: CodecServerOptions): http.Server {
  const { codec, settings, logger } = opts;
  const now = opts.now ?? Date.now;
  const allowed = new Set(settings.corsOrigins);

  /** A browser request from an origin other than the Web UI's: refused before anything else. */
  const checkOrigin = (req: http.IncomingMessage): string | undefined => {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    if (!allowed.has(origin)) throw new HttpError(403, `origin ${origin} is not allowed (K2_CODEC_CORS_ORIGINS)`);
    return origin;
  };

  const codecRequest = async (req: http.IncomingMessage, res: http.ServerResponse, op: Operation): Promise<void> => {
    const started = now();
    const origin = checkOrigin(req);
    // On every answer from here on, errors too: else the Web UI could not read why it was refused.
    if (origin) for (const [name, value] of Object.entries(corsHeaders(origin))) res.setHeader(name, value);
    const credential: Credential | undefined = authenticate(req.headers, settings.token, now());
    if (!credential)
      throw new HttpError(401, 'a credential is required: Authorization: Bearer <K2_CODEC_TOKEN>, or sign in at /login', {
        'www-authenticate': 'Bearer realm="k2-codec"',
      });
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? 'application/json')) throw new HttpError(415, 'expected Content-Type: application/json');
    const raw = await readBody(req, BODY_LIMIT_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'the body is not JSON');
    }
    let payloads;
    try {
      payloads = payloadsFromWire(body);
    } catch (err) {
      throw err instanceof CodecRequestError ? new HttpError(400, err.message) : err;
    }
    const converted = op === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    send(res, 200, payloadsToWire(converted));
    logger.info('codec request', {
      op,
      namespace: String(req.headers['x-namespace'] ?? ''),
      payloads: payloads.length,
      authenticatedBy: credential,
      origin: origin ?? 'none',
      status: 200,
      ms: now() - started,
    });
  };

  const preflight = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const origin = checkOrigin(req);
    if (!origin) throw new HttpError(400, 'a preflight request needs an Origin');
    res.writeHead(204, { ...corsHeaders(origin), ...PREFLIGHT_HEADERS });
    res.end();
  };

  const login = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    // The form posts from this server's own page; a post from any other page is refused (login CSRF).
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`)
      throw new HttpError(403, "sign in from this server's own page");
    const form = new URLSearchParams((await readBody(req, 16 * 1024)).toString('utf8'));
    if (!sameSecret(form.get('token') ?? '', settings.token)) {
      logger.warn('codec sign-in refused', { reason: 'wrong token' });
      sendHtml(res, 401, page('K2 codec server', '<p>Wrong token.</p><p><a href="/login">Try again</a></p>'));
      return;
    }
    const expiresAt = now() + SESSION_MS;
    // SameSite=Strict: sent only with requests from the same site (the Web UI on the same host), never from another site's page.
    const cookie = `${SESSION_COOKIE}=${sessionCookieValue(settings.token, expiresAt)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}`;
    logger.info('codec sign-in', { until: new Date(expiresAt).toISOString() });
    sendHtml(
      res,
      200,
      page(
        'K2 codec server',
        `<p id="signed-in">Signed in until ${new Date(expiresAt).toISOString()}. The Temporal Web UI in this browser now shows decoded payloads (its Codec Server setting must include cross-origin credentials).</p>`,
      ),
      { 'set-cookie': cookie },
    );
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const { pathname } = new URL(req.url ?? '/', 'http://codec');
    const op = operationOf(pathname);
    if (req.method === 'OPTIONS' && op) return preflight(req, res);
    if (op) {
      if (req.method !== 'POST') throw new HttpError(405, `${pathname} accepts POST only`, { allow: 'POST, OPTIONS' });
      return codecRequest(req, res, op);
    }
    if (pathname === '/health' && (req.method === 'GET' || req.method === 'HEAD')) return send(res, 200, { status: 'ok' });
    if (pathname === '/login' && req.method === 'GET') return sendHtml(res, 200, LOGIN_FORM);
    if (pathname === '/login' && req.method === 'POST') return login(req, res);
    throw new HttpError(404, `no such endpoint: ${req.method} ${pathname}`);
  };

  return http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const { status, message, headers } = answerOf(err);
      const fields = { method: req.method, path: new URL(req.url ?? '/', 'http://codec').pathname, status, origin: req.headers.origin ?? 'none' };
      if (status >= 500) logger.error('codec request failed', { ...fields, err });
      else logger.warn('codec request refused', { ...fields, reason: message });
      if (res.headersSent) return void res.destroy();
      send(res, status, { error: message }, headers);
    });
  });
}

/** The answer to a failed request. A codec error names key ids only (temporal/codec.ts), never payload content; anything else stays in the log. */
function answerOf(err: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (err instanceof HttpError) return { status: err.status, message: err.message, headers: err.headers };
  if (err instanceof PayloadDecryptionError) return { status: 422, message: err.message, headers: {} };
  return { status: 500, message: 'the codec failed (see the codec server log)', headers: {} };
}

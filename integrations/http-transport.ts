/**
 * How K2 reaches ABS, EKO and GKB over the wire: TLS material (a CA bundle of its own, an optional
 * client certificate), credentials (HTTP Basic or bearer), and no redirects.
 *
 * Redirects are never followed: a 3xx from a bank system means a wrong URL or a hostile proxy, and
 * following it would send personal data (and the credentials) to wherever it points. Each client
 * turns a 3xx into its protocol error naming the status.
 *
 * Node's fetch (undici) takes a custom CA or client certificate only through an undici Agent, which
 * Node 20 does not export; so requests go through node:http/node:https with an https.Agent instead,
 * and come back as a standard fetch Response, which the clients already read.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/** config.abs.tls, config.eko.tls, config.gkb.tls: PEM files; none set means the system CAs and no client certificate. */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** config.abs.auth, config.eko.auth. */
export interface HttpAuth {
  mode: 'none' | 'basic' | 'bearer';
  user?: string;
  password?: string;
  token?: string;
}

/** A request as the clients make it; the standard fetch accepts it too (ABS's tests pass one). */
export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  redirect?: 'manual';
}

export type HttpSend = (url: URL, init: HttpRequest) => Promise<Response>;

/** True for the statuses a client must refuse instead of following. */
export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** The Authorization header for `auth`, or undefined for mode none. Secrets never appear in the error texts. */
export function authorizationHeader(system: string, auth: HttpAuth | undefined): string | undefined {
  if (!auth || auth.mode === 'none') return undefined;
  if (auth.mode === 'basic') {
    if (!auth.user || !auth.password) throw new RangeError(`${system} auth basic needs a user and a password`);
    if (auth.user.includes(':')) throw new RangeError(`${system} auth basic: the user must not contain ":"`);
    return `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}`;
  }
  if (auth.mode === 'bearer') {
    if (!auth.token) throw new RangeError(`${system} auth bearer needs a token`);
    return `Bearer ${auth.token}`;
  }
  throw new RangeError(`${system} auth mode must be none, basic or bearer, got ${JSON.stringify((auth as { mode: unknown }).mode)}`);
}

function readPem(system: string, what: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${system} TLS: cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The agent's TLS options from the files, read once at start-up; a certificate needs its key and the other way round. */
export function tlsOptions(system: string, files: TlsFiles | undefined): https.AgentOptions {
  const { caFile, certFile, keyFile } = files ?? {};
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new Error(`${system} TLS: a client certificate needs its key file and the other way round (got only the ${certFile ? 'certificate' : 'key'})`);
  return {
    ...(caFile ? { ca: readPem(system, 'CA bundle', caFile) } : {}),
    ...(certFile && keyFile ? { cert: readPem(system, 'client certificate', certFile), key: readPem(system, 'client key', keyFile) } : {}),
  };
}

/** Idle connections are closed before a typical server's 5 s keep-alive ends, so a request never lands on a connection being closed. */
const KEEP_ALIVE = { keepAlive: true, timeout: 4_000 } as const;

/** One keep-alive agent per system; TLS certificates are always verified (rejectUnauthorized stays on). */
export function createHttpsAgent(system: string, files: TlsFiles | undefined): https.Agent {
  return new https.Agent({ ...KEEP_ALIVE, ...tlsOptions(system, files), rejectUnauthorized: true });
}

/** Statuses whose Response must not have a body. */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

function headersOf(res: http.IncomingMessage): Headers {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // A header the fetch API cannot hold (invalid name or value): nothing K2 reads.
    }
  }
  return headers;
}

/**
 * A fetch for one system: http: or https: (with the agent's CA and client certificate), never
 * following a redirect. Like fetch, it fails with a TypeError whose cause is the network error
 * (its `code`, e.g. ECONNREFUSED or SELF_SIGNED_CERT_IN_CHAIN), and an aborted signal rejects the
 * request, or errors the body being read, with the signal's reason (a TimeoutError for AbortSignal.timeout).
 */
export function createHttpSend(httpsAgent: https.Agent): HttpSend {
  const httpAgent = new http.Agent(KEEP_ALIVE);
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const { signal } = init;
      if (signal?.aborted) return reject(signal.reason);
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') return reject(new TypeError(`unsupported protocol ${url.protocol}`));
      const headers: Record<string, string | number> = { ...init.headers };
      if (init.body !== undefined) headers['Content-Length'] = Buffer.byteLength(init.body);
      const req = (secure ? https : http).request(url, { method: init.method, headers, agent: secure ? httpsAgent : httpAgent });
      let answer: http.IncomingMessage | undefined;
      const onAbort = () => {
        answer?.destroy(signal?.reason);
        req.destroy(signal?.reason);
      };
      const settle = () => signal?.removeEventListener('abort', onAbort);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => {
        settle();
        reject(signal?.aborted ? signal.reason : new TypeError('request failed', { cause: err }));
      });
      req.on('response', (res) => {
        answer = res;
        res.on('close', settle);
        const status = res.statusCode ?? 0;
        const noBody = NULL_BODY_STATUS.has(status);
        if (noBody) res.resume();
        try {
          const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
          resolve(new Response(body, { status, statusText: res.statusMessage, headers: headersOf(res) }));
        } catch (err) {
          res.destroy();
          reject(new TypeError(`unreadable answer (HTTP ${status})`, { cause: err }));
        }
      });
      req.end(init.body);
    });
}

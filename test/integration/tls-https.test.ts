/**
 * Outbound connections to ABS, EKO and GKB (issue 13, "Connections"), against real HTTPS servers in
 * the test that use a throw-away CA (test/helpers/tls.ts):
 *  - each client reaches its system over HTTPS when given the CA bundle, and is refused without it;
 *  - with mTLS it presents its client certificate, and without one (or with one from another CA) it is refused;
 *  - a redirect is never followed: a 3xx is the client's protocol error naming the status, and the
 *    host it points to gets nothing (over plain HTTP too, where Node's fetch would have followed it);
 *  - ABS and EKO get the configured credentials (HTTP Basic or bearer), and no secret appears in an error.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { computeCheckDigit } from '../../domain/iin';
import { kzIbanCheckDigits } from '../../domain/iban';
import { AbsProtocolError, AbsTransientError, createAbsClient, type AbsClientOptions } from '../../integrations/abs';
import { createEkoClient, EkoRejectedError, EkoTransientError, type EkoClientOptions, type PaymentDemand } from '../../integrations/eko';
import { createGkbClient, GkbPermanentError, GkbTransientError, type GkbClientOptions } from '../../integrations/gkb/soap-client';
import { authorizationHeader, tlsOptions } from '../../integrations/http-transport';
import { createTestPki, type TestPki } from '../helpers/tls';

jest.setTimeout(60_000);

const first11 = '85021030189';
const IIN = first11 + String(computeCheckDigit(first11));
const bban = '7220000000001234';
const IBAN = `KZ${kzIbanCheckDigits(bban)}${bban}`;
const DEMAND: PaymentDemand = {
  reference: 'PTP70000000001',
  contract_number: 'KD0000000001',
  iban: IBAN,
  amount: '2000000.00',
  currency: 'KZT',
  iinbin: IIN,
  evidence: [{ kind: 'dbz-scan', sha256: 'a'.repeat(64), mediaType: 'application/pdf', fileName: 'dbz.pdf' }],
  issued_at: '2026-11-22T10:00:00.000Z',
};
const GKB_UPLOAD_ANSWER = readFileSync(path.join(__dirname, '..', 'fixtures', 'gkb', 'doc-4.1.1-uploadFile-response.xml'), 'utf8');
const GKB_CREDS = { clientId: 'k2-client', password: 'gkb-secret-password', userId: 'k2-operator' };
const ABS_PASSWORD = 'abs-secret-password';
const EKO_TOKEN = 'eko-secret-token-0123456789';

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});
afterAll(() => pki?.cleanup());

interface Hit {
  url: string;
  method?: string;
  authorization?: string;
  /** CN of the client certificate the server verified, when it asked for one. */
  clientCn?: string;
}

interface TestServer {
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A server on a free loopback port; https with the test CA's server certificate, optionally asking for a client certificate. */
async function serve(
  scheme: 'http' | 'https',
  handler: Handler,
  opts: { requireClientCert?: boolean; cert?: 'server' | 'impostor' } = {},
): Promise<TestServer> {
  const hits: Hit[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const socket = req.socket as TLSSocket;
      const peer = opts.requireClientCert ? socket.getPeerCertificate() : undefined;
      hits.push({ url: req.url ?? '', method: req.method, authorization: req.headers.authorization, clientCn: peer?.subject?.CN as string | undefined });
      handler(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  };
  const which = opts.cert ?? 'server';
  const server =
    scheme === 'https'
      ? https.createServer(
          {
            cert: pki.read(which === 'server' ? pki.serverCertFile : pki.impostorCertFile),
            key: pki.read(which === 'server' ? pki.serverKeyFile : pki.impostorKeyFile),
            ca: pki.read(pki.caFile),
            requestCert: opts.requireClientCert === true,
            rejectUnauthorized: opts.requireClientCert === true,
          },
          onRequest,
        )
      : http.createServer(onRequest);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `${scheme}://localhost:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

const json =
  (status: number, body: unknown): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
const redirectTo =
  (status: number, location: string): Handler =>
  (_req, res) => {
    res.writeHead(status, { location });
    res.end();
  };
const absClientAnswer = json(200, { error_code: 0, error_text: '', iinbin: IIN, fullname: 'Test Person', sectecon: 9, residfl: 1 });
const ekoAccepts = json(200, { error_code: 0, error_text: '' });
const gkbAccepts: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
  res.end(GKB_UPLOAD_ANSWER);
};

const trusted = () => ({ caFile: pki.caFile });
const withClientCert = () => ({ caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });
const withStrangerCert = () => ({ caFile: pki.caFile, certFile: pki.strangerCertFile, keyFile: pki.strangerKeyFile });

const abs = (base: string, over: Partial<AbsClientOptions> = {}) =>
  createAbsClient({
    clientUrl: `${base}/abs/client`,
    accountsUrl: `${base}/abs/accounts`,
    statementUrl: `${base}/abs/statement`,
    scanUrl: `${base}/abs/scan`,
    timeoutMs: 10_000,
    ...over,
  });
const eko = (base: string, over: Partial<EkoClientOptions> = {}) => createEkoClient({ demandUrl: `${base}/eko/payment-demands`, timeoutMs: 10_000, ...over });
const gkb = (base: string, over: Partial<GkbClientOptions> = {}) =>
  createGkbClient({ url: `${base}/BatchProcessingService`, ...GKB_CREDS, timeoutMs: 10_000, ...over });
const upload = { file: Buffer.from('<batch/>'), fileName: 'k2-tls-test-1.xml', fileType: 1 as const };

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('ABS over HTTPS', () => {
  it('reaches ABS with the CA bundle', async () => {
    const server = await serve('https', absClientAnswer);
    await expect(abs(server.url, { tls: trusted() }).getClient(IIN)).resolves.toMatchObject({ ok: true, value: { iinbin: IIN } });
    expect(server.hits).toHaveLength(1);
  });

  it('is refused without the CA (the system CAs do not know it), and by a server whose certificate another CA signed', async () => {
    const server = await serve('https', absClientAnswer);
    const err = await failure(abs(server.url).getClient(IIN));
    expect(err).toBeInstanceOf(AbsTransientError);
    expect(err.message).toMatch(/network error \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
    const impostor = await serve('https', absClientAnswer, { cert: 'impostor' });
    expect(await failure(abs(impostor.url, { tls: trusted() }).getClient(IIN))).toBeInstanceOf(AbsTransientError);
    expect([...server.hits, ...impostor.hits]).toHaveLength(0);
  });

  it('presents its client certificate (mTLS); without one, or with one from another CA, the server refuses it', async () => {
    const server = await serve('https', absClientAnswer, { requireClientCert: true });
    await expect(abs(server.url, { tls: withClientCert() }).getClient(IIN)).resolves.toMatchObject({ ok: true });
    expect(server.hits).toEqual([expect.objectContaining({ clientCn: pki.clientName })]);
    expect(await failure(abs(server.url, { tls: trusted() }).getClient(IIN))).toBeInstanceOf(AbsTransientError);
    expect(await failure(abs(server.url, { tls: withStrangerCert() }).getClient(IIN))).toBeInstanceOf(AbsTransientError);
    expect(server.hits).toHaveLength(1);
  });

  it('sends HTTP Basic or bearer credentials; a refusal quotes no secret', async () => {
    const server = await serve('https', absClientAnswer);
    await abs(server.url, { tls: trusted(), auth: { mode: 'basic', user: 'k2', password: ABS_PASSWORD } }).getClient(IIN);
    await abs(server.url, { tls: trusted(), auth: { mode: 'bearer', token: 'abs-bearer-token-0123456789' } }).getClient(IIN);
    await abs(server.url, { tls: trusted() }).getClient(IIN);
    expect(server.hits.map((h) => h.authorization)).toEqual([
      `Basic ${Buffer.from(`k2:${ABS_PASSWORD}`).toString('base64')}`,
      'Bearer abs-bearer-token-0123456789',
      undefined,
    ]);

    const refusing = await serve('https', json(401, { error: 'unauthorized' }));
    const err = await failure(abs(refusing.url, { tls: trusted(), auth: { mode: 'basic', user: 'k2', password: ABS_PASSWORD } }).getClient(IIN));
    expect(err).toBeInstanceOf(AbsProtocolError);
    expect(err.message).not.toContain(ABS_PASSWORD);
  });
});

describe('EKO over HTTPS', () => {
  it('reaches EKO with the CA bundle, and is refused without it', async () => {
    const server = await serve('https', ekoAccepts);
    await expect(eko(server.url, { tls: trusted() }).sendDemand(DEMAND)).resolves.toEqual({ error_code: 0, error_text: '' });
    const err = await failure(eko(server.url).sendDemand(DEMAND));
    expect(err).toBeInstanceOf(EkoTransientError);
    expect(err.message).toMatch(/EKO unreachable: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
    expect(server.hits).toHaveLength(1);
  });

  it('presents its client certificate (mTLS); without one the server refuses it', async () => {
    const server = await serve('https', ekoAccepts, { requireClientCert: true });
    await expect(eko(server.url, { tls: withClientCert() }).sendDemand(DEMAND)).resolves.toMatchObject({ error_code: 0 });
    expect(server.hits).toEqual([expect.objectContaining({ clientCn: pki.clientName })]);
    expect(await failure(eko(server.url, { tls: trusted() }).sendDemand(DEMAND))).toBeInstanceOf(EkoTransientError);
    expect(await failure(eko(server.url, { tls: withStrangerCert() }).sendDemand(DEMAND))).toBeInstanceOf(EkoTransientError);
    expect(server.hits).toHaveLength(1);
  });

  it('sends HTTP Basic or bearer credentials', async () => {
    const server = await serve('https', ekoAccepts);
    await eko(server.url, { tls: trusted(), auth: { mode: 'bearer', token: EKO_TOKEN } }).sendDemand(DEMAND);
    await eko(server.url, { tls: trusted(), auth: { mode: 'basic', user: 'k2', password: 'eko-secret-password' } }).sendDemand(DEMAND);
    expect(server.hits.map((h) => h.authorization)).toEqual([`Bearer ${EKO_TOKEN}`, `Basic ${Buffer.from('k2:eko-secret-password').toString('base64')}`]);
  });
});

describe('GKB over HTTPS', () => {
  it('reaches GKB with the CA bundle (HTTP Basic as before), and is refused without it', async () => {
    const server = await serve('https', gkbAccepts);
    await expect(gkb(server.url, { tls: trusted() }).uploadFile(upload)).resolves.toEqual({ batchPackageId: '241010' });
    expect(server.hits).toEqual([
      expect.objectContaining({ method: 'POST', authorization: `Basic ${Buffer.from(`${GKB_CREDS.clientId}:${GKB_CREDS.password}`).toString('base64')}` }),
    ]);
    const err = await failure(gkb(server.url).uploadFile(upload));
    expect(err).toBeInstanceOf(GkbTransientError);
    // Refused in the handshake: the upload cannot have reached GKB, so no search for it is needed.
    expect(err).toMatchObject({ reason: 'network', outcomeUnknown: false, code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(server.hits).toHaveLength(1);
  });

  it('presents its client certificate (mTLS); without one the server refuses it', async () => {
    const server = await serve('https', gkbAccepts, { requireClientCert: true });
    await expect(gkb(server.url, { tls: withClientCert() }).uploadFile(upload)).resolves.toEqual({ batchPackageId: '241010' });
    expect(server.hits).toEqual([expect.objectContaining({ clientCn: pki.clientName })]);
    const err = await failure(gkb(server.url, { tls: trusted() }).uploadFile(upload));
    expect(err).toBeInstanceOf(GkbTransientError);
    expect(err).toMatchObject({ outcomeUnknown: false });
    expect(server.hits).toHaveLength(1);
  });
});

// Over plain HTTP too: there Node's fetch and axios would follow a redirect by default.
describe.each(['http', 'https'] as const)('a redirect is never followed (%s)', (scheme) => {
  const tls = () => (scheme === 'https' ? trusted() : undefined);

  it('ABS: a 302 is a protocol error naming the status; the other host gets nothing', async () => {
    const elsewhere = await serve(scheme, absClientAnswer);
    const server = await serve(scheme, redirectTo(302, `${elsewhere.url}/abs/client?iinbin=${IIN}`));
    const err = await failure(abs(server.url, { tls: tls() }).getClient(IIN));
    expect(err).toBeInstanceOf(AbsProtocolError);
    expect(err).toMatchObject({ httpStatus: 302 });
    expect(err.message).toMatch(/HTTP 302 redirect, not followed/);
    expect(err.message).not.toContain(IIN);
    expect(server.hits).toHaveLength(1);
    expect(elsewhere.hits).toHaveLength(0);
  });

  it('EKO: a 307 (which would re-send the demand) rejects it naming the status; the other host gets nothing', async () => {
    const elsewhere = await serve(scheme, ekoAccepts);
    const server = await serve(scheme, redirectTo(307, `${elsewhere.url}/eko/payment-demands`));
    const err = await failure(eko(server.url, { tls: tls() }).sendDemand(DEMAND));
    expect(err).toBeInstanceOf(EkoRejectedError);
    expect(err).toMatchObject({ httpStatus: 307 });
    expect(err.message).toMatch(/HTTP 307, a redirect: not followed/);
    expect(elsewhere.hits).toHaveLength(0);
  });

  it('GKB: a 307 is a permanent error naming the status; the other host gets nothing', async () => {
    const elsewhere = await serve(scheme, gkbAccepts);
    const server = await serve(scheme, redirectTo(307, `${elsewhere.url}/BatchProcessingService`));
    const err = await failure(gkb(server.url, { tls: tls() }).uploadFile(upload));
    expect(err).toBeInstanceOf(GkbPermanentError);
    expect(err).toMatchObject({ httpStatus: 307, faultKind: 'http' });
    expect(err.message).toMatch(/HTTP 307 redirect, not followed/);
    expect(elsewhere.hits).toHaveLength(0);
  });
});

describe('configuration of the wire', () => {
  it('builds the Authorization header; a wrong setting says what is missing and quotes no secret', () => {
    expect(authorizationHeader('ABS', undefined)).toBeUndefined();
    expect(authorizationHeader('ABS', { mode: 'none', password: 'ignored' })).toBeUndefined();
    expect(authorizationHeader('ABS', { mode: 'basic', user: 'k2', password: 'pässword' })).toBe(
      `Basic ${Buffer.from('k2:pässword', 'utf8').toString('base64')}`,
    );
    expect(authorizationHeader('EKO', { mode: 'bearer', token: EKO_TOKEN })).toBe(`Bearer ${EKO_TOKEN}`);
    expect(() => authorizationHeader('ABS', { mode: 'basic', user: 'k2', password: '' })).toThrow('ABS auth basic needs a user and a password');
    expect(() => authorizationHeader('ABS', { mode: 'basic', user: 'k2:x', password: ABS_PASSWORD })).toThrow(/must not contain ":"/);
    expect(() => authorizationHeader('EKO', { mode: 'bearer', token: '' })).toThrow('EKO auth bearer needs a token');
    try {
      authorizationHeader('ABS', { mode: 'basic', user: 'k2:x', password: ABS_PASSWORD });
    } catch (err) {
      expect((err as Error).message).not.toContain(ABS_PASSWORD);
    }
  });

  it('reads the PEM files once; a certificate without its key, or an unreadable file, is a clear start-up error', () => {
    expect(tlsOptions('GKB', undefined)).toEqual({});
    expect(tlsOptions('GKB', { caFile: pki.caFile })).toEqual({ ca: pki.read(pki.caFile) });
    expect(Object.keys(tlsOptions('GKB', withClientCert())).sort()).toEqual(['ca', 'cert', 'key']);
    expect(() => tlsOptions('EKO', { certFile: pki.clientCertFile })).toThrow(
      'EKO TLS: a client certificate needs its key file and the other way round (got only the certificate)',
    );
    expect(() => tlsOptions('ABS', { caFile: path.join(pki.dir, 'missing.pem') })).toThrow(/^ABS TLS: cannot read the CA bundle .*missing\.pem: ENOENT$/);
    expect(() => abs('https://localhost:1', { tls: { keyFile: pki.clientKeyFile } })).toThrow(/ABS TLS: a client certificate needs its key file/);
  });
});

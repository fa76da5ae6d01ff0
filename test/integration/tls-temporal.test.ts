/**
 * The Temporal connection over TLS and mTLS (issue 13, "Connections"), through K2's one connection
 * factory (temporal/connection.ts connectClient, temporal/native-connection.ts connectNative).
 *
 * The dev server speaks no TLS of its own, so Debian's nginx stands in front of it as a gRPC TLS
 * proxy (http2, grpc_pass, ssl_verify_client on with the test CA of test/helpers/tls.ts) on a free
 * loopback port. A client and a worker that present the client certificate, trust the CA and ask
 * for the certificate's server name run a workflow through it; a client without a certificate, with
 * one from another CA, or one that does not trust the server's CA, is refused.
 *
 * nginx comes from scripts/ensure-nginx.sh (as .ci/run calls it; here too when it is missing). When
 * it cannot be installed (not root, not Debian), the tests are skipped and say why.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ServiceError, type Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TransportError, Worker, type NativeConnection } from '@temporalio/worker';
import { connectClient, type TemporalSettings, type TemporalTls } from '../../temporal/connection';
import { connectNative } from '../../temporal/native-connection';
import { freePort } from '../../scripts/system';
import { localEnv } from '../helpers/temporal';
import { createTestPki, hasOpenssl, type TestPki } from '../helpers/tls';

jest.setTimeout(180_000);

const REPO = path.resolve(__dirname, '..', '..');

function findNginx(): string | undefined {
  const found = spawnSync('bash', ['-c', 'command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }'], { encoding: 'utf8' });
  const p = found.stdout?.trim();
  return p ? p : undefined;
}

/** nginx, installed by the project's script when missing (it never fails; it prints NGINX=… when nginx is there). */
function ensureNginx(): string | undefined {
  const present = findNginx();
  if (present) return present;
  const run = spawnSync('bash', [path.join(REPO, 'scripts', 'ensure-nginx.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  return /^NGINX=(.+)$/m.exec(run.stdout ?? '')?.[1] ?? findNginx();
}

const NGINX = ensureNginx();
const SKIP_REASON = !NGINX
  ? 'nginx is missing and scripts/ensure-nginx.sh could not install it (it needs root on Debian)'
  : !hasOpenssl()
    ? 'the openssl CLI is missing'
    : undefined;
if (SKIP_REASON) console.warn(`tls-temporal.test.ts skipped: ${SKIP_REASON}`);
const describeWithNginx = SKIP_REASON ? describe.skip : describe;

async function waitForPort(port: number, proxy: ChildProcess, errorLog: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proxy.exitCode !== null) break;
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(() => resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : '(no error log)';
  throw new Error(`nginx did not listen on 127.0.0.1:${port} (exit code ${proxy.exitCode}): ${log}`);
}

/** nginx as a gRPC TLS proxy that wants a client certificate signed by the test CA. */
function nginxConfig(pki: TestPki, dir: string, listenPort: number, temporalAddress: string): string {
  return `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${listenPort} ssl http2;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${pki.serverCertFile};
    ssl_certificate_key ${pki.serverKeyFile};
    ssl_client_certificate ${pki.caFile};
    ssl_verify_client on;
    location / {
      # Workers long-poll for about a minute: longer than nginx's default 60 s.
      grpc_read_timeout 300s;
      grpc_send_timeout 300s;
      grpc_pass grpc://${temporalAddress};
    }
  }
}
`;
}

/** A one-activity workflow, written beside a node_modules link so the worker's bundler finds @temporalio/workflow. */
function writeWorkflow(dir: string): string {
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const file = path.join(dir, 'tls-workflows.js');
  fs.writeFileSync(
    file,
    `const { proxyActivities } = require('@temporalio/workflow');
const { echo } = proxyActivities({ startToCloseTimeout: '30s' });
exports.tlsEchoWorkflow = async function tlsEchoWorkflow(text) { return echo(text); };
`,
  );
  return file;
}

describeWithNginx('Temporal over TLS and mTLS (nginx as gRPC TLS proxy in front of the dev server)', () => {
  let pki: TestPki;
  let env: TestWorkflowEnvironment;
  let proxy: ChildProcess;
  let address: string;
  let workflowsPath: string;
  const clients: Client[] = [];
  const natives: NativeConnection[] = [];

  const settings = (tls: TemporalTls | undefined): TemporalSettings => ({ temporal: { address, namespace: 'default', tls }, payloadKeys: [] });
  const fullTls = (): TemporalTls => ({ caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile, serverName: pki.serverName });
  const connect = async (tls: TemporalTls | undefined) => {
    const client = await connectClient(settings(tls));
    clients.push(client);
    return client;
  };
  /** Connecting, then one call: whichever of them TLS refuses, the attempt fails. */
  const tryConnect = async (tls: TemporalTls | undefined): Promise<void> => {
    const client = await connect(tls);
    await client.workflowService.getSystemInfo({});
  };
  const refusal = async (tls: TemporalTls | undefined): Promise<Error> => {
    try {
      await tryConnect(tls);
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected the connection to be refused');
  };
  /** The client gave up on the TLS handshake (grpc-js keeps the reason to itself: the channel never became ready). */
  const HANDSHAKE_REFUSED = /Failed to connect before the deadline/;
  /** nginx completed the handshake but refused the request: "400 No required SSL certificate was sent" / "The SSL certificate error". */
  const expectCertificateRefused = (err: Error) => {
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).cause?.message).toMatch(/HTTP status code 400/);
  };

  beforeAll(async () => {
    pki = createTestPki();
    workflowsPath = writeWorkflow(pki.dir);
    env = await localEnv();
    const port = await freePort();
    address = `127.0.0.1:${port}`;
    const conf = path.join(pki.dir, 'nginx.conf');
    fs.writeFileSync(conf, nginxConfig(pki, pki.dir, port, env.address));
    proxy = spawn(NGINX as string, ['-p', pki.dir, '-c', conf, '-e', path.join(pki.dir, 'error.log')], { stdio: 'ignore' });
    await waitForPort(port, proxy, path.join(pki.dir, 'error.log'));
  });

  afterAll(async () => {
    // Each step on its own: a failed one must not leave nginx or the dev server running.
    for (const c of clients) await c.connection.close().catch(() => undefined);
    for (const n of natives) await n.close().catch(() => undefined);
    if (proxy && proxy.exitCode === null) {
      const exited = new Promise((resolve) => proxy.once('exit', resolve));
      proxy.kill('SIGTERM');
      await exited;
    }
    await env?.teardown();
    pki?.cleanup();
  });

  it('a client and a worker with the server CA, the client certificate and the server name run a workflow through the proxy', async () => {
    const client = await connect(fullTls());
    const native = await connectNative(settings(fullTls()));
    natives.push(native);
    const taskQueue = `tls-${Date.now()}`;
    const worker = await Worker.create({
      connection: native,
      namespace: 'default',
      taskQueue,
      workflowsPath,
      activities: { echo: async (text: string) => `echo ${text}` },
    });
    const result = await worker.runUntil(client.workflow.execute('tlsEchoWorkflow', { taskQueue, workflowId: `tls-echo-${Date.now()}`, args: ['over mTLS'] }));
    expect(result).toBe('echo over mTLS');
  });

  it("the server name must be the certificate's: without the override, 127.0.0.1 is in the certificate too and works; a wrong name is refused", async () => {
    await expect(tryConnect({ ...fullTls(), serverName: undefined })).resolves.toBeUndefined();
    expect((await refusal({ ...fullTls(), serverName: 'wrong.k2.test' })).message).toMatch(HANDSHAKE_REFUSED);
  });

  it('a client without a certificate is refused', async () => {
    expectCertificateRefused(await refusal({ caFile: pki.caFile, serverName: pki.serverName }));
  });

  it('a client with a certificate from another CA is refused', async () => {
    expectCertificateRefused(await refusal({ caFile: pki.caFile, certFile: pki.strangerCertFile, keyFile: pki.strangerKeyFile, serverName: pki.serverName }));
  });

  it("a client that does not trust the server's CA is refused (system CAs, or another CA)", async () => {
    expect((await refusal({ certFile: pki.clientCertFile, keyFile: pki.clientKeyFile, serverName: pki.serverName })).message).toMatch(HANDSHAKE_REFUSED);
    expect((await refusal({ caFile: pki.otherCaFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile, serverName: pki.serverName })).message).toMatch(
      HANDSHAKE_REFUSED,
    );
  });

  it('a worker without a certificate is refused', async () => {
    const connecting = connectNative(settings({ caFile: pki.caFile, serverName: pki.serverName }));
    connecting.then(
      (n) => natives.push(n),
      () => undefined,
    );
    await expect(connecting).rejects.toThrow(/400 Bad Request/);
    await expect(connecting).rejects.toBeInstanceOf(TransportError);
  });

  it('a plain (no TLS) client is refused by the TLS port', async () => {
    expect((await refusal(undefined)).message).toMatch(HANDSHAKE_REFUSED);
  });
});

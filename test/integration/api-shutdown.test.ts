/**
 * The API's graceful stop (api/shutdown.ts) with the real app and server in-process and a real SQLite
 * database: a request in flight when the stop begins still completes (error_code 0, its loans in the
 * outbox) while new connections are refused; only then are the dispatcher, Temporal and the database
 * closed. A request that outlasts the grace is cut off and the stop still ends. Temporal is never
 * called (the loans wait in the outbox; the dispatcher is a recorder).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../api/app';
import { shutdownApi } from '../../api/shutdown';
import { DEMO_ENV, loadConfig } from '../../config';
import { Db, openDb } from '../../db';
import { pendingLoans } from '../../db/outbox';
import { generateLoans } from '../../domain/generate';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { freePort } from '../../scripts/system';
import { lazyClient } from '../../temporal/connection';

jest.setTimeout(60_000);

const LOANS = '/restapi/services/k2loan_from_eko';
/** Silent unless something goes wrong (an error line explains a failed request). */
const quiet = createLogger('api-shutdown-test', 'error', {}, (line) => console.error(line));

let tmp: string;
let db: Db;
let server: http.Server;
let port: number;
/** What the stop did, in order. */
let steps: string[];

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-api-shutdown-'));
  // Temporal on a port nobody listens on: the lazy client never connects, as nothing here calls it.
  const config = loadConfig({ ...DEMO_ENV, K2_DATA_DIR: tmp, K2_DB_URL: path.join(tmp, 'k2.sqlite'), TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
  db = await openDb(config.db);
  const app = createApp({ config, db, temporal: lazyClient(config), logger: quiet, metrics: new Metrics() });
  server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
  steps = [];
});

afterEach(async () => {
  if (server.listening) await new Promise((resolve) => server.close(resolve));
  await db.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function stop(graceMs: number): Promise<void> {
  const record = steps;
  return shutdownApi(
    {
      server,
      dispatcher: { stop: async () => void record.push('dispatcher stopped') },
      closeTemporal: async () => void record.push('temporal closed'),
      // The test reads the outbox afterwards, so the database is closed in afterEach.
      closeDb: async () => void record.push('database closed'),
      logger: quiet,
      graceMs,
    },
    'SIGTERM',
  );
}

interface OpenRequest {
  /** Sends the rest of the body. */
  finish(): void;
  reply: Promise<{ status: number; body: string }>;
}

/** A POST of loans whose headers and first half of the body have reached the server (its 'request' event fired). */
async function openRequest(body: string): Promise<OpenRequest> {
  const arrived = new Promise<void>((resolve) => server.once('request', () => resolve()));
  let req!: http.ClientRequest;
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = http.request(
      { host: '127.0.0.1', port, path: LOANS, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
  const half = Math.floor(body.length / 2);
  req.write(body.slice(0, half));
  await arrived;
  return {
    finish: () => req.end(body.slice(half)),
    reply,
  };
}

/** Resolves with the error code of a fresh TCP connection to the API's port, or 'connected'. */
function connectOnce(): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
  });
}

describe('API shutdown', () => {
  it('lets a request in flight complete with its loans in the outbox, refuses new connections, then stops the dispatcher and closes Temporal and the database', async () => {
    const loans = generateLoans(20_261_201, 3);
    const open = await openRequest(JSON.stringify(loans));
    const stopped = stop(10_000);
    let stopEnded = false;
    void stopped.then(() => (stopEnded = true));

    expect(await connectOnce()).toBe('ECONNREFUSED');
    // The stop waits for the open request (nothing is closed yet).
    expect({ stopEnded, steps }).toEqual({ stopEnded: false, steps: [] });

    open.finish();
    const reply = await open.reply;
    expect({ status: reply.status, error_code: JSON.parse(reply.body).error_code }).toEqual({ status: 200, error_code: 0 });
    await stopped;
    expect(steps).toEqual(['dispatcher stopped', 'temporal closed', 'database closed']);
    const outbox = await pendingLoans(db, 100);
    expect(outbox.map((row) => row.contract_number).sort()).toEqual(loans.map((l) => l.contract_number).sort());
  });

  it('cuts off a request that outlasts the grace, and still stops', async () => {
    const open = await openRequest(JSON.stringify(generateLoans(20_261_202, 2)));
    await stop(300);
    expect(steps).toEqual(['dispatcher stopped', 'temporal closed', 'database closed']);
    await expect(open.reply).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(await pendingLoans(db, 100)).toEqual([]);
  });

  it('stops at once when no request is open, also with an idle keep-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/health', agent }, (res) => res.resume().on('end', () => resolve())).on('error', reject);
    });
    const startedAt = Date.now();
    await stop(30_000);
    agent.destroy();
    // Far below the grace: the idle connection did not hold the stop for 30 s.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(steps).toEqual(['dispatcher stopped', 'temporal closed', 'database closed']);
  });
});

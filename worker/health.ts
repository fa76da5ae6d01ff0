/**
 * The worker's health endpoint (K2_WORKER_HEALTH): GET /health says whether the worker runs and polls
 * (a load balancer or orchestrator stops sending it work, or restarts it, on 503); GET /ready says
 * whether what it needs answers: Temporal and K2's database. Bodies are only `ok` or `failed`, so the
 * endpoint tells nothing about the system to whoever can reach it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One dependency check of /ready: resolves when the dependency answers. */
export type ReadyCheck = () => Promise<unknown>;

export interface WorkerHealthOptions {
  /** host:port to listen on (config.worker.health). */
  address: string;
  /** True while the worker runs and polls (Worker.getState() === 'RUNNING'). */
  running: () => boolean;
  /** Checks of /ready by name (temporal, database); each must answer within readyTimeoutMs. */
  readyChecks: Record<string, ReadyCheck>;
  readyTimeoutMs?: number;
}

export interface WorkerHealthServer {
  /** The address actually bound (port 0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;

/** Splits 'host:port' as config validates it. */
export function parseHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Resolves true when every check answers in time, false as soon as one fails or is late. */
export async function allReady(checks: Record<string, ReadyCheck>, timeoutMs: number): Promise<boolean> {
  const withTimeout = (check: ReadyCheck) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      Promise.resolve()
        .then(check)
        .then(
          () => resolve(true),
          () => resolve(false),
        )
        .finally(() => clearTimeout(timer));
    });
  const results = await Promise.all(Object.values(checks).map(withTimeout));
  return results.every(Boolean);
}

function answer(res: http.ServerResponse, ok: boolean): void {
  res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(ok ? 'ok' : 'failed');
}

export async function startWorkerHealth({
  address,
  running,
  readyChecks,
  readyTimeoutMs = READY_TIMEOUT_MS,
}: WorkerHealthOptions): Promise<WorkerHealthServer> {
  const server = http.createServer((req, res) => {
    const route = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (route === '/health') {
      answer(res, running());
    } else if (route === '/ready') {
      void allReady(readyChecks, readyTimeoutMs).then((ok) => answer(res, ok));
    } else {
      res.writeHead(404).end();
    }
  });
  const { host, port } = parseHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

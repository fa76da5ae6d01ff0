/**
 * The API's graceful stop (SIGTERM, SIGINT): stop accepting connections, let open requests finish for
 * up to K2_API_SHUTDOWN_GRACE (a batch EKO posted is committed and answered, not cut off), then stop
 * the dispatcher (it records what Temporal accepted) and close Temporal and the database.
 */
import type http from 'node:http';
import type { Logger } from '../observability/logger';

export interface ApiParts {
  server: http.Server;
  dispatcher: { stop(): Promise<void> };
  /** Closed after the dispatcher: it may still hand rows to Temporal until it stops. */
  closeTemporal: () => Promise<void>;
  closeDb: () => Promise<void>;
  logger: Logger;
  graceMs: number;
}

/** Idle keep-alive connections would hold server.close() open; they are closed as they turn idle. */
const IDLE_SWEEP_MS = 100;

/** Resolves once no request is open, or after graceMs with the rest cut off; true when all finished. */
export async function closeServer(server: http.Server, graceMs: number): Promise<boolean> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const finished = await Promise.race([closed.then(() => true as const), late]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (!finished) {
    server.closeAllConnections();
    await closed;
  }
  return finished;
}

export async function shutdownApi({ server, dispatcher, closeTemporal, closeDb, logger, graceMs }: ApiParts, signal: string): Promise<void> {
  const startedAt = Date.now();
  logger.info('api stopping: no new connections, open requests may finish', { signal, graceMs });
  const allFinished = await closeServer(server, graceMs);
  if (!allFinished) logger.warn('api: requests still open after the shutdown grace were cut off', { graceMs });
  await dispatcher.stop();
  await closeTemporal();
  await closeDb();
  logger.info('api stopped', { shutdownMs: Date.now() - startedAt });
}

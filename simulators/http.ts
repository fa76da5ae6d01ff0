/** Starting and stopping a simulator's HTTP server (shared by the simulators). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import { logFatal, type Logger } from '../observability/logger';

/** Listens on host:port (0 for any free port) and resolves with the server once it listens. */
export function listenOn(app: RequestListener, port: number, host: string): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export const portOf = (server: http.Server): number => (server.address() as AddressInfo).port;

/** Closes the server and every open connection, so a stopping simulator leaves nothing behind. */
export function closeServer(server: http.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Runs a simulator's main: start it, stop it cleanly on SIGINT/SIGTERM, exit non-zero if it cannot start. */
export function runSimulator(name: string, start: () => Promise<{ close: () => Promise<void>; log: Logger }>): void {
  start().then(
    ({ close, log }) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info(`${name} stopping`, { signal });
        close().then(
          () => {
            log.info(`${name} stopped`);
            process.exit(0);
          },
          (err: unknown) => {
            log.error(`${name} did not stop cleanly`, { err });
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    },
    (err: Error) => {
      logFatal(name, `${name} failed to start`, err);
      process.exit(1);
    },
  );
}

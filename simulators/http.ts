/** Starting and stopping a simulator's HTTP server (shared by the simulators). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

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

/** The worker's health endpoint (worker/health.ts): /health follows the worker's state, /ready its dependencies, bodies only ok/failed. */
import { allReady, parseHostPort, startWorkerHealth, WorkerHealthServer } from '../../worker/health';

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describe('worker health endpoint', () => {
  let server: WorkerHealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers /health 200 while the worker runs and polls, 503 once it shuts down', async () => {
    let state = 'RUNNING';
    server = await startWorkerHealth({ address: '127.0.0.1:0', running: () => state === 'RUNNING', readyChecks: {} });
    expect(await get(`${server.url}/health`)).toEqual({ status: 200, body: 'ok' });
    state = 'STOPPING';
    expect(await get(`${server.url}/health`)).toEqual({ status: 503, body: 'failed' });
  });

  it('answers /ready ok only when Temporal and the database both answer, and says nothing more', async () => {
    let temporalUp = true;
    server = await startWorkerHealth({
      address: '127.0.0.1:0',
      running: () => true,
      readyChecks: {
        temporal: async () => {
          if (!temporalUp) throw new Error('14 UNAVAILABLE: connect ECONNREFUSED 10.0.0.7:7233');
        },
        database: async () => undefined,
      },
    });
    expect(await get(`${server.url}/ready`)).toEqual({ status: 200, body: 'ok' });
    temporalUp = false;
    expect(await get(`${server.url}/ready`)).toEqual({ status: 503, body: 'failed' });
  });

  it('refuses other paths and methods', async () => {
    server = await startWorkerHealth({ address: '127.0.0.1:0', running: () => true, readyChecks: {} });
    expect((await get(`${server.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${server.url}/health`, { method: 'POST' })).status).toBe(405);
  });

  it('fails to start when its address is taken (a second worker on the same K2_WORKER_HEALTH)', async () => {
    server = await startWorkerHealth({ address: '127.0.0.1:0', running: () => true, readyChecks: {} });
    const taken = `127.0.0.1:${new URL(server.url).port}`;
    await expect(startWorkerHealth({ address: taken, running: () => true, readyChecks: {} })).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('allReady', () => {
  it('is false when a check fails, hangs past the timeout, or throws at once', async () => {
    expect(await allReady({ a: async () => 1, b: async () => 2 }, 1000)).toBe(true);
    expect(await allReady({ a: async () => 1, b: () => Promise.reject(new Error('down')) }, 1000)).toBe(false);
    expect(await allReady({ a: () => new Promise(() => undefined) }, 20)).toBe(false);
    expect(
      await allReady(
        {
          a: () => {
            throw new Error('sync');
          },
        },
        1000,
      ),
    ).toBe(false);
    expect(await allReady({}, 10)).toBe(true);
  });
});

describe('parseHostPort', () => {
  it('splits host and port', () => {
    expect(parseHostPort('0.0.0.0:9465')).toEqual({ host: '0.0.0.0', port: 9465 });
    expect(parseHostPort('k2-worker:9465')).toEqual({ host: 'k2-worker', port: 9465 });
  });
});

/**
 * A process started with the rest of the system may come up before PostgreSQL answers: the worker
 * and the API both migrate through migrateWhenReady (worker/startup-retry.ts), which waits out the
 * refused connections and migrates once the server is there. The server "comes up" here as a TCP
 * proxy in front of the suite's PostgreSQL that starts listening a few seconds late.
 */
import net from 'node:net';
import { createDb } from '../../db';
import { freePort } from '../../scripts/system';
import { migrateWhenReady } from '../../worker/startup-retry';
import { testDatabases } from '../helpers/databases';

jest.setTimeout(60_000);

const postgres = testDatabases().find((d) => d.name === 'postgres');
const target = process.env.K2_TEST_PG_URL ? new URL(process.env.K2_TEST_PG_URL) : undefined;

afterAll(async () => {
  await postgres?.cleanup();
});

/** Listens on `port` and forwards every connection to PostgreSQL. */
function proxyToPostgres(port: number): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target!.port || 5432), target!.hostname);
    client.pipe(upstream).pipe(client);
    const close = () => (client.destroy(), upstream.destroy());
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

const codeOf = (err: unknown) => String((err as { code?: unknown })?.code ?? (err as Error)?.message);

(postgres ? test : test.skip)("started before PostgreSQL answers, a process waits for it and then migrates K2's database", async () => {
  const port = await freePort();
  const db = await postgres!.open({ migrate: false, via: `127.0.0.1:${port}` });
  const refusals: string[] = [];
  let proxy: Promise<net.Server> | undefined;
  const late = setTimeout(() => (proxy = proxyToPostgres(port)), 2500);
  try {
    await migrateWhenReady(db, (_attempt, err) => refusals.push(codeOf(err)), 30_000);
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0]).toBe('ECONNREFUSED');
    expect(await db.schema.hasTable('payment_demands')).toBe(true);
  } finally {
    clearTimeout(late);
    await db.destroy();
    const server = await proxy;
    server?.close();
  }
});

(postgres ? test : test.skip)('a database that answers "no" ends start-up at once: no waiting on a wrong password', async () => {
  const u = new URL(process.env.K2_TEST_PG_URL!);
  u.password = 'not-the-password';
  u.username = 'k2_no_such_user';
  const db = createDb({ client: 'pg', url: u.toString() });
  const refusals: string[] = [];
  try {
    await expect(migrateWhenReady(db, (_attempt, err) => refusals.push(codeOf(err)), 30_000)).rejects.toMatchObject({ code: expect.stringMatching(/^28/) });
    expect(refusals).toEqual([]);
  } finally {
    await db.destroy();
  }
});

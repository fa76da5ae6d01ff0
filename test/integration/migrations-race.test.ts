/**
 * Start-up when every process starts at once on a fresh database: each of them runs the migrations
 * (db/index.ts migrate). Without a lock two of them both find no knex_migrations table and both
 * create it, and one dies with "table knex_migrations already exists". Here several knex instances
 * (as separate processes would have: own connections) migrate one fresh database at the same moment,
 * on SQLite and on PostgreSQL: all succeed, and each migration ran once.
 */
import path from 'node:path';
import { createDb, isSqlite, migrate, type Db } from '../../db';
import { migrations } from '../../db/migrations';
import { testDatabases, type TestDatabase } from '../helpers/databases';

const PROCESSES = 4;

describe.each(testDatabases())('migrations at once on %s', (database: TestDatabase) => {
  afterAll(() => database.cleanup());

  test(`${PROCESSES} processes migrating a fresh database at once all succeed, each migration runs once`, async () => {
    const first = await database.open({ migrate: false });
    const others = await Promise.all(Array.from({ length: PROCESSES - 1 }, () => sameDatabase(first)));
    try {
      const results = await Promise.allSettled([first, ...others].map((db) => migrate(db)));
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const ran = await first('knex_migrations').select('name').orderBy('name');
      expect(ran.map((r) => r.name)).toEqual(Object.keys(migrations).sort());
      // the schema is whole: the last migration's columns are there
      expect(await first.schema.hasColumn('loan_outbox', 'lease_until')).toBe(true);
    } finally {
      await Promise.all(others.map((db) => db.destroy()));
    }
  });
});

/** Another connection pool to the same database, as another process would open it. */
async function sameDatabase(db: Db): Promise<Db> {
  if (isSqlite(db)) return createDb({ client: 'sqlite', url: path.resolve((db.client.config.connection as { filename: string }).filename) });
  // the test database's own schema (test/helpers/databases.ts sets it as the search_path)
  const { rows } = await db.raw('select current_schema() as schema');
  const url = new URL(process.env.K2_TEST_PG_URL!.trim());
  url.searchParams.set('options', `-c search_path=${rows[0].schema}`);
  return createDb({ client: 'pg', url: url.toString() });
}

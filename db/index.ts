/**
 * The K2 database: SQLite by default (WAL), PostgreSQL in production. Same migrations on both.
 * Migrations are TypeScript modules registered in db/migrations/index.ts (no file globbing, so they
 * work the same from ts-jest and from the compiled dist/).
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { Knex } from 'knex';
import type { Config } from '../config';
import { migrations } from './migrations';

export type Db = Knex;

/** True for the SQLite default (knex's better-sqlite3 dialect, here extended by ImmediateSqliteClient). */
export const isSqlite = (db: Db): boolean => db.client.dialect === 'sqlite3';

// knex's own SQLite classes (deep imports: knex ships no types for them, and no public hook for BEGIN).
const BetterSqlite3Client: new (config: Knex.Config) => Knex.Client = require('knex/lib/dialects/better-sqlite3');
const SqliteTransaction: new (client: Knex.Client, ...args: unknown[]) => { query(conn: unknown, sql: string): Promise<unknown> } = require('knex/lib/dialects/sqlite3/execution/sqlite-transaction');

/**
 * The API and the worker write the same SQLite file. knex opens a transaction with a plain BEGIN,
 * which takes the write lock only at the first write: a transaction that reads first (issueDemand,
 * enqueueReport, claimRecords) and then finds the other process writing cannot wait for it
 * (SQLite returns "database is locked" at once instead of calling the busy handler, because a
 * reader waiting for the write lock could deadlock). BEGIN IMMEDIATE takes the write lock up front,
 * where busy_timeout applies, so such a transaction waits its turn instead of failing. Every K2
 * transaction writes, so none loses concurrency by it.
 */
class ImmediateSqliteTransaction extends SqliteTransaction {
  begin(conn: unknown): Promise<unknown> {
    return this.query(conn, 'BEGIN IMMEDIATE;');
  }
}
class ImmediateSqliteClient extends BetterSqlite3Client {
  override transaction(...args: unknown[]) {
    return new ImmediateSqliteTransaction(this, ...args) as unknown as Knex.Transaction;
  }
}

/**
 * compileSqlOnError false: a failed query's error names the SQL with its placeholders, not the
 * values (IINs, names), because activity failures are logged and shown in the Web UI.
 */
export function createDb(db: Config['db']): Db {
  if (db.client === 'pg') {
    return knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 10 }, compileSqlOnError: false });
  }
  if (db.url !== ':memory:') fs.mkdirSync(path.dirname(db.url), { recursive: true });
  return knexFactory({
    client: ImmediateSqliteClient as unknown as typeof Knex.Client,
    connection: { filename: db.url },
    useNullAsDefault: true,
    compileSqlOnError: false,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: { pragma: (s: string) => unknown }, done: (err: Error | null, conn: unknown) => void) => {
        conn.pragma('journal_mode = WAL');
        // FULL: a committed transaction (an answer of error_code 0) survives a power loss, not only a killed process.
        conn.pragma('synchronous = FULL');
        conn.pragma('busy_timeout = 5000');
        conn.pragma('foreign_keys = ON');
        done(null, conn);
      },
    },
  });
}

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name],
};

export async function migrate(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

/** Opens the database and brings its schema up to date. */
export async function openDb(db: Config['db']): Promise<Db> {
  const knex = createDb(db);
  await migrate(knex);
  return knex;
}

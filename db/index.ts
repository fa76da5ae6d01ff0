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
const SqliteTransaction: new (
  client: Knex.Client,
  ...args: unknown[]
) => { query(conn: unknown, sql: string): Promise<unknown> } = require('knex/lib/dialects/sqlite3/execution/sqlite-transaction');

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

/**
 * Brings the schema up to date under a lock, so that processes starting at once on a fresh database
 * (the worker and every API replica run this) do not race knex's own set-up: without it two of them
 * create knex_migrations at the same moment and one dies with "already exists". A process that finds
 * the migrations running waits for them, then finds nothing left to do.
 */
export async function migrate(db: Db): Promise<void> {
  await withMigrationLock(db, () => db.migrate.latest({ migrationSource }));
}

/** How long a process waits for another's migrations before it gives up (start-up fails with a clear error). */
const MIGRATION_LOCK_WAIT_MS = 10 * 60_000;
/** PostgreSQL advisory lock key (first half; the second is the schema's hash, so schemas migrate independently). */
const PG_MIGRATION_LOCK = 0x4b32;

function withMigrationLock<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  return isSqlite(db) ? withSqliteMigrationLock(db, fn) : withPgMigrationLock(db, fn);
}

/**
 * PostgreSQL: a session advisory lock, held on one connection of the pool around the migrations (which
 * run on others). It dies with its session, so a process killed while migrating leaves no lock behind.
 */
async function withPgMigrationLock<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  const conn = await db.client.acquireConnection();
  try {
    await db.raw('select pg_advisory_lock(?, hashtext(current_schema()))', [PG_MIGRATION_LOCK]).connection(conn);
    try {
      return await fn();
    } finally {
      await db.raw('select pg_advisory_unlock(?, hashtext(current_schema()))', [PG_MIGRATION_LOCK]).connection(conn);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/**
 * SQLite: an exclusive transaction on a lock file beside the database (`<file>.migrations-lock`), held
 * around the migrations. The database itself cannot be the lock (the migrations must write it), and an
 * OS file lock, unlike a marker file, goes away with a killed process. Waiters poll without blocking
 * the event loop.
 */
async function withSqliteMigrationLock<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  const filename = (db.client.config.connection as { filename: string }).filename;
  if (filename === ':memory:') return fn();
  const Database = require('better-sqlite3') as new (file: string, opts?: { timeout?: number }) => { exec(sql: string): void; close(): void };
  const lock = new Database(`${filename}.migrations-lock`, { timeout: 0 });
  try {
    const giveUpAt = Date.now() + MIGRATION_LOCK_WAIT_MS;
    for (;;) {
      try {
        lock.exec('BEGIN EXCLUSIVE');
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
        if (Date.now() > giveUpAt)
          throw new Error(`the database migrations of another process did not finish within ${MIGRATION_LOCK_WAIT_MS / 60_000} minutes`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    try {
      return await fn();
    } finally {
      lock.exec('COMMIT');
    }
  } finally {
    lock.close();
  }
}

/** Opens the database and brings its schema up to date. */
export async function openDb(db: Config['db']): Promise<Db> {
  const knex = createDb(db);
  await migrate(knex);
  return knex;
}

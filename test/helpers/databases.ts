/**
 * The databases the database tests run on, for `describe.each(testDatabases())`:
 *  - always SQLite, on a temporary file (as K2 runs by default);
 *  - PostgreSQL too when K2_TEST_PG_URL is set and the server answers (CI: scripts/ci-postgres.sh).
 *
 * Every open() gives a fresh, isolated database: a new SQLite file, or on PostgreSQL a new, uniquely
 * named schema that the connection uses through its search_path (set in the connection string, so
 * the Db is made by db/index.ts's createDb exactly as production makes it). Parallel jest workers
 * and repeated runs therefore never see each other's tables. cleanup() closes every Db it opened
 * and removes the files / drops the schemas.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { createDb, migrate, type Db } from '../../db';

export type TestDatabaseName = 'sqlite' | 'postgres';

export interface TestDatabase {
  name: TestDatabaseName;
  /**
   * A fresh, empty database; migrated to the latest schema unless `migrate: false`. `via`
   * (PostgreSQL only): connect through this host:port, a proxy in front of the server.
   */
  open(opts?: { migrate?: boolean; via?: string }): Promise<Db>;
  /** Closes every Db this entry opened and removes what it created. */
  cleanup(): Promise<void>;
  /** Jest's describe.each label. */
  toString(): string;
}

function sqliteDatabase(): TestDatabase {
  const opened: Db[] = [];
  let dir: string | undefined;
  return {
    name: 'sqlite',
    async open(opts = {}) {
      dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'k2-dbtest-'));
      const db = createDb({ client: 'sqlite', url: path.join(dir, `k2-${opened.length}.sqlite`) });
      opened.push(db);
      if (opts.migrate !== false) await migrate(db);
      return db;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((db) => db.destroy()));
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
    toString: () => 'sqlite',
  };
}

/** The URL with `search_path` set for every connection (libpq's `options` parameter, which node-postgres passes on). */
function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

function throughProxy(url: string, hostPort: string): string {
  const u = new URL(url);
  u.host = hostPort;
  return u.toString();
}

function postgresDatabase(url: string): TestDatabase {
  const opened: Db[] = [];
  const schemas: string[] = [];
  const admin = () => knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  return {
    name: 'postgres',
    async open(opts = {}) {
      // Lower-case letters, digits and _ only: safe unquoted, and unique per process and call.
      const schema = `k2t_${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
      const a = admin();
      try {
        await a.raw(`CREATE SCHEMA ${schema}`);
      } finally {
        await a.destroy();
      }
      schemas.push(schema);
      const db = createDb({ client: 'pg', url: withSearchPath(opts.via ? throughProxy(url, opts.via) : url, schema) });
      opened.push(db);
      if (opts.migrate !== false) await migrate(db);
      return db;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((db) => db.destroy()));
      if (schemas.length === 0) return;
      const a = admin();
      try {
        for (const schema of schemas.splice(0)) await a.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await a.destroy();
      }
    },
    toString: () => 'postgres',
  };
}

let pgReachable: { url: string; ok: boolean; why?: string } | undefined;

/**
 * Whether the server at `url` answers, asked once per process. Synchronous (a child process with a
 * short timeout) because describe.each needs its table when the test file loads.
 */
function postgresReachable(url: string): boolean {
  if (pgReachable?.url === url) return pgReachable.ok;
  const probe = `
    const { Client } = require('pg');
    const c = new Client({ connectionString: process.env.PROBE_URL, connectionTimeoutMillis: 4000 });
    c.connect().then(() => c.query('SELECT 1')).then(() => c.end()).then(
      () => process.exit(0),
      (e) => { process.stderr.write(String(e && e.message)); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', probe], {
    cwd: path.resolve(__dirname, '../..'),
    env: { ...process.env, PROBE_URL: url },
    timeout: 8000,
    encoding: 'utf8',
  });
  pgReachable = { url, ok: r.status === 0, why: r.status === 0 ? undefined : (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
  if (!pgReachable.ok) {
    // eslint-disable-next-line no-console
    console.warn(`K2_TEST_PG_URL is set but PostgreSQL does not answer (${pgReachable.why}); the database tests run on SQLite only`);
  }
  return pgReachable.ok;
}

/** SQLite always; PostgreSQL when K2_TEST_PG_URL is set and reachable. */
export function testDatabases(): TestDatabase[] {
  const list: TestDatabase[] = [sqliteDatabase()];
  const url = process.env.K2_TEST_PG_URL?.trim();
  if (url && postgresReachable(url)) list.push(postgresDatabase(url));
  return list;
}

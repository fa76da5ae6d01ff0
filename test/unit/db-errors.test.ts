import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import knexFactory from 'knex';
import { isTransientDbError } from '../../db/errors';

function withCode(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('isTransientDbError', () => {
  it.each([
    ['SQLITE_BUSY', withCode('SQLITE_BUSY', 'database is locked')],
    ['SQLITE_BUSY_SNAPSHOT', withCode('SQLITE_BUSY_SNAPSHOT')],
    ['SQLITE_LOCKED', withCode('SQLITE_LOCKED', 'database table is locked')],
    ['SQLITE_LOCKED_SHAREDCACHE', withCode('SQLITE_LOCKED_SHAREDCACHE')],
    ['"database is locked" without a code', new Error('insert into `payment_demands` ... - database is locked')],
    ['PG 08006 connection_failure', withCode('08006')],
    ['PG 08001 unable to connect', withCode('08001')],
    ['PG 57P01 admin_shutdown', withCode('57P01')],
    ['PG 57P02 crash_shutdown', withCode('57P02')],
    ['PG 57P03 cannot_connect_now', withCode('57P03')],
    ['PG 53300 too_many_connections', withCode('53300')],
    ['PG 53200 out_of_memory', withCode('53200')],
    ['PG 40001 serialization_failure', withCode('40001')],
    ['PG 40P01 deadlock_detected', withCode('40P01')],
    ['pg: Connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
    ['KnexTimeoutError', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' })],
    ['ECONNREFUSED', withCode('ECONNREFUSED')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['ETIMEDOUT', withCode('ETIMEDOUT')],
    ['EPIPE', withCode('EPIPE')],
    ['EMFILE (document store out of file handles)', withCode('EMFILE')],
    ['a transient cause', new Error('issueDemand failed', { cause: withCode('SQLITE_BUSY') })],
    ['an AggregateError of refused connects', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'connect failed')],
  ])('%s is transient', (_label, err) => {
    expect(isTransientDbError(err)).toBe(true);
  });

  it.each([
    ['PG 23505 unique_violation', withCode('23505')],
    ['PG 23503 foreign_key_violation', withCode('23503')],
    ['PG 42P01 undefined_table', withCode('42P01')],
    ['PG 42601 syntax_error', withCode('42601')],
    ['PG 53100 disk_full', withCode('53100')],
    ['PG 57014 query_canceled', withCode('57014')],
    ['SQLITE_CONSTRAINT_UNIQUE', withCode('SQLITE_CONSTRAINT_UNIQUE', 'UNIQUE constraint failed')],
    ['SQLITE_ERROR (no such table)', withCode('SQLITE_ERROR', 'no such table: x')],
    ['SQLITE_CORRUPT', withCode('SQLITE_CORRUPT')],
    ['SQLITE_FULL', withCode('SQLITE_FULL')],
    ['ENOSPC', withCode('ENOSPC')],
    ['EACCES', withCode('EACCES')],
    ['a TypeError', new TypeError('cannot read properties of undefined')],
    ['a plain Error', new Error('something else')],
    ['a string', 'database'],
    ['undefined', undefined],
    ['null', null],
    ['a number', 5],
    ['a permanent cause', new Error('wrapped', { cause: withCode('23505') })],
  ])('%s is permanent', (_label, err) => {
    expect(isTransientDbError(err)).toBe(false);
  });

  it('survives a cycle in the cause chain', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isTransientDbError(a)).toBe(false);
  });
});

describe('isTransientDbError on the real drivers', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-dberrors-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('better-sqlite3: a write while another connection holds the write lock is transient', () => {
    const file = path.join(dir, 'busy.sqlite');
    const holder = new Database(file);
    const other = new Database(file, { timeout: 0 });
    try {
      holder.exec('CREATE TABLE t (x INTEGER)');
      holder.exec('BEGIN IMMEDIATE');
      let caught: unknown;
      try {
        other.exec('INSERT INTO t VALUES (1)');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeDefined();
      expect(isTransientDbError(caught)).toBe(true);
      holder.exec('ROLLBACK');
    } finally {
      holder.close();
      other.close();
    }
  });

  it('better-sqlite3: a unique violation is permanent', () => {
    const db = new Database(path.join(dir, 'unique.sqlite'));
    try {
      db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY)');
      db.exec('INSERT INTO t VALUES (1)');
      let caught: unknown;
      try {
        db.exec('INSERT INTO t VALUES (1)');
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string }).code).toMatch(/^SQLITE_CONSTRAINT/);
      expect(isTransientDbError(caught)).toBe(false);
    } finally {
      db.close();
    }
  });

  it('knex: a pool timeout is transient', async () => {
    const knex = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: path.join(dir, 'pool.sqlite') },
      useNullAsDefault: true,
      pool: { min: 0, max: 1 },
      acquireConnectionTimeout: 200,
    });
    try {
      await knex.transaction(async (trx) => {
        await trx.raw('select 1');
        const err = await knex.raw('select 1').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as Error).name).toBe('KnexTimeoutError');
        expect(isTransientDbError(err)).toBe(true);
      });
    } finally {
      await knex.destroy();
    }
  });

  it('knex on pg: a refused connection is transient', async () => {
    // Port 1 on localhost: nothing listens, the connect is refused at once.
    const knex = knexFactory({ client: 'pg', connection: 'postgres://u:p@127.0.0.1:1/db', pool: { min: 0, max: 1 }, acquireConnectionTimeout: 5000 });
    try {
      const err = await knex.raw('select 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      expect(isTransientDbError(err)).toBe(true);
    } finally {
      await knex.destroy();
    }
  });
});

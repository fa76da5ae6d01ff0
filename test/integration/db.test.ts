/**
 * The K2 database on every database the suite has (test/helpers/databases.ts): SQLite always,
 * PostgreSQL when K2_TEST_PG_URL is set. The same migrations, outbox, demand references and
 * document metadata must behave the same on both.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { migrate, type Db } from '../../db';
import { migrations } from '../../db/migrations';
import { countPending, enqueueLoans, hasPendingBacklog, loanDigest, markDispatched, markDispatchFailed, pendingLoans } from '../../db/outbox';
import { findDemand, issueDemand, markDemandSent, recordDemandStatus, type NewDemand } from '../../db/demands';
import { createDocumentStore } from '../../documents/store';
import { generateLoans } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { testDatabases, type TestDatabase } from '../helpers/databases';

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name],
};
const TABLES = ['loan_outbox', 'payment_demands', 'document_contents', 'documents'];
const REFERENCE = /^PTP\d{11}$/;

/** Loans in their normalized form (debt as a decimal string), as the API hands them to the outbox. */
function loans(seed: number, count: number): Loan[] {
  return generateLoans(seed, count).map((l) => ({ ...l, debt: Number(l.debt).toFixed(2) }));
}

function demand(caseId: string, over: Partial<NewDemand> = {}): NewDemand {
  return {
    caseId,
    workflowId: caseId.split('/')[0],
    contractNumber: `KD${caseId.replace(/\D/g, '').padStart(10, '0').slice(-10)}`,
    amount: '1500000.00',
    currency: 'KZT',
    iban: 'KZ86125KZT5004100100',
    iinbin: '900101300007',
    evidence: [{ sha256: 'a'.repeat(64), size: 1234, mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf' }],
    ...over,
  };
}

async function tableExists(db: Db, table: string): Promise<boolean> {
  return db.schema.hasTable(table);
}

describe.each(testDatabases())('database: $name', (tdb: TestDatabase) => {
  let db: Db;

  beforeAll(async () => {
    db = await tdb.open();
  });
  afterAll(async () => {
    await tdb.cleanup();
  });

  it("a failed query's error names its SQL with placeholders, never the values (IINs in logs)", async () => {
    // (the driver's error class comes from outside jest's realm: checked by its message, not instanceof)
    const message = await db('payment_demands')
      .insert({ iinbin: '890101402471', no_such_column: 'Тестов Тест' })
      .then(
        () => 'no error',
        (e: { message: string }) => e.message,
      );
    expect(message).toContain('insert into');
    expect(message).not.toContain('890101402471');
    expect(message).not.toContain('Тестов');
  });

  describe('migrations', () => {
    it('run up and down and up again on an empty database', async () => {
      const fresh = await tdb.open({ migrate: false });
      for (const t of TABLES) expect(await tableExists(fresh, t)).toBe(false);

      await migrate(fresh);
      for (const t of TABLES) expect(await tableExists(fresh, t)).toBe(true);
      const [done] = await fresh.migrate.list({ migrationSource });
      expect(done.map((m: { name: string } | string) => (typeof m === 'string' ? m : m.name))).toEqual(Object.keys(migrations).sort());

      // Running them again changes nothing.
      await migrate(fresh);

      await fresh.migrate.rollback({ migrationSource }, true);
      for (const t of TABLES) expect(await tableExists(fresh, t)).toBe(false);

      await migrate(fresh);
      for (const t of TABLES) expect(await tableExists(fresh, t)).toBe(true);
    });

    it('go down and up one step at a time, each migration undoing exactly what it did', async () => {
      const fresh = await tdb.open({ migrate: false });
      const names = Object.keys(migrations).sort();
      const tablesNow = async () => {
        const rows =
          fresh.client.config.client === 'pg'
            ? (await fresh.raw(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`)).rows
            : await fresh.raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`);
        return (rows as Array<{ name: string }>)
          .map((r) => r.name)
          .filter((n) => !n.startsWith('knex_'))
          .sort();
      };
      // The tables after each step up.
      const after: string[][] = [await tablesNow()];
      for (let i = 0; i < names.length; i++) {
        await fresh.migrate.up({ migrationSource });
        after.push(await tablesNow());
      }
      expect(after[names.length]).toEqual(expect.arrayContaining(TABLES));
      // Each step down gives back the tables of the step before.
      for (let i = names.length; i > 0; i--) {
        await fresh.migrate.down({ migrationSource });
        expect(await tablesNow()).toEqual(after[i - 1]);
      }
      expect(after[0]).toEqual([]);
    });
  });

  describe('outbox', () => {
    beforeEach(async () => {
      await db('loan_outbox').delete();
    });

    it('enqueues the loans of one request and hands them out oldest first', async () => {
      const first = loans(1, 3);
      const second = loans(2, 2);
      await enqueueLoans(db, first, 'req-1');
      await enqueueLoans(db, second, 'req-2');

      expect(await countPending(db)).toBe(5);
      const pending = await pendingLoans(db, 10);
      expect(pending.map((r) => r.contract_number)).toEqual([...first, ...second].map((l) => l.contract_number));
      expect(pending.map((r) => r.loan)).toEqual([...first, ...second]);
      expect(pending.every((r) => typeof r.id === 'number' && r.attempts === 0)).toBe(true);
      const ids = pending.map((r) => r.id);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);

      const rows = await db('loan_outbox').orderBy('id').select('payload_sha256', 'request_id');
      expect(rows.map((r) => r.payload_sha256)).toEqual([...first, ...second].map(loanDigest));
      expect(rows.map((r) => r.request_id)).toEqual(['req-1', 'req-1', 'req-1', 'req-2', 'req-2']);

      // The limit takes the oldest.
      expect((await pendingLoans(db, 2)).map((r) => r.id)).toEqual(ids.slice(0, 2));
    });

    it('is all-or-nothing: one bad item among many (past the first insert chunk) leaves no row', async () => {
      const batch = loans(3, 620);
      // NOT NULL violated by the 560th item, after the first chunk of 500 was inserted.
      (batch[559] as { contract_number: unknown }).contract_number = null;
      await expect(enqueueLoans(db, batch, 'req-bad')).rejects.toThrow();
      expect(await countPending(db)).toBe(0);
      expect(Number((await db('loan_outbox').count({ n: '*' }))[0].n)).toBe(0);

      // A good request of the same size goes in whole.
      await enqueueLoans(db, loans(4, 620), 'req-good');
      expect(await countPending(db)).toBe(620);
    });

    it('markDispatched takes rows out of the pending list; markDispatchFailed counts attempts and keeps the last error', async () => {
      await enqueueLoans(db, loans(5, 1200), 'req-big');
      const pending = await pendingLoans(db, 2000);
      expect(pending).toHaveLength(1200);

      // More ids than one IN chunk (500).
      const dispatched = pending.slice(0, 1100).map((r) => r.id);
      await markDispatched(db, dispatched);
      const rest = await pendingLoans(db, 2000);
      expect(rest.map((r) => r.id)).toEqual(pending.slice(1100).map((r) => r.id));
      expect(await countPending(db)).toBe(100);
      // The worker's backlog-narrowing check: a backlog of at least N rows, dispatched rows not counted.
      expect(await hasPendingBacklog(db, 100)).toBe(true);
      expect(await hasPendingBacklog(db, 101)).toBe(false);
      expect(await hasPendingBacklog(db, 1)).toBe(true);
      const stamped = await db('loan_outbox').whereIn('id', dispatched.slice(0, 5)).select('dispatched_at');
      expect(stamped.every((r) => r.dispatched_at !== null)).toBe(true);

      const failing = rest[0].id;
      await markDispatchFailed(db, failing, 'temporal unavailable');
      await markDispatchFailed(db, failing, 'x'.repeat(5000));
      const row = await db('loan_outbox').where({ id: failing }).first('attempts', 'last_error', 'dispatched_at');
      expect(row.attempts).toBe(2);
      expect(row.last_error).toBe('x'.repeat(1000));
      expect(row.dispatched_at).toBeNull();
      // A failed row stays pending, in its place.
      const after = await pendingLoans(db, 1);
      expect(after[0]).toMatchObject({ id: failing, attempts: 2 });
    });
  });

  describe('payment demands', () => {
    it('issues a PTP reference once per case: a second call returns the same reference', async () => {
      const first = await issueDemand(db, demand('case-idem/run-1'));
      expect(first).toMatch(REFERENCE);
      const again = await issueDemand(db, demand('case-idem/run-1', { amount: '1.00' }));
      expect(again).toBe(first);
      expect(Number((await db('payment_demands').where({ case_id: 'case-idem/run-1' }).count({ n: '*' }))[0].n)).toBe(1);

      const row = await findDemand(db, first);
      expect(row).toMatchObject({ reference: first, case_id: 'case-idem/run-1', amount: '1500000.00', currency: 'KZT', status: 'issued', sent_at: null });
      expect(row!.evidence).toEqual(demand('x').evidence);
      expect(await findDemand(db, 'PTP99999999999')).toBeUndefined();
    });

    it('gives 50 cases issuing in parallel 50 distinct references', async () => {
      const refs = await Promise.all(Array.from({ length: 50 }, (_, i) => issueDemand(db, demand(`case-par-${i}/run`))));
      expect(refs.every((r) => REFERENCE.test(r))).toBe(true);
      expect(new Set(refs).size).toBe(50);
      const rows = await db('payment_demands').where('case_id', 'like', 'case-par-%').select('case_id', 'reference');
      expect(rows).toHaveLength(50);
      expect(new Map(rows.map((r) => [r.case_id, r.reference]))).toEqual(new Map(refs.map((r, i) => [`case-par-${i}/run`, r])));
    });

    it('gives one case issuing in parallel (retries racing) one reference and one row', async () => {
      const refs = await Promise.all(Array.from({ length: 20 }, () => issueDemand(db, demand('case-race/run'))));
      expect(new Set(refs).size).toBe(1);
      expect(refs[0]).toMatch(REFERENCE);
      expect(Number((await db('payment_demands').where({ case_id: 'case-race/run' }).count({ n: '*' }))[0].n)).toBe(1);
    });

    // The worker and the API are two processes writing one SQLite file: a transaction that reads
    // before it writes must wait for the other's write lock, not fail with "database is locked".
    (tdb.name === 'sqlite' ? it : it.skip)('issues a demand while another process holds the write lock: it waits its turn', async () => {
      const file = (db.client.config.connection as { filename: string }).filename;
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const conn = new (require('better-sqlite3'))(${JSON.stringify(file)});
           conn.pragma('busy_timeout = 5000');
           conn.exec('BEGIN IMMEDIATE');
           conn.prepare("update payment_demands set status = status where 0").run();
           process.stdout.write('locked\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
           conn.exec('COMMIT');`,
        ],
        { cwd: path.resolve(__dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise<number | null>((resolve) => holder.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
        holder.on('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
      });
      // reads the demand table first (a retry would find its reference there), then inserts
      const reference = await issueDemand(db, demand('case-lock/run'));
      expect(reference).toMatch(REFERENCE);
      expect(await exited).toBe(0);
    });

    it('never moves a status back: issued → sent → PC3, then PC1 keeps PC3', async () => {
      const ref = await issueDemand(db, demand('case-status/run'));
      await recordDemandStatus(db, ref, 'PC1'); // before it was sent: still forwards
      expect((await findDemand(db, ref))!.status).toBe('PC1');
      await markDemandSent(db, ref); // only from issued: does not move PC1 back to sent
      expect((await findDemand(db, ref))!.status).toBe('PC1');
      await recordDemandStatus(db, ref, 'PC3');
      expect((await findDemand(db, ref))!.status).toBe('PC3');
      await recordDemandStatus(db, ref, 'PC1');
      expect((await findDemand(db, ref))!.status).toBe('PC3');

      const other = await issueDemand(db, demand('case-status-2/run'));
      await markDemandSent(db, other);
      const sent = await findDemand(db, other);
      expect(sent!.status).toBe('sent');
      expect(sent!.sent_at).not.toBeNull();
      await markDemandSent(db, other);
      await recordDemandStatus(db, other, 'PC1');
      expect((await findDemand(db, other))!.status).toBe('PC1');

      // Unknown references are ignored.
      await expect(recordDemandStatus(db, 'PTP00000000000', 'PC3')).resolves.toBeUndefined();
    });
  });

  describe('document store metadata', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-dbtest-docs-'));
    });
    afterAll(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('stores content once, one row per (case, kind, content), sizes as numbers, Cyrillic names intact', async () => {
      const store = createDocumentStore({ db, dir });
      const bytes = Buffer.from('%PDF-1.4\n% scan for the database test\n%%EOF\n', 'latin1');
      const sha = createHash('sha256').update(bytes).digest('hex');
      const fetchedAt = new Date('2024-05-06T07:08:09.000Z');
      const meta = { caseId: 'case-doc-1/run', kind: 'dbz-scan', mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf', fetchedAt };

      const ref = await store.put(Readable.from([bytes]), meta);
      expect(ref).toEqual({ sha256: sha, size: bytes.length, mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf' });
      // Again for the same case (a retried activity): nothing new.
      expect(await store.put(Readable.from([bytes]), { ...meta, fileName: 'other.pdf', fetchedAt: new Date() })).toEqual(ref);
      // The same content for another case: a second record, one content row.
      await store.put(Readable.from([bytes]), { ...meta, caseId: 'case-doc-2/run' });

      const stored = await store.get(sha);
      expect(stored).toMatchObject({ sha256: sha, size: bytes.length });
      expect(typeof stored!.size).toBe('number');
      expect(Number.isNaN(Date.parse(stored!.storedAt))).toBe(false);
      expect(stored!.records.map((r) => r.caseId)).toEqual(['case-doc-1/run', 'case-doc-2/run']);
      expect(stored!.records[0]).toEqual({
        caseId: 'case-doc-1/run',
        kind: 'dbz-scan',
        sha256: sha,
        mediaType: 'application/pdf',
        fileName: 'Скан ДБЗ KD0000000001.pdf',
        size: bytes.length,
        fetchedAt: fetchedAt.toISOString(),
      });
      expect(Number((await db('document_contents').where({ sha256: sha }).count({ n: '*' }))[0].n)).toBe(1);

      expect(await store.listForCase('case-doc-1/run')).toEqual([stored!.records[0]]);
      expect(await store.listForCase('case-none')).toEqual([]);
      expect(await store.get('f'.repeat(64))).toBeUndefined();
    });

    it('keeps one content row when two cases store the same bytes at the same time', async () => {
      const store = createDocumentStore({ db, dir });
      const bytes = Buffer.from('II*\0 concurrent tiff-ish bytes', 'latin1');
      const sha = createHash('sha256').update(bytes).digest('hex');
      const refs = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.put(Readable.from([bytes]), { caseId: `case-conc-${i % 5}/run`, kind: 'dbz-scan', mediaType: 'image/tiff', fileName: `scan-${i}.tif` }),
        ),
      );
      expect(new Set(refs.map((r) => r.sha256))).toEqual(new Set([sha]));
      const stored = await store.get(sha);
      expect(stored!.records).toHaveLength(5);
      expect(Number((await db('document_contents').where({ sha256: sha }).count({ n: '*' }))[0].n)).toBe(1);
    });
  });
});

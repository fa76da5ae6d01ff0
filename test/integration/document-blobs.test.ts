/**
 * The storage backends of documents and GKB files (documents/blobs.ts): the same contract for the
 * fs folder and for K2's database (on SQLite and, with K2_TEST_PG_URL, PostgreSQL): put / open /
 * exists, chunked streaming both ways, a commit replaces atomically, a failed or discarded write
 * leaves nothing, typed errors for missing files and bad names. Then the document store on the pg
 * backend: ciphertext in the database, addressed by the plaintext sha256, stored once.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Db } from '../../db';
import { BlobNotFoundError, createDbBlobs, createFsBlobs, readBlobPlain, type BlobBackend } from '../../documents/blobs';
import { FILE_MAGIC, FileDecryptionError, type FileKey } from '../../documents/encryption';
import { createDocumentStore, DocumentDamagedError, DocumentNotFoundError } from '../../documents/store';
import { testDatabases } from '../helpers/databases';

jest.setTimeout(60_000);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** 10 chunks of 7 bytes and a part: chunk boundaries that do not match the source's pieces. */
const CHUNK = 7;
const content = randomBytes(CHUNK * 10 + 3);
const pieces = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

describe.each(testDatabases())('backends on %s', (database) => {
  let db: Db;
  let dir: string;
  const backends: Array<[string, () => BlobBackend]> = [
    ['fs', () => createFsBlobs(dir)],
    ['pg', () => createDbBlobs(db, 'gkb', { chunkBytes: CHUNK })],
  ];
  beforeEach(async () => {
    db = await database.open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-blobs-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterAll(() => database.cleanup());

  describe.each(backends)('%s', (kind, make) => {
    it('puts a stream under a name and opens it as a stream', async () => {
      const blobs = make();
      expect(await blobs.exists('batch-1/K2_batch-1_1.zip')).toBe(false);
      await blobs.put('batch-1/K2_batch-1_1.zip', Readable.from(pieces(content, 5)));
      expect(await blobs.exists('batch-1/K2_batch-1_1.zip')).toBe(true);
      const back: Buffer[] = [];
      for await (const c of blobs.open('batch-1/K2_batch-1_1.zip')) back.push(c as Buffer);
      expect(Buffer.concat(back)).toEqual(content);
      if (kind === 'pg') {
        expect(back.map((c) => c.length)).toEqual([...Array(10).fill(CHUNK), 3]); // one row at a time
      }
    });

    it('a commit replaces the bytes under a name; a staged write is invisible until then', async () => {
      const blobs = make();
      await blobs.put('b/f.zip', Readable.from([Buffer.from('first version')]));
      const staged = await blobs.stage(Readable.from([Buffer.from('second version, longer than the first')]));
      expect(await readAll(blobs.open('b/f.zip'))).toEqual(Buffer.from('first version'));
      await staged.commit('b/f.zip');
      expect(await readAll(blobs.open('b/f.zip'))).toEqual(Buffer.from('second version, longer than the first'));
      if (kind === 'pg') {
        // The replaced blob's chunks are gone: only the current one's remain.
        const { n } = (await db('document_blob_chunks').count({ n: '*' }).first()) as { n: unknown };
        expect(Number(n)).toBe(Math.ceil('second version, longer than the first'.length / CHUNK));
      }
    });

    it('a source that fails midway, or a discarded write, leaves nothing behind', async () => {
      const blobs = make();
      async function* broken() {
        yield randomBytes(CHUNK * 3);
        throw new Error('connection reset');
      }
      await expect(blobs.put('b/broken.zip', broken())).rejects.toThrow('connection reset');
      await (await blobs.stage(Readable.from([content]))).discard();
      expect(await blobs.exists('b/broken.zip')).toBe(false);
      if (kind === 'pg') expect(Number(((await db('document_blob_chunks').count({ n: '*' }).first()) as { n: unknown }).n)).toBe(0);
      else expect(fs.readdirSync(path.join(dir, '.tmp'))).toEqual([]);
    });

    it('a missing name is a BlobNotFoundError on the stream; a name that is not Latin segments is refused', async () => {
      const blobs = make();
      await expect(readAll(blobs.open('b/never.zip'))).rejects.toThrow(BlobNotFoundError);
      for (const bad of ['../etc/passwd', 'b/../../x', '.tmp/x', 'b//x', 'Скан.pdf', '']) expect(() => blobs.open(bad)).toThrow(TypeError);
      await expect(blobs.exists('../x')).rejects.toThrow(TypeError);
    });

    it('head: the first bytes only (fewer for a shorter file), across chunk boundaries never; a missing name is BlobNotFoundError', async () => {
      const blobs = make();
      await blobs.put('b/f.zip', Readable.from(pieces(content, 5)));
      expect(await blobs.head('b/f.zip', 4)).toEqual(content.subarray(0, 4));
      // pg reads its first chunk only: at most CHUNK bytes; fs the bytes asked for.
      expect(await blobs.head('b/f.zip', 12)).toEqual(content.subarray(0, kind === 'pg' ? CHUNK : 12));
      await blobs.put('b/short', Readable.from([Buffer.from('ab')]));
      expect(await blobs.head('b/short', 10)).toEqual(Buffer.from('ab'));
      await expect(blobs.head('b/never.zip', 4)).rejects.toThrow(BlobNotFoundError);
      await expect(blobs.head('../x', 4)).rejects.toThrow(TypeError);
    });

    it('list: every stored name in name order, nothing staged', async () => {
      const blobs = make();
      for (const name of ['b/2.zip', 'a/1.zip', 'b/1.zip']) await blobs.put(name, Readable.from([Buffer.from(name)]));
      await blobs.stage(Readable.from([Buffer.from('staged, never committed')]));
      const names: string[] = [];
      for await (const n of blobs.list()) names.push(n);
      expect(names).toEqual(['a/1.zip', 'b/1.zip', 'b/2.zip']);
    });
  });

  it('spaces of the database backend are apart: a GKB file and a document of the same name are two files', async () => {
    const gkb = createDbBlobs(db, 'gkb');
    const docs = createDbBlobs(db, 'documents');
    await gkb.put('a/b', Readable.from([Buffer.from('gkb')]));
    expect(await docs.exists('a/b')).toBe(false);
    await docs.put('a/b', Readable.from([Buffer.from('document')]));
    expect(await readAll(gkb.open('a/b'))).toEqual(Buffer.from('gkb'));
  });

  describe('the document store on the database backend', () => {
    const key: FileKey = { id: 'k2025', key: randomBytes(32) };
    /** A scan whose text holds personal data, as a PDF's uncompressed text would. */
    const personal = Buffer.from('%PDF-1.4\nBT (ИИН 850101300123) Tj (Иванов Иван Иванович) Tj ET\n%%EOF\n', 'utf8');
    const meta = { caseId: 'case-KD0000000001', kind: 'dbz-scan', mediaType: 'application/pdf', fileName: 'Скан ДБЗ.pdf' } as const;

    it('keeps ciphertext in the database under the plaintext sha256, once, and reads the plaintext back', async () => {
      const store = createDocumentStore({ db, store: 'pg', fileKeys: [key] });
      const ref = await store.put(Readable.from([personal]), meta);
      expect(ref.sha256).toBe(sha(personal));
      await store.put(Readable.from(pieces(personal, 9)), { ...meta, caseId: 'case-KD0000000002' });
      const rows = await db('document_blobs').where({ space: 'documents' });
      expect(rows.map((r) => r.name)).toEqual([`${ref.sha256.slice(0, 2)}/${ref.sha256.slice(2, 4)}/${ref.sha256}`]);
      const stored = Buffer.concat((await db('document_blob_chunks').orderBy('chunk')).map((r) => Buffer.from(r.bytes)));
      expect(stored.subarray(0, FILE_MAGIC.length)).toEqual(FILE_MAGIC);
      for (const clear of ['850101300123', 'Иванов', '%PDF']) expect(stored.includes(Buffer.from(clear, 'utf8'))).toBe(false);
      expect(await readAll(store.open(ref.sha256))).toEqual(personal);
      expect((await store.get(ref.sha256))?.records).toHaveLength(2);
    });

    it('unknown content is DocumentNotFoundError (on the stream), damaged bytes an error, never other bytes', async () => {
      const store = createDocumentStore({ db, store: 'pg', fileKeys: [key] });
      await expect(readAll(store.open(sha(Buffer.from('never stored'))))).rejects.toThrow(DocumentNotFoundError);
      expect(() => store.open('../../etc/passwd')).toThrow(TypeError);
      const ref = await store.put(Readable.from([personal]), meta);
      const [row] = await db('document_blob_chunks');
      const flipped = Buffer.from(row.bytes);
      flipped[flipped.length - 3] ^= 1;
      await db('document_blob_chunks').where({ blob_id: row.blob_id, chunk: row.chunk }).update({ bytes: flipped });
      await expect(readAll(store.open(ref.sha256))).rejects.toThrow(FileDecryptionError);
      // Another document's valid ciphertext under this name: it decrypts, but is not this content.
      const other = await store.put(Readable.from([Buffer.from('%PDF-1.4 another scan')]), { ...meta, fileName: 'other.pdf' });
      const otherRow = await db('document_blobs').where({ space: 'documents' }).andWhere('name', 'like', `%${other.sha256}`).first();
      await db('document_blobs')
        .where({ space: 'documents' })
        .andWhere('name', 'like', `%${ref.sha256}`)
        .update({ blob_id: otherRow.blob_id, chunks: otherRow.chunks });
      await expect(readAll(store.open(ref.sha256))).rejects.toThrow(DocumentDamagedError);
    });

    // PostgreSQL only: the pg store is PostgreSQL's in production, and on SQLite dropping the table under
    // the test's connection did not make the insert fail reliably (seen once in a full run).
    (database.name === 'postgres' ? it : it.skip)(
      "the bytes get their name in the metadata rows' transaction: a put whose rows fail leaves no stored file",
      async () => {
        await db.schema.dropTable('documents'); // the metadata insert fails after the bytes are staged and named
        const store = createDocumentStore({ db, store: 'pg', fileKeys: [key] });
        await expect(store.put(Readable.from([personal]), meta)).rejects.toThrow(/documents/);
        expect(await db('document_blobs')).toEqual([]);
        expect(await db('document_blob_chunks')).toEqual([]);
        expect(await db('document_contents')).toEqual([]);
      },
    );

    it('a GKB file kept encrypted reads back as its plaintext with readBlobPlain', async () => {
      const gkb = createDbBlobs(db, 'gkb');
      await gkb.put('b/plain.zip', Readable.from([Buffer.from('PK\u0003\u0004 written before encryption', 'latin1')]));
      expect(await readBlobPlain(gkb, 'b/plain.zip', [key])).toEqual(Buffer.from('PK\u0003\u0004 written before encryption', 'latin1'));
    });
  });
});

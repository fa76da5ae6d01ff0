/**
 * The document store on a temporary SQLite file and folder: content addressing (the same scan is
 * stored once), metadata rows per (case, kind, content), streaming, and clean failure.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createDb, migrate, type Db } from '../../db';
import { createDocumentStore, DocumentNotFoundError, DocumentRejectedError, type DocumentStore } from '../../documents/store';
import { filesBelow } from '../helpers/files';

let dir: string;
let db: Db;
let store: DocumentStore;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Files under the store, relative, excluding the temp folder. */
const storedFiles = () => filesBelow(path.join(dir, 'documents'));

function tempFiles(): string[] {
  const tmp = path.join(dir, 'documents', '.tmp');
  return fs.existsSync(tmp) ? fs.readdirSync(tmp) : [];
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const scan = Buffer.from('%PDF-1.4\n% a tiny scan\n%%EOF\n', 'latin1');
const meta = { caseId: 'case-KD0000000001', kind: 'dbz-scan', mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf' } as const;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-docs-'));
  db = createDb({ client: 'sqlite', url: path.join(dir, 'k2.sqlite') });
  await migrate(db);
  store = createDocumentStore({ db, dir: path.join(dir, 'documents') });
});

afterEach(async () => {
  await db.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('stores a document under <dir>/ab/cd/<sha256> and returns a small reference', async () => {
  const ref = await store.put(Readable.from([scan]), meta);
  const digest = sha(scan);
  expect(ref).toEqual({ sha256: digest, size: scan.length, mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf' });
  expect(storedFiles()).toEqual([path.join(digest.slice(0, 2), digest.slice(2, 4), digest)]);
  expect(await readAll(store.open(digest))).toEqual(scan);
  expect(tempFiles()).toEqual([]);
});

it('stores the same bytes once: again for the same case (no new row), and for another case (a new row)', async () => {
  const first = await store.put(Readable.from([scan]), { ...meta, fetchedAt: new Date('2025-01-02T03:04:05Z') });
  // A retry of the same activity, with the bytes split differently into chunks.
  const again = await store.put(Readable.from([scan.subarray(0, 5), scan.subarray(5)]), { ...meta, fileName: 'other name.pdf' });
  expect(again).toEqual(first); // the first row wins: the reference stays the same
  await store.put(Readable.from([scan]), { ...meta, caseId: 'case-KD0000000002' });

  expect(storedFiles()).toHaveLength(1);
  expect(await db('document_contents').count({ n: '*' })).toEqual([{ n: 1 }]);
  const stored = await store.get(first.sha256);
  expect(stored).toEqual({
    sha256: first.sha256,
    size: scan.length,
    storedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    records: [
      { caseId: 'case-KD0000000001', kind: 'dbz-scan', sha256: first.sha256, mediaType: 'application/pdf', fileName: 'Скан ДБЗ KD0000000001.pdf', size: scan.length, fetchedAt: '2025-01-02T03:04:05.000Z' },
      expect.objectContaining({ caseId: 'case-KD0000000002', fileName: 'Скан ДБЗ KD0000000001.pdf' }),
    ],
  });
  expect((await store.listForCase('case-KD0000000001')).map((r) => r.sha256)).toEqual([first.sha256]);
});

it('keeps different documents of one case apart', async () => {
  const tiff = Buffer.from([0x49, 0x49, 42, 0, 8, 0, 0, 0]);
  await store.put(Readable.from([scan]), meta);
  await store.put(Readable.from([tiff]), { ...meta, mediaType: 'image/tiff', fileName: 'Скан.tif' });
  expect(storedFiles()).toHaveLength(2);
  expect((await store.listForCase(meta.caseId)).map((r) => r.mediaType)).toEqual(['application/pdf', 'image/tiff']);
});

it('streams: a large document produced chunk by chunk is hashed and stored without being buffered', async () => {
  const chunk = Buffer.alloc(64 * 1024);
  const chunks = 160; // 10 MB
  const hash = createHash('sha256');
  let produced = 0;
  async function* source() {
    for (let i = 0; i < chunks; i++) {
      chunk.fill(i % 251);
      hash.update(chunk);
      produced++;
      yield Buffer.from(chunk);
    }
  }
  const ref = await store.put(source(), { ...meta, fileName: 'big.pdf' });
  expect(produced).toBe(chunks);
  expect(ref.size).toBe(chunk.length * chunks);
  expect(ref.sha256).toBe(hash.digest('hex'));
  // Read back as a stream too.
  const back = createHash('sha256');
  let size = 0;
  for await (const c of store.open(ref.sha256)) {
    back.update(c as Buffer);
    size += (c as Buffer).length;
  }
  expect(size).toBe(ref.size);
  expect(back.digest('hex')).toBe(ref.sha256);
});

it('a stream that fails midway leaves no file, no temp file and no row', async () => {
  async function* broken() {
    yield Buffer.from('first part');
    throw new Error('connection reset');
  }
  await expect(store.put(broken(), meta)).rejects.toThrow('connection reset');
  expect(storedFiles()).toEqual([]);
  expect(tempFiles()).toEqual([]);
  expect(await db('documents').count({ n: '*' })).toEqual([{ n: 0 }]);
});

it('rejects empty and oversized documents, and bad metadata', async () => {
  await expect(store.put(Readable.from([]), meta)).rejects.toThrow(DocumentRejectedError);
  const small = createDocumentStore({ db, dir: path.join(dir, 'documents'), maxBytes: 10 });
  await expect(small.put(Readable.from([Buffer.alloc(6), Buffer.alloc(6)]), meta)).rejects.toThrow('larger than 10 bytes');
  await expect(store.put(Readable.from([scan]), { ...meta, caseId: '' })).rejects.toThrow('caseId');
  await expect(store.put(Readable.from([scan]), { ...meta, mediaType: 'pdf' })).rejects.toThrow('mediaType');
  expect(storedFiles()).toEqual([]);
  expect(tempFiles()).toEqual([]);
});

it('open and get: unknown content, and names that are not hashes', async () => {
  const unknown = sha(Buffer.from('never stored'));
  expect(() => store.open(unknown)).toThrow(DocumentNotFoundError);
  expect(() => store.open('../../etc/passwd')).toThrow(TypeError);
  expect(await store.get(unknown)).toBeUndefined();
  expect(await store.get('not-a-hash')).toBeUndefined();
});

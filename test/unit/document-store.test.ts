/**
 * The document store on a temporary SQLite file and folder: content addressing (the same scan is
 * stored once), metadata rows per (case, kind, content), streaming, and clean failure; encrypted at
 * rest with payload keys (plaintext sha256 as the address, old plaintext files, rotation, damage).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createDb, migrate, type Db } from '../../db';
import { FILE_MAGIC, FileDecryptionError, type FileKey } from '../../documents/encryption';
import { createDocumentStore, DocumentDamagedError, DocumentNotFoundError, DocumentRejectedError, type DocumentStore } from '../../documents/store';
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
      {
        caseId: 'case-KD0000000001',
        kind: 'dbz-scan',
        sha256: first.sha256,
        mediaType: 'application/pdf',
        fileName: 'Скан ДБЗ KD0000000001.pdf',
        size: scan.length,
        fetchedAt: '2025-01-02T03:04:05.000Z',
      },
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

describe('encrypted at rest', () => {
  const key2024: FileKey = { id: 'k2024', key: randomBytes(32) };
  const key2025: FileKey = { id: 'k2025', key: randomBytes(32) };
  const docsDir = () => path.join(dir, 'documents');
  const fileOf = (sha256: string) => path.join(docsDir(), sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  /** A scan whose text holds personal data, as a PDF's uncompressed text would. */
  const personal = Buffer.from('%PDF-1.4\nBT (ИИН 850101300123) Tj (Иванов Иван Иванович) Tj ET\n%%EOF\n', 'utf8');
  const encrypted = (keys: FileKey[]) => createDocumentStore({ db, dir: docsDir(), fileKeys: keys });

  it('writes ciphertext without the IIN or name, addressed by the plaintext sha256, and reads the plaintext back', async () => {
    const s = encrypted([key2025]);
    const ref = await s.put(Readable.from([personal]), meta);
    expect(ref).toEqual({ sha256: sha(personal), size: personal.length, mediaType: 'application/pdf', fileName: meta.fileName });
    const onDisk = fs.readFileSync(fileOf(ref.sha256));
    expect(onDisk.subarray(0, FILE_MAGIC.length)).toEqual(FILE_MAGIC);
    for (const clear of ['850101300123', 'Иванов', 'Иван Иванович', '%PDF']) expect(onDisk.includes(Buffer.from(clear, 'utf8'))).toBe(false);
    expect(await readAll(s.open(ref.sha256))).toEqual(personal);
    expect(tempFiles()).toEqual([]);
  });

  it('a re-fetched scan is stored once although each encryption differs', async () => {
    const s = encrypted([key2025]);
    const first = await s.put(Readable.from([personal]), meta);
    const onDisk = fs.readFileSync(fileOf(first.sha256));
    await s.put(Readable.from([personal.subarray(0, 9), personal.subarray(9)]), meta);
    await s.put(Readable.from([personal]), { ...meta, caseId: 'case-KD0000000002' });
    expect(storedFiles()).toHaveLength(1);
    expect(fs.readFileSync(fileOf(first.sha256))).toEqual(onDisk); // kept, not rewritten
    expect(await db('document_contents').count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('a file written before encryption still reads, and a re-fetch replaces it by its encrypted copy', async () => {
    const before = await store.put(Readable.from([personal]), meta); // the store without keys: plaintext
    expect(fs.readFileSync(fileOf(before.sha256))).toEqual(personal);
    const s = encrypted([key2025]);
    expect(await readAll(s.open(before.sha256))).toEqual(personal);
    expect(await s.put(Readable.from([personal]), meta)).toEqual(before);
    expect(fs.readFileSync(fileOf(before.sha256)).subarray(0, FILE_MAGIC.length)).toEqual(FILE_MAGIC);
    expect(await readAll(s.open(before.sha256))).toEqual(personal);
  });

  it('rotation: a file written with the older key reads after a new key comes first; new files use the new key', async () => {
    const old = await encrypted([key2024]).put(Readable.from([personal]), meta);
    const rotated = encrypted([key2025, key2024]);
    expect(await readAll(rotated.open(old.sha256))).toEqual(personal);
    const fresh = await rotated.put(Readable.from([scan]), { ...meta, fileName: 'second.pdf' });
    expect(await readAll(encrypted([key2025]).open(fresh.sha256))).toEqual(scan);
    // The old key retired too early: a clear error naming the key id, not bytes.
    await expect(readAll(encrypted([key2025]).open(old.sha256))).rejects.toThrow(/key "k2024", which is not among the configured payload keys/);
  });

  it('a tampered or truncated file is an error, never other bytes', async () => {
    const s = encrypted([key2025]);
    const ref = await s.put(Readable.from([personal]), meta);
    const file = fileOf(ref.sha256);
    const good = fs.readFileSync(file);

    const flipped = Buffer.from(good);
    flipped[good.length - 20] ^= 0x01;
    fs.writeFileSync(file, flipped);
    await expect(readAll(s.open(ref.sha256))).rejects.toThrow(FileDecryptionError);

    fs.writeFileSync(file, good.subarray(0, good.length - 1));
    await expect(readAll(s.open(ref.sha256))).rejects.toThrow(/truncated/);

    // Another document's (valid) ciphertext under this name: it decrypts, but is not this content.
    const other = await s.put(Readable.from([scan]), { ...meta, fileName: 'other.pdf' });
    fs.copyFileSync(fileOf(other.sha256), file);
    await expect(readAll(s.open(ref.sha256))).rejects.toThrow(DocumentDamagedError);
    // The same for a file in clear changed on disk.
    fs.writeFileSync(file, Buffer.from(personal).fill(0x20, 10, 20));
    await expect(readAll(s.open(ref.sha256))).rejects.toThrow(DocumentDamagedError);
  });

  it('streams a large scan through encryption and back with the plaintext sha256', async () => {
    const chunk = Buffer.alloc(64 * 1024);
    const hash = createHash('sha256');
    async function* source() {
      for (let i = 0; i < 80; i++) {
        chunk.fill(i % 251);
        hash.update(chunk);
        yield Buffer.from(chunk);
      }
    }
    const s = encrypted([key2025]);
    const ref = await s.put(source(), { ...meta, fileName: 'big.pdf' });
    expect(ref.sha256).toBe(hash.digest('hex'));
    expect(fs.statSync(fileOf(ref.sha256)).size).toBeGreaterThan(ref.size); // header and tags: it is the ciphertext
    const back = createHash('sha256');
    let size = 0;
    for await (const c of s.open(ref.sha256)) {
      back.update(c as Buffer);
      size += (c as Buffer).length;
    }
    expect(size).toBe(ref.size);
    expect(back.digest('hex')).toBe(ref.sha256);
  });

  it('without keys (the demo) says so once at start', () => {
    const warnings: string[] = [];
    createDocumentStore({ db, dir: docsDir(), logger: { warn: (m) => warnings.push(m) } });
    createDocumentStore({ db, dir: docsDir(), fileKeys: [key2025], logger: { warn: (m) => warnings.push(m) } });
    expect(warnings).toEqual(['no payload keys (demo): loan-agreement scans are stored in clear at rest']);
  });
});

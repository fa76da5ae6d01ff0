/**
 * Files at rest (documents/encryption.ts): chunked AES-256-GCM round trip at every chunk boundary,
 * rotation (a file names its key), and every kind of damage is an error: a changed byte, a cut at or
 * inside a chunk, reordered chunks, a changed header, an unknown key.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createDecryptStream,
  createEncryptStream,
  FILE_MAGIC,
  FileDecryptionError,
  FileKeyUnknownError,
  openFile,
  readFilePlain,
  type FileKey,
} from '../../documents/encryption';

const oldKey: FileKey = { id: 'k2024', key: randomBytes(32) };
const newKey: FileKey = { id: 'k2025', key: randomBytes(32) };

async function collect(stream: Readable | NodeJS.ReadWriteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Encrypts `plain`, handed to the stream in pieces of `piece` bytes. */
async function encrypt(plain: Buffer, key: FileKey, chunkBytes = 16, piece = 7): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < plain.length; i += piece) pieces.push(plain.subarray(i, i + piece));
  return collect(Readable.from(pieces).pipe(createEncryptStream(key, { chunkBytes })));
}

/** Decrypts `sealed`, handed over in pieces of `piece` bytes, so headers and chunks arrive split. */
async function decrypt(sealed: Buffer, keys: FileKey[], piece = 5): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < sealed.length; i += piece) pieces.push(sealed.subarray(i, i + piece));
  const out: Buffer[] = [];
  const d = createDecryptStream(keys);
  d.on('data', (c: Buffer) => out.push(c));
  await pipeline(Readable.from(pieces), d);
  return Buffer.concat(out);
}

const headerBytes = (id: string) => FILE_MAGIC.length + 2 + Buffer.byteLength(id) + 16 + 7 + 4;

it.each([0, 1, 15, 16, 17, 32, 33, 100])('round trip of %i bytes in 16-byte chunks', async (n) => {
  const plain = randomBytes(n);
  const sealed = await encrypt(plain, newKey);
  expect(sealed.subarray(0, 4)).toEqual(FILE_MAGIC);
  // Every chunk carries a 16-byte tag; the last may be full, and there is always one (possibly empty).
  expect(sealed.length).toBe(headerBytes(newKey.id) + n + 16 * Math.max(1, Math.ceil(n / 16)));
  expect(await decrypt(sealed, [newKey])).toEqual(plain);
});

it('round trip of a large file in the default chunk size, whatever the pieces', async () => {
  const plain = randomBytes(1024 * 1024 + 123);
  const sealed = await collect(Readable.from([plain.subarray(0, 70_000), plain.subarray(70_000)]).pipe(createEncryptStream(newKey)));
  expect((await decrypt(sealed, [newKey], 50_000)).equals(plain)).toBe(true); // not toEqual: element by element is slow for 1 MB
});

it('encrypts each file differently and hides the plaintext', async () => {
  const plain = Buffer.from('ИИН 850101300123 Иванов Иван Иванович '.repeat(10), 'utf8');
  const a = await encrypt(plain, newKey);
  const b = await encrypt(plain, newKey);
  expect(a.equals(b)).toBe(false); // fresh salt and nonce prefix per file
  for (const sealed of [a, b]) {
    expect(sealed.includes(Buffer.from('850101300123'))).toBe(false);
    expect(sealed.includes(Buffer.from('Иванов', 'utf8'))).toBe(false);
  }
});

it('rotation: a file written with an older key reads while that key is still configured; without it, a clear error', async () => {
  const plain = Buffer.from('scan written before rotation');
  const sealed = await encrypt(plain, oldKey);
  expect(await decrypt(sealed, [newKey, oldKey])).toEqual(plain);
  const unknown = await decrypt(sealed, [newKey]).catch((e: unknown) => e);
  expect(unknown).toBeInstanceOf(FileKeyUnknownError);
  expect(unknown).toMatchObject({
    keyId: 'k2024',
    message: 'file is encrypted with key "k2024", which is not among the configured payload keys (K2_PAYLOAD_KEYS)',
  });
});

describe('damage is an error, never other bytes', () => {
  const plain = randomBytes(40); // chunks of 16, 16 and 8
  let sealed: Buffer;
  const start = headerBytes(newKey.id);
  const sealedChunk = 16 + 16;
  beforeAll(async () => {
    sealed = await encrypt(plain, newKey);
    expect(sealed.length).toBe(start + 2 * sealedChunk + 8 + 16);
  });

  it('a changed byte in any chunk or tag', async () => {
    for (const at of [start, start + 20, start + sealedChunk + 3, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] ^= 1;
      await expect(decrypt(bad, [newKey])).rejects.toThrow(FileDecryptionError);
    }
  });

  it('a changed header (version, salt, nonce prefix, chunk size, key id)', async () => {
    const saltAt = FILE_MAGIC.length + 2 + newKey.id.length;
    for (const at of [FILE_MAGIC.length, saltAt + 3, start - 6, start - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] ^= 1;
      await expect(decrypt(bad, [newKey])).rejects.toThrow(FileDecryptionError);
    }
    const otherId = Buffer.from(sealed);
    otherId[FILE_MAGIC.length + 2 + 2] ^= 1; // "k2025" → "k2125": a key that is not there
    await expect(decrypt(otherId, [newKey])).rejects.toThrow(FileKeyUnknownError);
  });

  it('cut at a chunk boundary, inside a chunk, inside the header, or to nothing but the header', async () => {
    for (const length of [start + sealedChunk, start + 2 * sealedChunk, start + sealedChunk + 5, sealed.length - 1, start, 10]) {
      await expect(decrypt(sealed.subarray(0, length), [newKey])).rejects.toThrow(/truncated|damaged/);
    }
  });

  it('chunks swapped or dropped from the middle', async () => {
    const c0 = sealed.subarray(start, start + sealedChunk);
    const c1 = sealed.subarray(start + sealedChunk, start + 2 * sealedChunk);
    const last = sealed.subarray(start + 2 * sealedChunk);
    const header = sealed.subarray(0, start);
    await expect(decrypt(Buffer.concat([header, c1, c0, last]), [newKey])).rejects.toThrow(FileDecryptionError);
    await expect(decrypt(Buffer.concat([header, c0, last]), [newKey])).rejects.toThrow(FileDecryptionError);
  });

  it('what was pushed before the damage is only the chunks that authenticated', async () => {
    const bad = Buffer.from(sealed);
    bad[start + sealedChunk + 1] ^= 1; // the second chunk
    const pushed: Buffer[] = [];
    const d = createDecryptStream([newKey]);
    d.on('data', (c: Buffer) => pushed.push(c));
    await expect(pipeline(Readable.from([bad]), d)).rejects.toThrow(FileDecryptionError);
    expect(Buffer.concat(pushed)).toEqual(plain.subarray(0, 16));
  });
});

describe('openFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-fileenc-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads an encrypted file decrypted and a file written before encryption as it is', async () => {
    const plain = Buffer.from('PK\u0003\u0004 a zip written before encryption', 'latin1');
    fs.writeFileSync(path.join(dir, 'old.zip'), plain);
    fs.writeFileSync(path.join(dir, 'new.zip'), await encrypt(plain, newKey));
    expect(await readFilePlain(path.join(dir, 'old.zip'), [newKey])).toEqual(plain);
    expect(await readFilePlain(path.join(dir, 'new.zip'), [newKey])).toEqual(plain);
    expect(await readFilePlain(path.join(dir, 'old.zip'), [])).toEqual(plain); // the demo without keys
  });

  it('a missing file or a damaged one fails the stream', async () => {
    await expect(collect(openFile(path.join(dir, 'none.zip'), [newKey]))).rejects.toThrow(/ENOENT/);
    const sealed = await encrypt(Buffer.from('x'.repeat(50)), newKey);
    fs.writeFileSync(path.join(dir, 'cut.zip'), sealed.subarray(0, sealed.length - 3));
    await expect(readFilePlain(path.join(dir, 'cut.zip'), [newKey])).rejects.toThrow(FileDecryptionError);
  });
});

it('refuses a key that is not 32 bytes or an id out of range', () => {
  expect(() => createEncryptStream({ id: 'short', key: randomBytes(16) })).toThrow('must be 32 bytes');
  expect(() => createEncryptStream({ id: '', key: randomBytes(32) })).toThrow('1..255 bytes');
});

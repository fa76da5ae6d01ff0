/**
 * Files encrypted at rest: loan-agreement scans and the GKB files K2 keeps are personal data
 * (issue 13). Same keys as the payload codec (config.payloadKeys: the first encrypts, every key
 * decrypts, found by its id), but a streaming format of its own, so a large file is never held in
 * memory and every chunk is authenticated before a byte of it is handed on.
 *
 * Format (version 1), the "segmented AEAD" construction of Hoang, Reyhanitabar, Rogaway and Vizár
 * (STREAM, as in Tink's AES-GCM-HKDF streaming):
 *
 *   header  = MAGIC "K2FE" | version 0x01 | key-id length (1 byte) | key id (UTF-8) | salt (16) | nonce prefix (7) | chunk size (uint32 BE)
 *   chunk i = AES-256-GCM(file key, nonce = prefix | i (uint32 BE) | last (0x00 or 0x01), aad = header) → ciphertext | tag (16)
 *
 *  - The file key is HKDF-SHA256(key, salt, "k2 file v1"): a fresh key per file, so nonces never
 *    repeat under one key however many files a key encrypts.
 *  - Every chunk but the last holds exactly `chunk size` plaintext bytes; the last holds 0..chunk
 *    size and is marked last in its nonce. A file cut at a chunk boundary ends on a chunk not marked
 *    last, one cut inside a chunk fails its tag, reordered chunks fail their counters, and a changed
 *    header fails every tag: each is an error, never shorter or different data.
 *  - A file that does not start with MAGIC is a file written before encryption (a PDF, TIFF, JPEG or
 *    ZIP starts otherwise) and is read as it is (openFile).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PayloadKey } from '../config';

export type FileKey = PayloadKey;

export const FILE_MAGIC = Buffer.from('K2FE', 'ascii');
const VERSION = 1;
const SALT_BYTES = 16;
const PREFIX_BYTES = 7;
const TAG_BYTES = 16;
const HKDF_INFO = Buffer.from('k2 file v1', 'ascii');
/** 64 KiB of plaintext per chunk: reading or writing holds about two chunks, whatever the file size. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** A header may ask for at most this much per chunk, so a damaged header cannot make a reader allocate much. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

/** The file is encrypted but cannot be read back as it was written: tampered, truncated or not a K2 file. Reading again will not help. */
export class FileDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileDecryptionError';
  }
}

/** The file names a key that is not configured (retired too early, or a worker without the key): fixable by configuration. */
export class FileKeyUnknownError extends Error {
  constructor(public readonly keyId: string) {
    super(`file is encrypted with key ${JSON.stringify(keyId.slice(0, 64))}, which is not among the configured payload keys (K2_PAYLOAD_KEYS)`);
    this.name = 'FileKeyUnknownError';
  }
}

function checkKey(k: FileKey): void {
  const idBytes = Buffer.byteLength(k.id, 'utf8');
  if (idBytes < 1 || idBytes > 255) throw new RangeError(`file key id must be 1..255 bytes, got ${idBytes}`);
  if (!Buffer.isBuffer(k.key) || k.key.length !== 32) throw new RangeError(`file key ${k.id} must be 32 bytes (AES-256)`);
}

function fileKey(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, 32));
}

function nonceOf(prefix: Buffer, index: number, last: boolean): Buffer {
  if (index > 0xffffffff) throw new RangeError('file has too many chunks to encrypt');
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, PREFIX_BYTES);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * A Transform that encrypts what passes through with `key` (the first of config.payloadKeys).
 * Plaintext is cut into chunks as it arrives; a chunk is written once the next byte shows it is not the last.
 */
export function createEncryptStream(key: FileKey, { chunkBytes = DEFAULT_CHUNK_BYTES }: { chunkBytes?: number } = {}): Transform {
  checkKey(key);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES)
    throw new RangeError(`chunkBytes must be 1..${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  const id = Buffer.from(key.id, 'utf8');
  const salt = randomBytes(SALT_BYTES);
  const prefix = randomBytes(PREFIX_BYTES);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(chunkBytes);
  const header = Buffer.concat([FILE_MAGIC, Buffer.from([VERSION, id.length]), id, salt, prefix, size]);
  const k = fileKey(key.key, salt);
  let index = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  const seal = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', k, nonceOf(prefix, index++, last));
    cipher.setAAD(header);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };

  let started = false;
  const start = (t: Transform) => {
    if (!started) t.push(header);
    started = true;
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      start(this);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes <= chunkBytes) return done();
      let all = Buffer.concat(pending, pendingBytes);
      // Strictly more than one chunk buffered: the first is not the last.
      while (all.length > chunkBytes) {
        this.push(seal(all.subarray(0, chunkBytes), false));
        all = all.subarray(chunkBytes);
      }
      pending = [all];
      pendingBytes = all.length;
      done();
    },
    flush(done: TransformCallback) {
      start(this);
      this.push(seal(Buffer.concat(pending, pendingBytes), true));
      pending = [];
      done();
    },
  });
}

/** Reads the header from the start of `buf`; undefined while `buf` is too short to hold all of it. */
function parseHeader(buf: Buffer, keys: readonly FileKey[]): { header: Buffer; key: Buffer; prefix: Buffer; chunkBytes: number } | undefined {
  const fixed = FILE_MAGIC.length + 2;
  if (buf.length < fixed) return undefined;
  if (buf[FILE_MAGIC.length] !== VERSION) throw new FileDecryptionError(`encrypted file has unknown format version ${buf[FILE_MAGIC.length]}`);
  const idLength = buf[FILE_MAGIC.length + 1];
  const length = fixed + idLength + SALT_BYTES + PREFIX_BYTES + 4;
  if (buf.length < length) return undefined;
  const id = buf.subarray(fixed, fixed + idLength).toString('utf8');
  const salt = buf.subarray(fixed + idLength, fixed + idLength + SALT_BYTES);
  const prefix = Buffer.from(buf.subarray(fixed + idLength + SALT_BYTES, length - 4));
  const chunkBytes = buf.readUInt32BE(length - 4);
  if (chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) throw new FileDecryptionError(`encrypted file header is damaged (chunk size ${chunkBytes})`);
  const key = keys.find((k) => k.id === id);
  if (!key) throw new FileKeyUnknownError(id);
  return { header: Buffer.from(buf.subarray(0, length)), key: fileKey(key.key, salt), prefix, chunkBytes };
}

/** Bytes enough to read any header's key id: magic, version, id length and the longest id. */
export const KEY_ID_HEAD_BYTES = FILE_MAGIC.length + 2 + 255;

/**
 * The id of the key a stored file was encrypted with, from its first bytes (at least
 * KEY_ID_HEAD_BYTES, or the whole file): null for a file in clear (written before encryption, or
 * by the demo without keys).
 */
export function encryptedKeyId(head: Buffer): string | null {
  if (head.length < FILE_MAGIC.length || !head.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) return null;
  const fixed = FILE_MAGIC.length + 2;
  if (head.length < fixed || head.length < fixed + head[fixed - 1])
    throw new FileDecryptionError(`encrypted file is truncated (no complete header in ${head.length} bytes)`);
  return head.subarray(fixed, fixed + head[fixed - 1]).toString('utf8');
}

/**
 * A Transform that decrypts a file written by createEncryptStream with any of `keys`. Each chunk is
 * checked before its plaintext is pushed; the end of the input checks that the last chunk was the last.
 */
export function createDecryptStream(keys: readonly FileKey[]): Transform {
  let head: ReturnType<typeof parseHeader>;
  let buf: Buffer = Buffer.alloc(0);
  let index = 0;

  const open = (sealed: Buffer, last: boolean): Buffer => {
    const { key, prefix, header } = head!;
    const decipher = createDecipheriv('aes-256-gcm', key, nonceOf(prefix, index, last));
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
      index++;
      return plain;
    } catch {
      throw new FileDecryptionError(
        last ? `encrypted file is truncated or damaged (chunk ${index}, the last one)` : `encrypted file is damaged (chunk ${index} fails authentication)`,
      );
    }
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        if (!head) {
          if (buf.length >= FILE_MAGIC.length && !buf.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC))
            throw new FileDecryptionError('file is not an encrypted K2 file');
          head = parseHeader(buf, keys);
          if (!head) return done();
          buf = buf.subarray(head.header.length);
        }
        const sealedBytes = head.chunkBytes + TAG_BYTES;
        // A full chunk followed by more bytes is not the last chunk.
        while (buf.length > sealedBytes) {
          this.push(open(buf.subarray(0, sealedBytes), false));
          buf = buf.subarray(sealedBytes);
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (!head) throw new FileDecryptionError(`encrypted file is truncated (no complete header in ${buf.length} bytes)`);
        if (buf.length < TAG_BYTES) throw new FileDecryptionError(`encrypted file is truncated (chunk ${index} is missing)`);
        this.push(open(buf, true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** Whether the file at `file` starts with the encrypted-file magic (false for a file written before encryption). */
export async function isEncryptedFile(file: string): Promise<boolean> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const start = Buffer.alloc(FILE_MAGIC.length);
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    return bytesRead === start.length && start.equals(FILE_MAGIC);
  } finally {
    await handle.close();
  }
}

/**
 * The plaintext of a file at rest, as a stream: decrypted when it is encrypted, as it is when it was
 * written before encryption (or in the demo without keys). Errors (missing file, FileDecryptionError,
 * FileKeyUnknownError) arrive on the stream.
 */
export function openFile(file: string, keys: readonly FileKey[]): Readable {
  const out = new PassThrough();
  void (async () => {
    const encrypted = await isEncryptedFile(file);
    const source = fs.createReadStream(file, { highWaterMark: DEFAULT_CHUNK_BYTES });
    await (encrypted ? pipeline(source, createDecryptStream(keys), out) : pipeline(source, out));
  })().catch((err: Error) => out.destroy(err));
  return out;
}

/** The whole plaintext of a file at rest (for a file that is sent whole anyway, such as a GKB upload). */
export async function readFilePlain(file: string, keys: readonly FileKey[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of openFile(file, keys)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The encrypting stage of a write pipeline: encryption with the first key, or none without keys (the demo). */
export function encryptStage(keys: readonly FileKey[] | undefined): Transform {
  return keys && keys.length > 0 ? createEncryptStream(keys[0]) : new PassThrough();
}

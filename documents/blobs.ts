/**
 * Where the bytes of documents and GKB files live (documents/README.md): a small backend interface
 * with two implementations, picked by config.documents.store (K2_DOCUMENT_STORE).
 *
 *  - fs: a folder on this machine (the default for one machine): `<root>/<name>`.
 *  - pg: K2's own database, in chunks of CHUNK_BYTES, so every worker reaches every file
 *    (migration 008_document_blobs). Works on SQLite too (one machine), which the tests use.
 *
 * A backend stores opaque bytes: callers encrypt before and decrypt after (documents/encryption.ts),
 * so what a backend holds is ciphertext. Names are relative paths of Latin segments ('ab/cd/<sha256>',
 * '<batch>/<file>.zip'). Writing is two-step: stage() streams the bytes in under no name (the caller
 * may learn the name only at the end, e.g. the sha256 of the content), commit() puts them under their
 * name atomically, replacing what was there; a reader sees the old bytes or the new, never a mix.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type { Db } from '../db';
import { createDecryptStream, encryptedKeyId, FILE_MAGIC, FileDecryptionError, KEY_ID_HEAD_BYTES, type FileKey } from './encryption';

export type BlobStoreKind = 'fs' | 'pg';

/** Bytes streamed in, not yet under a name. */
export interface StagedBlob {
  readonly size: number;
  /**
   * Puts the bytes under `name` (replacing what was there), atomically. With `trx` (database backend)
   * inside that transaction, so the name appears together with the caller's rows; the fs backend ignores it.
   */
  commit(name: string, trx?: Knex.Transaction): Promise<void>;
  /** Drops the staged bytes (a failed or unneeded write). */
  discard(): Promise<void>;
}

export interface BlobBackend {
  readonly kind: BlobStoreKind;
  /** Streams `source` in, memory bounded; nothing is visible under a name until commit. */
  stage(source: Readable | AsyncIterable<Uint8Array>): Promise<StagedBlob>;
  /** stage + commit. */
  put(name: string, source: Readable | AsyncIterable<Uint8Array>): Promise<void>;
  /** The bytes under `name`, as a stream; a missing name is a BlobNotFoundError on the stream. */
  open(name: string): Readable;
  exists(name: string): Promise<boolean>;
  /** Every name stored, in name order (staged bytes are not). */
  list(): AsyncIterable<string>;
  /** The first `bytes` bytes under `name` (fewer when it is shorter), without reading the rest; BlobNotFoundError when missing. */
  head(name: string, bytes: number): Promise<Buffer>;
}

export class BlobNotFoundError extends Error {
  constructor(public readonly blobName: string) {
    super(`no stored file named ${JSON.stringify(blobName.slice(0, 200))}`);
    this.name = 'BlobNotFoundError';
  }
}

/** The stored file changed while it was read (replaced by a rebuild): reading again gives the new bytes. */
export class BlobChangedError extends Error {
  constructor(public readonly blobName: string) {
    super(`stored file ${JSON.stringify(blobName.slice(0, 200))} was replaced while it was read`);
    this.name = 'BlobChangedError';
  }
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** A name becomes a path (fs) or a key (pg): only Latin segments, none starting with '.', at most 255 characters. */
export function checkBlobName(name: string): string {
  const ok = typeof name === 'string' && name.length <= 255 && name.split('/').every((s) => SEGMENT.test(s));
  if (!ok) throw new TypeError(`not a stored file name (segments of Latin letters, digits, '.', '_', '-'): ${JSON.stringify(String(name).slice(0, 80))}`);
  return name;
}

// ---------------------------------------------------------------------------------------------
// fs: a folder on this machine
// ---------------------------------------------------------------------------------------------

/**
 * Files under `root`. A staged file is written to `<root>/.tmp`, synced, and renamed into place on
 * commit (rename is atomic within one file system, hence the temp folder inside root).
 */
export function createFsBlobs(root: string): BlobBackend & { pathOf(name: string): string } {
  const base = path.resolve(root);
  const tmpDir = stagingDir(base);
  const pathOf = (name: string) => path.join(base, ...checkBlobName(name).split('/'));

  async function stage(source: Readable | AsyncIterable<Uint8Array>): Promise<StagedBlob> {
    await fsp.mkdir(tmpDir, { recursive: true });
    const tmp = path.join(tmpDir, `${randomUUID()}.part`);
    let size = 0;
    try {
      const counted = async function* () {
        for await (const chunk of source) {
          size += chunk.length;
          yield chunk;
        }
      };
      await pipeline(counted, fs.createWriteStream(tmp, { flags: 'wx' }));
      // Synced before the rename, so the name never points at bytes still only in the page cache.
      const handle = await fsp.open(tmp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    return {
      size,
      async commit(name) {
        const final = pathOf(name);
        try {
          await fsp.mkdir(path.dirname(final), { recursive: true });
          await fsp.rename(tmp, final);
        } catch (err) {
          await fsp.rm(tmp, { force: true });
          throw err;
        }
      },
      discard: () => fsp.rm(tmp, { force: true }),
    };
  }

  /** Files below `dir`, by their names; dot-folders (the staging folder) are not stored files. */
  async function* walk(dir: string, prefix: string): AsyncGenerator<string> {
    const entries = await entriesOf(dir);
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) yield* walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      else if (e.isFile()) yield `${prefix}${e.name}`;
    }
  }

  return {
    kind: 'fs',
    pathOf,
    stage,
    list: () => walk(base, ''),
    async put(name, source) {
      pathOf(name);
      await (await stage(source)).commit(name);
    },
    open(name) {
      const file = pathOf(name);
      const stream = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
      // A missing file is the same typed error as on the database backend.
      const out = new PassThrough();
      stream.on('error', (err: NodeJS.ErrnoException) => out.destroy(err.code === 'ENOENT' ? new BlobNotFoundError(name) : err));
      stream.pipe(out);
      return out;
    },
    async exists(name) {
      return fs.existsSync(pathOf(name));
    },
    async head(name, bytes) {
      let handle;
      try {
        handle = await fsp.open(pathOf(name), 'r');
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new BlobNotFoundError(name) : err;
      }
      try {
        const buf = Buffer.alloc(bytes);
        const { bytesRead } = await handle.read(buf, 0, bytes, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// pg: K2's database
// ---------------------------------------------------------------------------------------------

/** 1 MiB per row: a write or a read holds about one chunk, whatever the file size. */
export const BLOB_CHUNK_BYTES = 1024 * 1024;

/**
 * Files in K2's database (migration 008): `document_blobs` names each file in its `space` and points
 * at one `blob_id`; `document_blob_chunks` holds that blob's bytes, chunk by chunk. Staging writes
 * chunks under a fresh blob_id that no name points at; commit points the name at it and deletes the
 * chunks of the blob it replaces, in one transaction. A crash while staging leaves chunks that no
 * name points at: invisible, and swept once old (sweepStagedChunks, by staged_at).
 */
export function createDbBlobs(db: Db, space: string, { chunkBytes = BLOB_CHUNK_BYTES }: { chunkBytes?: number } = {}): BlobBackend {
  if (!SEGMENT.test(space) || space.length > 32) throw new TypeError(`not a blob space: ${JSON.stringify(space)}`);

  async function stage(source: Readable | AsyncIterable<Uint8Array>): Promise<StagedBlob> {
    const blobId = randomUUID();
    let chunks = 0;
    let size = 0;
    const insert = async (bytes: Buffer) => {
      await db('document_blob_chunks').insert({ blob_id: blobId, chunk: chunks, bytes, staged_at: new Date().toISOString() });
      chunks++;
    };
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const c of source) {
        const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
        size += chunk.length;
        pending.push(chunk);
        pendingBytes += chunk.length;
        while (pendingBytes >= chunkBytes) {
          const all = Buffer.concat(pending, pendingBytes);
          await insert(all.subarray(0, chunkBytes));
          pending = [all.subarray(chunkBytes)];
          pendingBytes = all.length - chunkBytes;
        }
      }
      // The last (or only) chunk; an empty file still has one, so its name row has a chunk to point at.
      if (pendingBytes > 0 || chunks === 0) await insert(Buffer.concat(pending, pendingBytes));
    } catch (err) {
      await db('document_blob_chunks')
        .where({ blob_id: blobId })
        .delete()
        .catch(() => undefined);
      throw err;
    }
    const discard = async () => {
      await db('document_blob_chunks').where({ blob_id: blobId }).delete();
    };
    return {
      size,
      async commit(name, outer) {
        checkBlobName(name);
        const inTransaction = <T>(fn: (trx: Knex.Transaction) => Promise<T>) => (outer ? fn(outer) : db.transaction(fn));
        try {
          await inTransaction(async (trx) => {
            const before = await trx('document_blobs').where({ space, name }).forUpdate().first();
            const row = { space, name, blob_id: blobId, size, chunks, stored_at: new Date().toISOString() };
            await trx('document_blobs').insert(row).onConflict(['space', 'name']).merge(['blob_id', 'size', 'chunks', 'stored_at']);
            if (before && before.blob_id !== blobId) await trx('document_blob_chunks').where({ blob_id: before.blob_id }).delete();
          });
        } catch (err) {
          // Inside the caller's transaction the caller discards, after its rollback (SQLite has one connection).
          if (!outer) await discard().catch(() => undefined);
          throw err;
        }
      },
      discard,
    };
  }

  /** Reads one chunk at a time, as the consumer asks for it. */
  function open(name: string): Readable {
    checkBlobName(name);
    let head: { blobId: string; chunks: number } | undefined;
    let next = 0;
    return new Readable({
      highWaterMark: 1, // objectMode-like pacing: one chunk ahead at most
      read() {
        void (async () => {
          if (!head) {
            const row = await db('document_blobs').where({ space, name }).first();
            if (!row) throw new BlobNotFoundError(name);
            head = { blobId: String(row.blob_id), chunks: Number(row.chunks) };
          }
          if (next >= head.chunks) return this.push(null);
          const chunk = await db('document_blob_chunks').where({ blob_id: head.blobId, chunk: next }).first('bytes');
          // Replaced meanwhile (its chunks deleted by the commit of a new version).
          if (!chunk) throw new BlobChangedError(name);
          next++;
          this.push(Buffer.from(chunk.bytes as Buffer));
        })().catch((err: Error) => this.destroy(err));
      },
    });
  }

  return {
    kind: 'pg',
    stage,
    async put(name, source) {
      checkBlobName(name);
      await (await stage(source)).commit(name);
    },
    open,
    async exists(name) {
      checkBlobName(name);
      return (await db('document_blobs').where({ space, name }).first('name')) !== undefined;
    },
    async head(name, bytes) {
      checkBlobName(name);
      // Only the first chunk's first bytes cross the wire, not its whole MiB.
      const row = await db('document_blobs as b')
        .join('document_blob_chunks as c', function () {
          this.on('c.blob_id', '=', 'b.blob_id').andOn('c.chunk', '=', db.raw('0'));
        })
        .where({ 'b.space': space, 'b.name': name })
        .first(db.raw('substr(c.bytes, 1, ?) as head', [bytes]));
      if (!row) throw new BlobNotFoundError(name);
      return Buffer.from(row.head as Buffer);
    },
    async *list() {
      for (let after = ''; ;) {
        const page: Array<{ name: string }> = await db('document_blobs')
          .where({ space })
          .andWhere('name', '>', after)
          .orderBy('name')
          .limit(500)
          .select('name');
        for (const row of page) yield row.name;
        if (page.length < 500) return;
        after = page[page.length - 1].name;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What a crashed writer left staged
// ---------------------------------------------------------------------------------------------

/** A folder's entries; none when the folder does not exist (nothing was ever written there). */
export async function entriesOf(dir: string): Promise<fs.Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Where the fs backend stages a write below its root; other scratch work of the same root may live there too. */
export function stagingDir(root: string): string {
  return path.join(path.resolve(root), '.tmp');
}

/** The fs backend's staged files under `root` last written before `before` (a writer that crashed mid-write). Returns how many went. */
export async function sweepStagedFiles(root: string, before: Date): Promise<number> {
  const dir = stagingDir(root);
  let swept = 0;
  for (const e of await entriesOf(dir)) {
    if (!e.isFile() || !e.name.endsWith('.part')) continue;
    const file = path.join(dir, e.name);
    const stat = await fsp.stat(file).catch(() => undefined);
    if (!stat || stat.mtime >= before) continue;
    await fsp.rm(file, { force: true });
    swept++;
  }
  return swept;
}

/**
 * The database backend's chunks of blobs no name points at, staged before `before` (a writer that
 * crashed before its commit), in every space: chunks carry none. Returns how many blobs went.
 */
export async function sweepStagedChunks(db: Db, before: Date): Promise<number> {
  const unnamed = (q: Knex.QueryBuilder) =>
    q.where('staged_at', '<', before.toISOString()).whereNotExists(db('document_blobs').whereRaw('document_blobs.blob_id = document_blob_chunks.blob_id'));
  const ids = (await unnamed(db('document_blob_chunks').distinct('blob_id'))).map((r: { blob_id: string }) => r.blob_id);
  for (let i = 0; i < ids.length; i += 500) await unnamed(db('document_blob_chunks').whereIn('blob_id', ids.slice(i, i + 500))).delete();
  return ids.length;
}

/**
 * Stages `source` passed through `transforms` (e.g. a hash, then encryptStage): the bytes the last
 * transform gives are what is staged. A failure on either side leaves nothing staged.
 */
export async function stageThrough(backend: BlobBackend, source: Readable | AsyncIterable<Uint8Array>, ...transforms: Transform[]): Promise<StagedBlob> {
  const out = new PassThrough();
  const [flow, staging] = await Promise.allSettled([pipeline([source as Readable, ...transforms, out]), backend.stage(out)]);
  if (flow.status === 'rejected') {
    if (staging.status === 'fulfilled') await staging.value.discard();
    throw flow.reason;
  }
  if (staging.status === 'rejected') throw staging.reason;
  return staging.value;
}

/** The backend of one space (documents, gkb) for config.documents.store. */
export function createBlobBackend(store: BlobStoreKind, { db, dir, space }: { db: Db; dir?: string; space: string }): BlobBackend {
  if (store === 'pg') return createDbBlobs(db, space);
  if (!dir) throw new TypeError(`the fs document store needs a folder (space ${space})`);
  return createFsBlobs(dir);
}

// ---------------------------------------------------------------------------------------------
// Plaintext of a stored file
// ---------------------------------------------------------------------------------------------

/**
 * The plaintext of stored bytes: decrypted when they start with FILE_MAGIC, passed on as they are
 * otherwise (written before encryption, or the demo without keys), as encryption.ts's openFile does
 * for a path. Errors (BlobNotFoundError, FileDecryptionError, FileKeyUnknownError) arrive on the stream.
 */
export function plaintextOf(stored: Readable, keys: readonly FileKey[]): Readable {
  const out = new PassThrough();
  void (async () => {
    const it = stored[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    let ended = false;
    while (head.length < FILE_MAGIC.length && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else head = Buffer.concat([head, r.value]);
    }
    const rest = async function* () {
      if (head.length > 0) yield head;
      for (let r = ended ? undefined : await it.next(); r && !r.done; r = await it.next()) yield r.value;
    };
    const encrypted = head.length >= FILE_MAGIC.length && head.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC);
    await (encrypted ? pipeline(rest, createDecryptStream(keys), out) : pipeline(rest, out));
  })().catch((err: Error) => {
    stored.destroy();
    out.destroy(err);
  });
  return out;
}

/** Whether the stored bytes under `name` are encrypted (false for bytes written before encryption). */
export async function isEncryptedBlob(backend: BlobBackend, name: string): Promise<boolean> {
  try {
    return (await storedKeyId(backend, name)) !== null;
  } catch (err) {
    if (err instanceof FileDecryptionError) return true; // it starts as an encrypted file does; reading it tells the damage
    throw err;
  }
}

/** The id of the key the bytes under `name` are encrypted with; null when they are in clear. */
export async function storedKeyId(backend: BlobBackend, name: string): Promise<string | null> {
  return encryptedKeyId(await backend.head(name, KEY_ID_HEAD_BYTES));
}

/** The whole plaintext of a stored file (for a file that is sent whole anyway, such as a GKB upload). */
export async function readBlobPlain(backend: BlobBackend, name: string, keys: readonly FileKey[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of plaintextOf(backend.open(name), keys)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The document store: scans of loan agreements (ДБЗ) and other evidence of a case's dossier.
 *
 * Documents never enter workflow history (DOMAIN.md §2 stage 4): the bytes are stored by their
 * sha256 (name `ab/cd/<sha256>`) in the backend config.documents.store picks (documents/blobs.ts,
 * documents/README.md): fs, files under `dir` (`<dir>/ab/cd/<sha256>`, one machine), or pg, chunks
 * in K2's database that every worker reaches. The metadata lives in the database, and only the small
 * DocumentRef travels through the case.
 *
 *  - Content-addressed: the same bytes are stored once, whichever case or retry brings them.
 *  - Streaming: bytes go from the source stream into the backend's staging (a temp file, or chunk
 *    rows no name points at) while being hashed; nothing holds a whole file in memory. Once the hash
 *    is known the staged bytes are committed under their name atomically, so a name always holds
 *    complete bytes.
 *  - The metadata row is written after the bytes, so a row never points to missing bytes. A crash
 *    between the two leaves at most unreferenced bytes, which is harmless (a retry finds them in place).
 *  - Encrypted at rest (issue 13; documents/encryption.ts) with the first of `fileKeys`
 *    (config.payloadKeys); the sha256 is over the plaintext, so the same scan fetched again is still
 *    stored once. Reading decrypts chunk by chunk with whichever key the file names, reads a file
 *    written before encryption as it is, and checks the sha256 at the end: a damaged, truncated or
 *    swapped file is an error, never other bytes. Without keys (the demo only) files stay plaintext.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import type { Db } from '../db';
import type { DocumentRef } from '../domain/case';
import type { Logger } from '../observability/logger';
import {
  BlobNotFoundError,
  createBlobBackend,
  createFsBlobs,
  isEncryptedBlob,
  plaintextOf,
  stageThrough,
  type BlobBackend,
  type BlobStoreKind,
  type StagedBlob,
} from './blobs';
import { encryptStage, type FileKey } from './encryption';

export type { DocumentRef } from '../domain/case';

/** What a document is to its case. */
export type DocumentKind = 'dbz-scan' | (string & {});

export interface DocumentMeta {
  caseId: string;
  kind: DocumentKind;
  mediaType: string;
  /** Original file name (UTF-8), as ABS sent it. */
  fileName: string;
  /** When it was fetched from its source; now by default. */
  fetchedAt?: Date;
}

/** One (case, kind, content) row. */
export interface DocumentRecord {
  caseId: string;
  kind: string;
  sha256: string;
  mediaType: string;
  fileName: string;
  size: number;
  fetchedAt: string;
}

export interface StoredDocument {
  sha256: string;
  size: number;
  storedAt: string;
  /** Every case that holds this content, oldest first. */
  records: DocumentRecord[];
}

export interface DocumentStore {
  /** Streams the document into the store; resolves when both the file and its metadata row are durable. */
  put(source: Readable | AsyncIterable<Uint8Array>, meta: DocumentMeta): Promise<DocumentRef>;
  /**
   * The bytes (plaintext) of a stored document; throws DocumentNotFoundError when there is no such
   * content. The stream fails (FileDecryptionError, FileKeyUnknownError, DocumentDamagedError) rather than yield wrong bytes.
   */
  open(sha256: string): Readable;
  get(sha256: string): Promise<StoredDocument | undefined>;
  /** The documents of one case (its dossier), oldest first. */
  listForCase(caseId: string): Promise<DocumentRecord[]>;
}

export class DocumentNotFoundError extends Error {
  constructor(public readonly sha256: string) {
    super(`document ${sha256} is not in the document store`);
    this.name = 'DocumentNotFoundError';
  }
}

/** The file under a document's name no longer holds the bytes of that sha256 (changed or swapped on disk). */
export class DocumentDamagedError extends Error {
  constructor(public readonly sha256: string) {
    super(`document ${sha256} is damaged: its bytes no longer match their sha256`);
    this.name = 'DocumentDamagedError';
  }
}

/** The document is empty or larger than the store accepts: storing it again will not help. */
export class DocumentRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentRejectedError';
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
/** A scan of a few pages is a few MB; this only stops a runaway stream from filling the disk. */
const DEFAULT_MAX_BYTES = 200 * 1024 * 1024;

function toIso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

function checkMeta(meta: DocumentMeta): void {
  const problems: string[] = [];
  const text = (v: unknown, max: number) => typeof v === 'string' && v.trim() !== '' && v.length <= max;
  if (!text(meta.caseId, 128)) problems.push('caseId: expected 1..128 characters');
  if (!text(meta.kind, 32)) problems.push('kind: expected 1..32 characters');
  if (!text(meta.mediaType, 127) || !/^[\w.+-]+\/[\w.+-]+$/.test(meta.mediaType)) problems.push('mediaType: expected a media type such as application/pdf');
  if (!text(meta.fileName, 255)) problems.push('fileName: expected 1..255 characters');
  if (problems.length > 0) throw new TypeError(`document metadata: ${problems.join('; ')}`);
}

/** Passes the bytes on and fails at the end when they are not the content named `sha256`. */
function verifying(sha256: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      done(hash.digest('hex') === sha256 ? null : new DocumentDamagedError(sha256));
    },
  });
}

export interface DocumentStoreDeps {
  db: Db;
  /** config.documents.store: fs (default; files under `dir`) or pg (K2's database: every worker reaches it). */
  store?: BlobStoreKind;
  /** The folder of the fs store. */
  dir?: string;
  maxBytes?: number;
  /** config.payloadKeys: the first encrypts, all decrypt. None (the demo only): files are written in clear. */
  fileKeys?: readonly FileKey[];
  logger?: Pick<Logger, 'warn'>;
}

/** A document's stored name: `ab/cd/<sha256>` (the fs store's path below its folder). */
function nameOf(sha256: string): string {
  // The name becomes a path: only a real hash may do that.
  if (!SHA256.test(sha256)) throw new TypeError(`not a sha256 (64 lowercase hex characters): ${JSON.stringify(sha256.slice(0, 80))}`);
  return `${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;
}

export function createDocumentStore({ db, store = 'fs', dir, maxBytes = DEFAULT_MAX_BYTES, fileKeys = [], logger }: DocumentStoreDeps): DocumentStore {
  if (fileKeys.length === 0) logger?.warn('no payload keys (demo): loan-agreement scans are stored in clear at rest');
  const encrypting = fileKeys.length > 0;
  if (store === 'fs' && !dir) throw new TypeError('the fs document store needs a folder (dir)');
  const fsBlobs = store === 'fs' ? createFsBlobs(dir!) : undefined;
  const blobs: BlobBackend = fsBlobs ?? createBlobBackend(store, { db, space: 'documents' });

  const recordOf = (row: Record<string, unknown>): DocumentRecord => ({
    caseId: String(row.case_id),
    kind: String(row.kind),
    sha256: String(row.sha256),
    mediaType: String(row.media_type),
    fileName: String(row.file_name),
    size: Number(row.size), // pg returns bigint columns as text
    fetchedAt: toIso(row.fetched_at),
  });

  /** Stages the encrypted bytes, hashing the plaintext on the way; returns the hash and size of the plaintext. */
  async function stage(source: Readable | AsyncIterable<Uint8Array>): Promise<{ staged: StagedBlob; sha256: string; size: number }> {
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new DocumentRejectedError(`document is larger than ${maxBytes} bytes`));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const staged = await stageThrough(blobs, source, meter, encryptStage(fileKeys));
    return { staged, sha256: hash.digest('hex'), size };
  }

  return {
    async put(source, meta) {
      checkMeta(meta);
      const { staged, sha256, size } = await stage(source);
      let row: unknown;
      try {
        if (size === 0) throw new DocumentRejectedError('document is empty');
        const name = nameOf(sha256);
        // Same name, same plaintext: the content is already here. (One written in clear before
        // encryption is replaced by its encrypted copy: atomically, readers see either.)
        const present = (await blobs.exists(name)) && (!encrypting || (await isEncryptedBlob(blobs, name)));
        if (present) await staged.discard();
        // fs: the file is in place before its rows. pg: the bytes' name and the rows commit together.
        else if (blobs.kind === 'fs') await staged.commit(name);
        const now = new Date().toISOString();
        row = await db.transaction(async (trx) => {
          // Two writers of the same content may both commit; either leaves the same plaintext.
          if (!present && blobs.kind !== 'fs') await staged.commit(name, trx);
          await trx('document_contents').insert({ sha256, size, stored_at: now }).onConflict('sha256').ignore();
          const [inserted] = await trx('documents')
            .insert({
              case_id: meta.caseId,
              kind: meta.kind,
              sha256,
              media_type: meta.mediaType,
              file_name: meta.fileName,
              size,
              fetched_at: (meta.fetchedAt ?? new Date()).toISOString(),
            })
            .onConflict(['case_id', 'kind', 'sha256'])
            .ignore()
            .returning('*');
          return inserted ?? trx('documents').where({ case_id: meta.caseId, kind: meta.kind, sha256 }).first();
        });
      } catch (err) {
        await staged.discard().catch(() => undefined);
        throw err;
      }
      // The first row stored wins: a repeated put returns the same reference as the first one.
      const record = recordOf(row as Record<string, unknown>);
      return { sha256: record.sha256, size: record.size, mediaType: record.mediaType, fileName: record.fileName };
    },

    open(sha256) {
      const name = nameOf(sha256);
      // The fs store can tell at once; the pg store tells on the stream.
      if (fsBlobs && !fs.existsSync(fsBlobs.pathOf(name))) throw new DocumentNotFoundError(sha256);
      const check = verifying(sha256);
      const plain = plaintextOf(blobs.open(name), fileKeys);
      // By hand rather than pipeline(), so a missing blob reaches the reader as DocumentNotFoundError.
      plain.on('error', (err: Error) => check.destroy(err instanceof BlobNotFoundError ? new DocumentNotFoundError(sha256) : err));
      check.on('close', () => plain.destroy());
      plain.pipe(check);
      return check;
    },

    async get(sha256) {
      if (!SHA256.test(sha256)) return undefined;
      const content = await db('document_contents').where({ sha256 }).first();
      if (!content) return undefined;
      const rows = await db('documents').where({ sha256 }).orderBy('id');
      return {
        sha256,
        size: Number(content.size),
        storedAt: toIso(content.stored_at),
        records: rows.map(recordOf),
      };
    },

    async listForCase(caseId) {
      const rows = await db('documents').where({ case_id: caseId }).orderBy('id');
      return rows.map(recordOf);
    },
  };
}

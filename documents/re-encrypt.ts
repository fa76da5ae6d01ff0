/**
 * Key rotation for the files K2 keeps (documents/README.md, "Key rotation"): which payload key
 * each stored scan and GKB file is encrypted with, and rewriting those under an older key (or in
 * clear) with the current one, so an old key can leave K2_PAYLOAD_KEYS once no file needs it.
 *
 * A rewrite decrypts, checks and encrypts again as a stream, stages the new bytes and commits them
 * under the same name: readers see the old bytes or the new, never a mix. A GKB file is rewritten
 * only once its batch has uploaded it: until then a retried build may still replace it by name,
 * and a rewrite could put the older build back.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Transform } from 'node:stream';
import { batchFileLabel, WRITES_SETTLED_MS } from '../activities/gkb';
import type { Config } from '../config';
import type { Db } from '../db';
import { createBlobBackend, plaintextOf, stageThrough, storedKeyId, type BlobBackend } from './blobs';
import { encryptStage, type FileKey } from './encryption';

export type FileSpaceName = 'documents' | 'gkb';

/** The files of one kind, and which of them may be rewritten now. */
export interface FileSpace {
  name: FileSpaceName;
  backend: BlobBackend;
  /** Why the file may not be rewritten now; undefined: it may. */
  heldBack(file: string): string | undefined;
  /** The sha256 the plaintext must have, when the name says it (documents are addressed by it). */
  expectedSha256(file: string): string | undefined;
}

/** Batch states after the upload: a batch's files are never rebuilt from there on. */
const UPLOADED_STATES = new Set(['uploaded', 'polling', 'delivering', 'done']);

/** The documents and GKB files of the configured store, as the worker keeps them. */
export async function fileSpaces(config: Config, db: Db, now = Date.now()): Promise<FileSpace[]> {
  const store = config.documents.store;
  const documents = createBlobBackend(store, { db, dir: path.join(config.dataDir, 'documents'), space: 'documents' });
  const gkb = createBlobBackend(store, { db, dir: path.join(config.dataDir, 'gkb'), space: 'gkb' });
  const batches = new Map<string, string | undefined>();
  for (const b of await db('gkb_batches').select('batch_id', 'state', 'updated_at')) {
    batches.set(batchFileLabel(String(b.batch_id)), batchHoldsBack(String(b.batch_id), String(b.state), new Date(b.updated_at).getTime(), now));
  }
  return [
    { name: 'documents', backend: documents, heldBack: () => undefined, expectedSha256: (file) => /([0-9a-f]{64})$/.exec(file)?.[1] },
    {
      name: 'gkb',
      backend: gkb,
      heldBack: (file) => {
        const label = file.split('/')[0];
        return batches.has(label) ? batches.get(label) : `no batch named ${label} in K2's database: it may still be being built`;
      },
      expectedSha256: () => undefined,
    },
  ];
}

/** Why a batch's files may not be rewritten now (undefined: they may). */
export function batchHoldsBack(batchId: string, state: string, updatedAtMs: number, nowMs: number): string | undefined {
  if (UPLOADED_STATES.has(state)) return undefined;
  // An abandoned batch's build, if one still ran, has ended by then.
  if (state.startsWith('abandoned') && nowMs - updatedAtMs >= WRITES_SETTLED_MS) return undefined;
  return `batch ${batchId} is ${state}: a retried build may still replace its files`;
}

/** Per space, how many files each key id encrypts ('(clear)': not encrypted). */
export type KeyUsage = Record<FileSpaceName, Record<string, number>>;

export const IN_CLEAR = '(clear)';

export async function keyUsage(spaces: FileSpace[]): Promise<KeyUsage> {
  const usage = { documents: {}, gkb: {} } as KeyUsage;
  for (const space of spaces) {
    for await (const file of space.backend.list()) {
      const id = (await storedKeyId(space.backend, file)) ?? IN_CLEAR;
      usage[space.name][id] = (usage[space.name][id] ?? 0) + 1;
    }
  }
  return usage;
}

export interface ReEncryptReport {
  /** The key every rewritten file is now encrypted with. */
  keyId: string;
  rewritten: number;
  /** Already under the current key. */
  current: number;
  heldBack: Array<{ space: FileSpaceName; file: string; why: string }>;
  failed: Array<{ space: FileSpaceName; file: string; error: string }>;
}

export interface ReEncryptOptions {
  /** Count what would be rewritten; write nothing. */
  dryRun?: boolean;
  /** After each file looked at. */
  onFile?: (done: number) => void;
}

/** Rewrites every file not under `keys[0]` with it; a file that fails is reported and the others go on. */
export async function reEncryptFiles(spaces: FileSpace[], keys: readonly FileKey[], opts: ReEncryptOptions = {}): Promise<ReEncryptReport> {
  if (keys.length === 0) throw new TypeError('no payload keys: nothing to encrypt with (K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE)');
  const report: ReEncryptReport = { keyId: keys[0].id, rewritten: 0, current: 0, heldBack: [], failed: [] };
  let done = 0;
  for (const space of spaces) {
    for await (const file of space.backend.list()) {
      try {
        if ((await storedKeyId(space.backend, file)) === keys[0].id) report.current++;
        else {
          const why = space.heldBack(file);
          if (why) report.heldBack.push({ space: space.name, file, why });
          else {
            if (!opts.dryRun) await rewrite(space, file, keys);
            report.rewritten++;
          }
        }
      } catch (err) {
        report.failed.push({ space: space.name, file, error: `${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? err}` });
      }
      opts.onFile?.(++done);
    }
  }
  return report;
}

/** One file decrypted (any key), checked, encrypted with the first key and put back under its name. */
async function rewrite(space: FileSpace, file: string, keys: readonly FileKey[]): Promise<void> {
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const staged = await stageThrough(space.backend, plaintextOf(space.backend.open(file), keys), hashing, encryptStage(keys));
  const expected = space.expectedSha256(file);
  const actual = hash.digest('hex');
  if (expected && actual !== expected) {
    await staged.discard();
    throw new Error(`its plaintext's sha256 is ${actual}, not the ${expected} it is stored under: left as it is`);
  }
  await staged.commit(file);
}

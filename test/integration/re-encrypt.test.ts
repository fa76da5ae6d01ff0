/**
 * Key rotation for stored files (documents/re-encrypt.ts, `k2 files keys | re-encrypt`): on the fs
 * store and on the pg store (SQLite and, with K2_TEST_PG_URL, PostgreSQL), scans and GKB files under
 * an old key or in clear are rewritten with the current key and read back the same with it alone;
 * GKB files of batches not yet uploaded wait; a damaged file is reported and left as it is.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { filesCommands } from '../../cli/files';
import type { CliContext } from '../../cli/command';
import type { Config } from '../../config';
import type { Db } from '../../db';
import { saveBatch } from '../../db/gkb';
import { readBlobPlain } from '../../documents/blobs';
import { createEncryptStream, type FileKey } from '../../documents/encryption';
import { batchHoldsBack, fileSpaces, IN_CLEAR, keyUsage, reEncryptFiles, type FileSpace } from '../../documents/re-encrypt';
import { createDocumentStore } from '../../documents/store';
import { testDatabases } from '../helpers/databases';

jest.setTimeout(60_000);

const OLD: FileKey = { id: 'k-2025', key: randomBytes(32) };
const NEW: FileKey = { id: 'k-2026', key: randomBytes(32) };
const scanA = Buffer.from('%PDF-1.4 agreement A');
const scanB = Buffer.from('%PDF-1.4 agreement B, stored before encryption');
const zip = Buffer.from('PK\u0003\u0004 the ZIP of a GKB file');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const meta = (caseId: string) => ({ caseId, kind: 'dbz-scan', mediaType: 'application/pdf', fileName: 'scan.pdf' });

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe.each(testDatabases())('on %s', (database) => {
  let db: Db;
  let dir: string;
  beforeEach(async () => {
    db = await database.open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-reencrypt-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterAll(() => database.cleanup());

  describe.each(['fs', 'pg'] as const)('%s store', (store) => {
    const config = () => ({ documents: { store }, dataDir: dir, payloadKeys: [NEW, OLD] }) as unknown as Config;
    const documents = (keys: FileKey[]) => createDocumentStore({ db, store, dir: path.join(dir, 'documents'), fileKeys: keys });

    /** Two scans (one under the old key, one in clear) and GKB files of an uploaded batch, a batch being built and an unknown one. */
    async function storeFiles(): Promise<FileSpace[]> {
      await documents([OLD]).put(Readable.from([scanA]), meta('case-A/run'));
      await documents([]).put(Readable.from([scanB]), meta('case-B/run'));
      await saveBatch(db, 'gkb-batch-done', 'done', []);
      await saveBatch(db, 'gkb-batch-building', 'claimed', []);
      const spaces = await fileSpaces(config(), db);
      const gkb = spaces.find((s) => s.name === 'gkb')!.backend;
      for (const name of ['gkb-batch-done/K2_gkb-batch-done_1.zip', 'gkb-batch-building/K2_gkb-batch-building_1.zip', 'gkb-batch-gone/K2_gkb-batch-gone_1.zip'])
        await gkb.put(name, Readable.from([zip]).pipe(createEncryptStream(OLD)));
      return spaces;
    }

    test('files under an old key or in clear move to the current key; GKB files of batches not yet uploaded wait', async () => {
      const spaces = await storeFiles();
      expect(await keyUsage(spaces)).toEqual({ documents: { [OLD.id]: 1, [IN_CLEAR]: 1 }, gkb: { [OLD.id]: 3 } });

      const dry = await reEncryptFiles(spaces, [NEW, OLD], { dryRun: true });
      expect(dry).toMatchObject({ keyId: NEW.id, rewritten: 3, current: 0, failed: [] });
      expect(await keyUsage(spaces)).toEqual({ documents: { [OLD.id]: 1, [IN_CLEAR]: 1 }, gkb: { [OLD.id]: 3 } }); // nothing written

      const done = await reEncryptFiles(spaces, [NEW, OLD]);
      expect(done).toMatchObject({ rewritten: 3, current: 0, failed: [] });
      expect(done.heldBack).toEqual([
        {
          space: 'gkb',
          file: 'gkb-batch-building/K2_gkb-batch-building_1.zip',
          why: 'batch gkb-batch-building is claimed: a retried build may still replace its files',
        },
        { space: 'gkb', file: 'gkb-batch-gone/K2_gkb-batch-gone_1.zip', why: "no batch named gkb-batch-gone in K2's database: it may still be being built" },
      ]);
      expect(await keyUsage(spaces)).toEqual({ documents: { [NEW.id]: 2 }, gkb: { [NEW.id]: 1, [OLD.id]: 2 } });

      // The new key alone reads them back as they were.
      expect(await readAll(documents([NEW]).open(sha(scanA)))).toEqual(scanA);
      expect(await readAll(documents([NEW]).open(sha(scanB)))).toEqual(scanB);
      expect(await readBlobPlain(spaces[1].backend, 'gkb-batch-done/K2_gkb-batch-done_1.zip', [NEW])).toEqual(zip);

      expect(await reEncryptFiles(spaces, [NEW, OLD])).toMatchObject({ rewritten: 0, current: 3, failed: [] }); // again: nothing to do
    });

    test('a scan whose plaintext is not what its name says is reported and left as it is; the others are rewritten', async () => {
      const spaces = await storeFiles();
      const docs = spaces[0].backend;
      const wrong = `${'0'.repeat(2)}/${'0'.repeat(2)}/${'0'.repeat(64)}`;
      await docs.put(wrong, Readable.from([Buffer.from('not the content of 000…')]).pipe(createEncryptStream(OLD)));
      const report = await reEncryptFiles(spaces, [NEW, OLD]);
      expect(report.rewritten).toBe(3);
      expect(report.failed).toEqual([
        {
          space: 'documents',
          file: wrong,
          error: expect.stringMatching(/^Error: its plaintext's sha256 is [0-9a-f]{64}, not the 0{64} it is stored under: left as it is$/),
        },
      ]);
      expect(await readBlobPlain(docs, wrong, [OLD])).toEqual(Buffer.from('not the content of 000…')); // still under the old key
    });

    test('the CLI: `files keys` shows the counts and whether each key is configured; `files re-encrypt` rewrites and says what it did', async () => {
      await storeFiles();
      const lines: string[] = [];
      const ctx = (keys: FileKey[], json = false): CliContext => ({
        config: { ...config(), payloadKeys: keys },
        db: async () => db,
        client: async () => {
          throw new Error('no Temporal needed');
        },
        json,
        out: (l) => lines.push(l),
        err: (l) => lines.push(`stderr: ${l}`),
      });
      const [keysCommand, reEncryptCommand] = filesCommands;
      expect(await keysCommand.run({ positionals: [], values: {} }, ctx([NEW]))).toBe(0);
      expect(lines.map((l) => l.split(/\s{2,}/))).toEqual([
        ['space', 'key', 'files', 'configured'],
        ['documents', OLD.id, '1', 'NO'],
        ['documents', IN_CLEAR, '1', '-'],
        ['gkb', OLD.id, '3', 'NO'],
        [`current key (encrypts from now on): ${NEW.id}`],
      ]);
      lines.length = 0;
      expect(await reEncryptCommand.run({ positionals: [], values: {} }, ctx([]))).toBe(1);
      expect(lines).toEqual(['stderr: k2 files re-encrypt: no payload keys (K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE): nothing to encrypt with']);
      lines.length = 0;
      expect(await reEncryptCommand.run({ positionals: [], values: {} }, ctx([NEW, OLD]))).toBe(0);
      expect(lines[0]).toBe(`rewritten 3 file(s) with key ${NEW.id}; 0 already under it; 2 held back; 0 failed`);
    });
  });
});

test("batchHoldsBack: a batch's files may be rewritten once it uploaded them, or two hours after it was abandoned", () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  for (const state of ['uploaded', 'polling', 'delivering', 'done']) expect(batchHoldsBack('b1', state, now, now)).toBeUndefined();
  for (const state of ['claimed', 'built'])
    expect(batchHoldsBack('b1', state, now - 86_400_000, now)).toBe(`batch b1 is ${state}: a retried build may still replace its files`);
  expect(batchHoldsBack('b1', 'abandoned', now - 3600_000, now)).toBe('batch b1 is abandoned: a retried build may still replace its files');
  expect(batchHoldsBack('b1', 'abandoned', now - 2 * 3600_000, now)).toBeUndefined();
  expect(batchHoldsBack('b1', 'abandoned-delivered', now - 3 * 3600_000, now)).toBeUndefined();
});

/**
 * GKB batch files at rest (issue 13): with payload keys the kept ZIP is encrypted, while the sha256
 * and size the file reports are those of the plaintext ZIP that GKB receives; a file that fails the
 * XSD leaves no XML in clear behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { FILE_MAGIC, readFilePlain, type FileKey } from '../../documents/encryption';
import { mapDossierToContract, type ContractRecord } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { writeBatchFiles } from '../../integrations/gkb/batch-file';
import { sampleDossiers } from '../fixtures/gkb/sample-dossiers';

const key: FileKey = { id: 'k2025', key: randomBytes(32) };
const mtime = new Date('2025-01-01T00:00:00Z');
let dir: string;

function records(count: number): ContractRecord[] {
  return [...sampleDossiers(count)].map((d) => {
    const r = mapDossierToContract(d, DEFAULT_GKB_DICTIONARY, { operation: 2, fileType: 1 });
    if (!r.ok) throw new Error(r.reason);
    return r.record;
  });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'k2-gkb-file-rest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the kept ZIP is encrypted; sha256 and size are those of the plaintext ZIP, the same as without keys', async () => {
  const plainDir = path.join(dir, 'plain');
  const [clear] = await writeBatchFiles({ records: records(5), dir: plainDir, baseName: 'b1', mtime });
  const [sealed] = await writeBatchFiles({ records: records(5), dir: path.join(dir, 'sealed'), baseName: 'b1', mtime, fileKeys: [key] });

  const onDisk = readFileSync(sealed.zipPath);
  expect(onDisk.subarray(0, FILE_MAGIC.length)).toEqual(FILE_MAGIC);
  const zip = await readFilePlain(sealed.zipPath, [key]);
  expect(zip).toEqual(readFileSync(clear.zipPath)); // same records, same mtime: the very ZIP GKB would get without encryption
  expect(sealed.sha256).toBe(createHash('sha256').update(zip).digest('hex'));
  expect(sealed.sha256).toBe(clear.sha256);
  expect(sealed.bytes).toBe(zip.length);
  expect(onDisk.length).toBeGreaterThan(zip.length);
});

test('with keys, a file that fails the XSD leaves no XML in clear', async () => {
  const [good] = records(1);
  const bad: ContractRecord = { ...good, general: { ...good.general, contractCode: 'BAD-1', startDate: '15.03.2023' } };
  await expect(writeBatchFiles({ records: [good, bad], dir, baseName: 'broken', fileKeys: [key] })).rejects.toThrow(
    /fails the XSD: line \d+: Element 'StartDate'.*\(contract BAD-1\).*the XML is not kept, K2 keeps no personal data in clear/,
  );
  expect(await readdir(dir)).toEqual([]);
  expect(existsSync(path.join(dir, 'K2_broken_1.zip'))).toBe(false);
});

test('with keys, the XML has no name on disk even while it is written, validated and zipped: a crash leaves none behind', async () => {
  const seen: string[][] = [];
  async function* watched(): AsyncGenerator<ContractRecord> {
    for (const r of records(25)) {
      seen.push(await readdir(dir)); // between two contracts of the file being written
      yield r;
    }
  }
  const files = await writeBatchFiles({ records: watched(), dir, baseName: 'b2', fileKeys: [key], maxRecordsPerFile: 10, mtime });
  expect(files.map((f) => f.records)).toEqual([10, 10, 5]);
  expect(seen.flat().filter((name) => name.endsWith('.xml'))).toEqual([]);
  expect((await readdir(dir)).sort()).toEqual(['K2_b2_1.zip', 'K2_b2_2.zip', 'K2_b2_3.zip']);
  // What was zipped is the whole XML: the same ZIPs as the demo's named files give.
  const clear = await writeBatchFiles({ records: records(25), dir: path.join(dir, 'clear'), baseName: 'b2', maxRecordsPerFile: 10, mtime });
  for (const [i, f] of files.entries()) expect(await readFilePlain(f.zipPath, [key])).toEqual(readFileSync(clear[i].zipPath));
});

test('without keys (the demo) the XML is a named file beside the ZIP, kept for inspection', async () => {
  const [f] = await writeBatchFiles({ records: records(3), dir, baseName: 'b3' });
  expect(existsSync(f.xmlPath)).toBe(true);
  expect(readFileSync(f.xmlPath).length).toBe(f.xmlBytes);
});

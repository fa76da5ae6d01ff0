import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yauzl from 'yauzl';
import { mapDossierToContract, writeContractXml, type ContractRecord } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { contractXmlChunks, fileNameFor, latinFileNamePart, writeBatchFiles, XML_HEADER } from '../../integrations/gkb/batch-file';
import { validateGkbXml } from '../../integrations/gkb/xsd';
import { sampleDossier, sampleDossiers } from '../fixtures/gkb/sample-dossiers';

function* records(count: number, fileType: 1 | 3 = 1): Generator<ContractRecord> {
  for (const d of sampleDossiers(count)) {
    const r = mapDossierToContract(fileType === 3 ? { ...d, overdueDays: 0, residualAmount: d.creditLimit } : d, DEFAULT_GKB_DICTIONARY, {
      operation: 2,
      fileType,
    });
    if (!r.ok) throw new Error(r.reason);
    yield r.record;
  }
}

async function* slowly<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const item of items) {
    await new Promise((resolve) => setImmediate(resolve));
    yield item;
  }
}

/** Every entry of a ZIP as name → text, read with yauzl (an independent reader). */
function unzip(zipPath: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const out = new Map<string, string>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(chunks).toString('utf8'));
            zip.readEntry();
          });
          stream.on('error', reject);
        });
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gkb-batch-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file names (Latin only, document §4.1.1)', () => {
  test('K2_<batchId>_<part>.zip', () => {
    expect(fileNameFor('20240630-01', 1)).toBe('K2_20240630-01_1.zip');
    expect(fileNameFor('b7', 12)).toBe('K2_b7_12.zip');
  });
  test('Cyrillic is transliterated, anything else non-Latin is refused', () => {
    expect(latinFileNamePart('Пакет июнь')).toBe('Paket_iyun');
    expect(latinFileNamePart('Қарыз')).toBe('Qaryz');
    expect(() => fileNameFor('批次', 1)).toThrow(/Latin/);
    expect(() => fileNameFor('a/b', 1)).toThrow(/Latin/);
    expect(() => fileNameFor('', 1)).toThrow(/Latin/);
    expect(() => fileNameFor('ok', 0)).toThrow(RangeError);
  });
  test('the written files have Latin names', async () => {
    const files = await writeBatchFiles({ records: records(3), dir, baseName: 'Пакет 1' });
    expect(files.map((f) => f.fileName)).toEqual(['K2_Paket_1_1.zip']);
    for (const name of await readdir(dir)) expect(name).toMatch(/^[A-Za-z0-9._-]+$/);
  });
});

describe('writeBatchFiles', () => {
  test('splits into two files at the record limit; ZIPs hold valid XML', async () => {
    const files = await writeBatchFiles({
      records: slowly(records(25)),
      dir,
      baseName: 'split',
      maxRecordsPerFile: 20,
      mtime: new Date('2024-06-30T10:00:00Z'),
    });
    expect(files.map((f) => [f.fileName, f.records])).toEqual([
      ['K2_split_1.zip', 20],
      ['K2_split_2.zip', 5],
    ]);
    const allCodes = files.flatMap((f) => f.contractCodes);
    expect(allCodes).toEqual([...records(25)].map((r) => r.general.contractCode));

    for (const f of files) {
      const zipBytes = await readFile(f.zipPath);
      expect(f.bytes).toBe(zipBytes.byteLength);
      expect(f.sha256).toBe(createHash('sha256').update(zipBytes).digest('hex'));
      const entries = await unzip(f.zipPath);
      expect([...entries.keys()]).toEqual([path.basename(f.xmlPath)]);
      const xml = entries.get(path.basename(f.xmlPath))!;
      expect(xml).toBe(await readFile(f.xmlPath, 'utf8'));
      expect(xml.startsWith('<?xml version="1.0" encoding="utf-8"?>\n<Records>\n')).toBe(true);
      expect(xml.endsWith('</Records>\n')).toBe(true);
      expect(xml.match(/<Contract operation="2">/g)).toHaveLength(f.records);
      expect(f.contractCodes.every((c) => xml.includes(`<ContractCode>${c}</ContractCode>`))).toBe(true);
      expect(await validateGkbXml(xml)).toEqual({ valid: true, errors: [] });
    }
  });

  test('exactly at the limit gives one file', async () => {
    const files = await writeBatchFiles({ records: records(20), dir, baseName: 'exact', maxRecordsPerFile: 20 });
    expect(files.map((f) => f.records)).toEqual([20]);
  });

  test('splits at the size limit too', async () => {
    const oneRecordBytes = Buffer.byteLength(writeContractXml([...records(1)][0], 1));
    const maxBytes = XML_HEADER.length + 3 * oneRecordBytes + 200; // room for 3 records, not 4
    const files = await writeBatchFiles({ records: records(7), dir, baseName: 'size', maxBytes });
    expect(files.map((f) => f.records)).toEqual([3, 3, 1]);
    for (const f of files) expect(f.xmlBytes).toBeLessThanOrEqual(maxBytes);
  });

  test('zero records, zero files', async () => {
    expect(await writeBatchFiles({ records: [], dir, baseName: 'none' })).toEqual([]);
  });

  test('limits above the GKB package limits are refused', async () => {
    await expect(writeBatchFiles({ records: [], dir, baseName: 'x', maxRecordsPerFile: 10_001 })).rejects.toThrow(/1\.\.10000/);
    await expect(writeBatchFiles({ records: [], dir, baseName: 'x', maxBytes: 101 * 1024 * 1024 })).rejects.toThrow(/100 MB/);
  });

  test('an invalid record stops the batch with the XSD problem and the contract named', async () => {
    const [good] = records(1);
    const bad: ContractRecord = { ...good, general: { ...good.general, contractCode: 'BAD-1', startDate: '15.03.2023' } };
    const err = await writeBatchFiles({ records: [good, bad], dir, baseName: 'broken' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(
      /^GKB file K2_broken_1\.zip \(.*K2_broken_1\.xml\) fails the XSD: line \d+: Element 'StartDate': '15\.03\.2023' is not a valid value .* \(contract BAD-1\)/,
    );
    expect(existsSync(path.join(dir, 'K2_broken_1.zip'))).toBe(false); // nothing uploadable was produced
  });

  test('one-day records are validated with the type-3 schema and not mixed with type 1', async () => {
    const files = await writeBatchFiles({ records: records(3, 3), dir, baseName: 'oneday', fileType: 3 });
    expect(files[0].records).toBe(3);
    await expect(writeBatchFiles({ records: records(1, 3), dir, baseName: 'mixed' })).rejects.toThrow(/file type 3.*type 1/);
  });

  test('contractXmlChunks yields header, one chunk per contract, footer', async () => {
    const chunks: string[] = [];
    for await (const c of contractXmlChunks(records(2))) chunks.push(c);
    expect(chunks).toHaveLength(4);
    expect((await validateGkbXml(chunks.join(''))).valid).toBe(true);
  });
});

test('sampleDossier maps (fixture sanity)', () => {
  expect(mapDossierToContract(sampleDossier(), DEFAULT_GKB_DICTIONARY, { operation: 1, fileType: 1 }).ok).toBe(true);
});

import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { mapDossierToContract, writeContractXml, type ContractRecord } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY, type GkbDossier } from '../../domain/gkb/dossier';
import { writeBatchFiles, XML_FOOTER, XML_HEADER } from '../../integrations/gkb/batch-file';
import { validateGkbXml } from '../../integrations/gkb/xsd';
import { sampleDossier, sampleDossiers } from '../fixtures/gkb/sample-dossiers';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'gkb');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

function record(d: GkbDossier, fileType: 1 | 3 = 1, operation: 1 | 2 = 1): ContractRecord {
  const r = mapDossierToContract(d, DEFAULT_GKB_DICTIONARY, { operation, fileType });
  if (!r.ok) throw new Error(r.reason);
  return r.record;
}
const file = (...records: ContractRecord[]) => XML_HEADER + records.map((r) => writeContractXml(r)).join('') + XML_FOOTER;

describe("the GKB document's own examples (verbatim, test/fixtures/gkb)", () => {
  // Type-1 examples: §3.1 full contract and the §3.2-3.4 blocks.
  test.each(['doc-3.1-contract.xml', 'doc-3.2-type-block.xml', 'doc-3.3-collaterals-block.xml', 'doc-3.4-subjects-block.xml'])(
    '%s validates against the type-1 schema',
    async (name) => {
      expect(await validateGkbXml(fixture(name), { fileType: 1 })).toEqual({ valid: true, errors: [] });
    },
  );

  // §6: every one-day example validates against the type-3 schema, and so does every type-1
  // example, since full type-1 contracts are also accepted as type 3.
  test.each([
    'doc-6.1-oneday-contract.xml',
    'doc-6.2-oneday-type-block.xml',
    'doc-6.3-oneday-collaterals-block.xml',
    'doc-6.4-oneday-subjects-block.xml',
    'doc-3.1-contract.xml',
    'doc-3.2-type-block.xml',
    'doc-3.3-collaterals-block.xml',
    'doc-3.4-subjects-block.xml',
  ])('%s validates against the one-day (type 3) schema', async (name) => {
    expect(await validateGkbXml(fixture(name), { fileType: 3 })).toEqual({ valid: true, errors: [] });
  });

  test('the one-day contract is not a complete type-1 contract', async () => {
    const r = await validateGkbXml(fixture('doc-6.1-oneday-contract.xml'), { fileType: 1 });
    expect(r.valid).toBe(false);
    expect(r.errors.join('\n')).toMatch(/Element 'ContractPhase': This element is not expected. Expected is \( CreditPurpose2 \)/);
  });
});

describe('generated records', () => {
  test('type 1 and type 3 records validate', async () => {
    expect(await validateGkbXml(file(record(sampleDossier()), record(sampleDossier({ phase: 'closed', overdueDays: 0, debt: '0' }))))).toEqual({
      valid: true,
      errors: [],
    });
    const oneDay = file(
      record(sampleDossier({ overdueDays: 0, residualAmount: '2000000', addresses: undefined, communications: undefined, collaterals: undefined }), 3),
    );
    expect(await validateGkbXml(oneDay, { fileType: 3 })).toEqual({ valid: true, errors: [] });
    // A one-day record lacks what type 1 requires.
    expect((await validateGkbXml(oneDay, { fileType: 1 })).valid).toBe(false);
  });

  test('a type-1 file of operation-2 records without Collaterals, Addresses and Communications validates', async () => {
    const bare = (i: number) => sampleDossier({ contractNumber: `UPD-${i}`, addresses: undefined, communications: undefined, collaterals: undefined });
    const xml = file(record(bare(1), 1, 2), record(bare(2), 1, 2), record(sampleDossier(), 1, 2));
    expect(xml.match(/<Contract operation="2">/g)).toHaveLength(3);
    expect(xml.match(/<Collaterals>/g)).toHaveLength(1); // only the third, full record
    expect(xml.match(/<Addresses>/g)).toHaveLength(1);
    expect(xml.match(/<Communications>/g)).toHaveLength(1);
    expect(await validateGkbXml(xml, { fileType: 1 })).toEqual({ valid: true, errors: [] });
  });

  test('each of the three blocks may be left out on its own, in the document order', async () => {
    const full = file(record(sampleDossier(), 1, 2));
    for (const strip of [/\s*<Collaterals>[\s\S]*?<\/Collaterals>/, /\s*<Addresses>[\s\S]*?<\/Addresses>/, /\s*<Communications>[\s\S]*?<\/Communications>/]) {
      const xml = full.replace(strip, '');
      expect(xml).not.toBe(full);
      expect(await validateGkbXml(xml)).toEqual({ valid: true, errors: [] });
    }
  });

  test('an operation-2 record without ResidualAmount and Citizenship (K2 does not know them, G6) validates', async () => {
    const rec = record(sampleDossier({ outBal: '2000000', addresses: undefined, communications: undefined, collaterals: undefined }), 1, 2);
    const xml = file(rec);
    expect(xml).not.toMatch(/<ResidualAmount|<Citizenship/);
    expect(await validateGkbXml(xml, { fileType: 1 })).toEqual({ valid: true, errors: [] });
  });

  test('when known, ResidualAmount and Citizenship are still checked in their place', async () => {
    const xml = file(record(sampleDossier({ residualAmount: '1500000', citizenshipId: '110' }), 1, 2));
    expect(await validateGkbXml(xml)).toEqual({ valid: true, errors: [] });
    const misplaced = xml.replace(/(\s*<ResidualAmount[^>]*>[^<]*<\/ResidualAmount>)(\s*<OverdueAmount[^>]*>[^<]*<\/OverdueAmount>)/, '$2$1');
    expect(misplaced).not.toBe(xml);
    expect((await validateGkbXml(misplaced)).errors.join('\n')).toMatch(/Element 'ResidualAmount': This element is not expected/);
  });

  test('XSD 1.0 cannot tie the blocks to the operation: an operation-1 record without them passes the schema', async () => {
    // Enforced instead by mapDossierToContract (K2) and by the sandbox's business rules (GKB); see
    // gkb-mapping.test.ts and gkb-soap.test.ts.
    const xml = file(record(sampleDossier({ addresses: undefined, communications: undefined, collaterals: undefined }), 1, 2)).replace(
      'operation="2"',
      'operation="1"',
    );
    expect(await validateGkbXml(xml)).toEqual({ valid: true, errors: [] });
    expect(mapDossierToContract(sampleDossier({ collaterals: undefined }), DEFAULT_GKB_DICTIONARY, { operation: 1, fileType: 1 }).ok).toBe(false);
  });

  test('accepts a Buffer', async () => {
    expect((await validateGkbXml(Buffer.from(file(record(sampleDossier())), 'utf8'))).valid).toBe(true);
  });
});

describe('broken records fail with a useful error', () => {
  const good = () => file(record(sampleDossier()));
  const line = (xml: string, needle: string) => xml.slice(0, xml.indexOf(needle)).split('\n').length;

  test.each([
    [
      'a dotted date',
      (x: string) => x.replace('<StartDate>2023-03-15</StartDate>', '<StartDate>15.03.2023</StartDate>'),
      /line \d+: Element 'StartDate': '15.03.2023' is not a valid value/,
    ],
    ['a date with a time zone', (x: string) => x.replace('accountingDate="2024-06-30"', 'accountingDate="2024-06-30+06:00"'), /attribute 'accountingDate'/],
    ['three decimals', (x: string) => x.replace('125000.50</OverdueAmount>', '125000.505</OverdueAmount>'), /Element 'OverdueAmount'.*fractionDigits/],
    ['a negative amount', (x: string) => x.replace('>2000000.00</CreditLimit>', '>-1.00</CreditLimit>'), /Element 'CreditLimit'.*minInclusive/],
    ['operation 3', (x: string) => x.replace('operation="1"', 'operation="3"'), /attribute 'operation'.*enumeration/],
    [
      'a missing ContractStatus',
      (x: string) => x.replace(/\s*<ContractStatus id="\d+"\/>/, ''),
      /Element 'StartDate': This element is not expected. Expected is \( ContractStatus \)/,
    ],
    [
      'elements out of order',
      (x: string) =>
        x
          .replace(/(\s*<StartDate>.*?<\/StartDate>)(\s*<ContractStatus id="\d+"\/>)/, '$2$1')
          .replace(/(\s*<ContractPhase id="\d+"\/>)(\s*<ContractStatus id="\d+"\/>)/, '$2$1'),
      /not expected/,
    ],
    ['a lowercase currency', (x: string) => x.replace('<CreditLimit currency="KZT">', '<CreditLimit currency="kzt">'), /attribute 'currency'/],
    ['a non-numeric dictionary id', (x: string) => x.replace('<FundingType id="2"/>', '<FundingType id="two"/>'), /attribute 'id'.*pattern/],
    ['an empty surname', (x: string) => x.replace(/(<Surname>\s*<Text language="ru-RU">)[^<]+/, '$1'), /Element 'Text'/],
    ['an unknown language', (x: string) => x.replace('<Text language="ru-RU">', '<Text language="ru">'), /attribute 'language'/],
    ['a 5-digit KATO code', (x: string) => x.replace('katoId="710000000"', 'katoId="71000"'), /attribute 'katoId'/],
    // The three optional blocks are optional, not loose: present means non-empty and in place.
    [
      'an empty <Collaterals/>',
      (x: string) => x.replace(/<Collaterals>[\s\S]*?<\/Collaterals>/, '<Collaterals/>'),
      /Element 'Collaterals': Missing child element\(s\)\. Expected is \( Collateral \)/,
    ],
    [
      'an empty <Addresses/>',
      (x: string) => x.replace(/<Addresses>[\s\S]*?<\/Addresses>/, '<Addresses/>'),
      /Element 'Addresses': Missing child element\(s\)\. Expected is \( Address \)/,
    ],
    [
      'an empty <Communications/>',
      (x: string) => x.replace(/<Communications>[\s\S]*?<\/Communications>/, '<Communications></Communications>'),
      /Element 'Communications': Missing child element\(s\)\. Expected is \( Communication \)/,
    ],
    [
      'Communications before Addresses',
      (x: string) => x.replace(/(\s*<Addresses>[\s\S]*?<\/Addresses>)(\s*<Communications>[\s\S]*?<\/Communications>)/, '$2$1'),
      /Element 'Addresses': This element is not expected/,
    ],
    [
      'Collaterals after Subjects',
      (x: string) => x.replace(/(\s*<Collaterals>[\s\S]*?<\/Collaterals>)(\s*<Subjects>[\s\S]*?<\/Subjects>)/, '$2$1'),
      /Element 'Collaterals': This element is not expected/,
    ],
    [
      'a legal-entity subject',
      (x: string) => x.replace('<Individual>', '<Company>').replace('</Individual>', '</Company>'),
      /Element 'Company': This element is not expected. Expected is \( Individual \)/,
    ],
  ])('%s', async (_label, breakIt, expected) => {
    const xml = breakIt(good());
    expect(xml).not.toBe(good());
    const r = await validateGkbXml(xml);
    expect(r.valid).toBe(false);
    expect(r.errors.join('\n')).toMatch(expected);
    expect(r.errors[0]).toMatch(/^line \d+: /);
  });

  test('the error names the line of the problem', async () => {
    const xml = good().replace('<FundingType id="2"/>', '<FundingType id="two"/>');
    const r = await validateGkbXml(xml);
    expect(r.errors[0]).toMatch(new RegExp(`^line ${line(xml, 'id="two"')}: `));
  });

  test('malformed XML is invalid, not a crash', async () => {
    const r = await validateGkbXml('<Records><Contract operation="1"></Records>');
    expect(r.valid).toBe(false);
    expect(r.errors[0]).toBe('not well-formed XML');
    expect((await validateGkbXml('')).valid).toBe(false);
  });

  test('an empty <Records> is invalid', async () => {
    expect((await validateGkbXml(XML_HEADER + XML_FOOTER)).valid).toBe(false);
  });
});

describe('package size', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gkb-xsd-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a 10,000-record file validates (xmllint-wasm memory limits)', async () => {
    function* records() {
      for (const d of sampleDossiers(10_000)) yield record(d);
    }
    const [f, ...rest] = await writeBatchFiles({ records: records(), dir, baseName: 'xsd10k' });
    expect(rest).toEqual([]);
    expect(f.records).toBe(10_000);
    const xml = await readFile(f.xmlPath);
    expect(xml.byteLength).toBeGreaterThan(20 * 1024 * 1024); // well beyond xmllint-wasm's 32 MiB default heap with a DOM
    expect(await validateGkbXml(xml)).toEqual({ valid: true, errors: [] });
  });

  test('10,001 contracts exceed the document §4 package limit', async () => {
    const one = writeContractXml(record(sampleDossier()));
    const r = await validateGkbXml(XML_HEADER + one.repeat(10_001) + XML_FOOTER);
    expect(r.valid).toBe(false);
    expect(r.errors[0]).toMatch(/Element 'Contract': This element is not expected/);
  });
});

/**
 * The GKB client against the GKB sandbox over real HTTP (ephemeral port), both built from the same WSDL.
 * The sandbox runs on a clock the tests move, so "processing takes days" costs nothing.
 */
import * as yazl from 'yazl';
import { mapDossierToContract, writeContractXml } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { computeCheckDigit } from '../../domain/iin';
import { XML_FOOTER, XML_HEADER } from '../../integrations/gkb/batch-file';
import {
  classifyBatchStatus,
  createGkbClient,
  GkbPermanentError,
  GkbTransientError,
  isFinalStatus,
  isTransientGkbError,
  type GkbClient,
  type RecordGroupStatus,
} from '../../integrations/gkb/soap-client';
import { Faults } from '../../simulators/faults';
import { createGkbSandbox, type GkbSandbox } from '../../simulators/gkb/sandbox';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';

const CREDS = { clientId: 'k2-test', password: 'k2-test-secret', userId: 'k2-user-1' };
const DAY = 86_400_000;
const STEP = 1000;
const PROCESSING = 3 * DAY;

/** A valid IIN: born 1989-01-01 (890101), female 1900s (4), serial, check digit computed. */
function iin(serial: number): string {
  for (let s = serial; ; s++) {
    const first11 = `8901014${String(s).padStart(4, '0')}`;
    const k = computeCheckDigit(first11);
    if (k !== undefined) return first11 + k;
  }
}
function badIin(serial: number): string {
  const good = iin(serial);
  return good.slice(0, 11) + String((Number(good[11]) + 1) % 10);
}

type OptionalBlock = 'Collaterals' | 'Addresses' | 'Communications';

interface TestContract {
  op?: 1 | 2;
  /** Blocks to leave out (K2's type-1 XSD allows it; GKB's business rules refuse it for operation 1). */
  omit?: OptionalBlock[];
  code: string;
  start?: string;
  accountingDate?: string;
  iin: string;
  surname?: string;
}

function contractXml(c: TestContract): string {
  const has = (block: OptionalBlock) => !c.omit?.includes(block);
  return `  <Contract operation="${c.op ?? 1}">
    <General>
      <ContractCode>${c.code}</ContractCode>
      <AgreementNumber>${c.code}</AgreementNumber>
      <FundingType id="2"/>
      <CreditPurpose2 id="1"/>
      <CreditObject id="03"/>
      <ContractPhase id="4"/>
      <ContractStatus id="11"/>
      <StartDate>${c.start ?? '2024-01-15'}</StartDate>
      <BranchLocation katoId="710000000"/>
${has('Collaterals') ? '      <Collaterals><Collateral statusId="1" typeId="5"/></Collaterals>\n' : ''}      <Subjects>
        <Subject roleId="1">
          <Entity>
            <Individual>
              <FirstName><Text language="ru-RU">ИМЯ</Text></FirstName>
              <Surname><Text language="ru-RU">${c.surname ?? 'ФАМИЛИЯ'}</Text></Surname>
              <Gender>F</Gender>
              <Residency id="1"/>
              <DateOfBirth>1989-01-01</DateOfBirth>
              <Citizenship id="110"/>
              <Identifications>
                <Identification rank="1" typeId="14"><Number>${c.iin}</Number></Identification>
              </Identifications>
${has('Addresses') ? '              <Addresses><Address katoId="750000000" locationId="110" typeId="1"/></Addresses>\n' : ''}${
    has('Communications') ? '              <Communications><Communication typeId="3">87019303855</Communication></Communications>\n' : ''
  }            </Individual>
          </Entity>
        </Subject>
      </Subjects>
    </General>
    <Type>
      <Credit>
        <CreditLimit currency="KZT">15000.00</CreditLimit>
        <RecordsList>
          <Record accountingDate="${c.accountingDate ?? '2024-06-01'}">
            <ResidualAmount currency="KZT">12000.00</ResidualAmount>
            <OverdueAmount currency="KZT">3000.00</OverdueAmount>
          </Record>
        </RecordsList>
      </Credit>
    </Type>
  </Contract>`;
}

function batchXml(contracts: TestContract[]): Buffer {
  return Buffer.from(`<?xml version="1.0" encoding="utf-8"?>\n<Records>\n${contracts.map(contractXml).join('\n')}\n</Records>\n`, 'utf8');
}

function zip(entryName: string, content: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = new yazl.ZipFile();
    z.addBuffer(content, entryName, { mtime: new Date('2024-06-01T00:00:00Z') });
    z.end();
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
  });
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail');
}

describe('GKB SOAP client against the GKB sandbox', () => {
  let clock = Date.parse('2024-06-03T04:00:00Z');
  const advance = (ms: number) => {
    clock += ms;
  };
  const faults = new Faults('gkb');
  let sandbox: GkbSandbox;
  let url: string;
  let port: number;
  let gkb: GkbClient;
  let fileSeq = 0;
  const nextName = (ext = 'xml') => `K2_test_${++fileSeq}.${ext}`;
  const clientWith = (over: Partial<Parameters<typeof createGkbClient>[0]> = {}) => createGkbClient({ url, ...CREDS, timeoutMs: 5000, ...over });

  beforeAll(async () => {
    sandbox = createGkbSandbox({
      faults,
      credentials: CREDS,
      timing: { stepMs: STEP, processingMs: PROCESSING, lateAnswerMs: 3000, now: () => clock },
      limits: { maxRecordsPerPackage: 5 },
    });
    ({ url, port } = await sandbox.listen(0));
    gkb = clientWith();
  });
  afterAll(async () => {
    await sandbox.close();
  });
  afterEach(() => faults.reset());

  /** Moves the clock past the end of processing and returns the package's only file. */
  async function processed(batchPackageId: string) {
    advance(3 * STEP + PROCESSING + 1);
    const info = await gkb.getImportInfo({ packageId: batchPackageId });
    expect(info.count).toBe(1);
    return info.files[0];
  }
  async function detail(fileId: string, recordGroupStatus: RecordGroupStatus) {
    return gkb.getImportDetailInfo({ fileId, recordGroupStatus, maxResults: 100 });
  }

  test('status texts: trailing period and spaces ignored, unknown text is not final', () => {
    expect(classifyBatchStatus('Файл получен')).toBe('received');
    expect(classifyBatchStatus('Файл подготовлен к обработке.')).toBe('prepared');
    expect(classifyBatchStatus('Начинается обработка')).toBe('starting');
    expect(classifyBatchStatus('Файл находится в процессе обработки')).toBe('processing');
    expect(classifyBatchStatus(' Файл обработан. ')).toBe('processed');
    expect(classifyBatchStatus('Файл обработан')).toBe('processed');
    expect(classifyBatchStatus('Ошибка обработки.')).toBe('failed');
    expect(classifyBatchStatus('Файл удален')).toBe('unknown');
    expect(isFinalStatus('Файл обработан')).toBe(true);
    expect(isFinalStatus('Ошибка обработки')).toBe(true);
    expect(isFinalStatus('Файл находится в процессе обработки')).toBe(false);
    expect(isFinalStatus('Что-то новое.')).toBe(false);
  });

  test('XML upload: the statuses progress over days of sandbox time to «Файл обработан.»', async () => {
    const fileName = nextName();
    const { batchPackageId } = await gkb.uploadFile({
      file: batchXml([
        { code: 'PROG-1', iin: iin(1) },
        { code: 'PROG-2', iin: iin(2) },
      ]),
      fileName,
      fileType: 1,
    });
    expect(batchPackageId).toMatch(/^\d+$/);

    const seen: string[] = [];
    const look = async () => {
      const info = await gkb.getImportInfo({ packageId: batchPackageId, firstResult: 0, maxResults: 10, language: 'ru' });
      expect(info.count).toBe(1);
      const f = info.files[0];
      expect(f.fileName).toBe(fileName);
      expect(f.batchPackage?.packageId).toBe(batchPackageId);
      expect(f.batchPackage?.packageName).toBe(fileName);
      seen.push(f.batchUploadStatus);
      return f;
    };
    expect((await look()).status).toBe('received');
    advance(STEP);
    expect((await look()).status).toBe('prepared');
    advance(STEP);
    expect((await look()).status).toBe('starting');
    advance(STEP);
    const processing = await look();
    expect(processing.status).toBe('processing');
    expect(processing.final).toBe(false);
    expect(processing.numberOfContracts).toBe(0);
    advance(PROCESSING - 1); // almost three days later: still processing
    expect((await look()).final).toBe(false);
    advance(1);
    const done = await look();
    expect(done.status).toBe('processed');
    expect(done.final).toBe(true);
    expect(done).toMatchObject({ numberOfContracts: 2, newContracts: 2, updatedContracts: 0, skippedContracts: 0, numberOfErrors: 0, newSubjects: 2 });
    expect(seen).toEqual([
      'Файл получен',
      'Файл подготовлен к обработке',
      'Начинается обработка',
      'Файл находится в процессе обработки',
      'Файл находится в процессе обработки',
      'Файл обработан.',
    ]);
  });

  test('ZIP upload holding the XML is processed like the XML itself', async () => {
    const fileName = nextName('zip');
    const file = await zip('K2_zip_inner.xml', batchXml([{ code: 'ZIP-1', iin: iin(10) }]));
    const { batchPackageId } = await gkb.uploadFile({ file, fileName, fileType: 1 });
    const f = await processed(batchPackageId);
    expect(f.fileName).toBe('K2_zip_inner.xml');
    expect(f.batchPackage?.packageName).toBe(fileName);
    // The package is what K2 uploaded: match by it, never by the XML's name inside.
    expect(f).toMatchObject({ packageId: batchPackageId, packageName: fileName });
    expect(f.status).toBe('processed');
    expect(f.newContracts).toBe(1);
    const records = await detail(f.fileId, 1);
    expect(records.records.map((r) => r.result)).toEqual(['Создан новый контракт.', 'Создан новый субъект.']);
    expect(records.records[0]).toMatchObject({ contractCode: 'ZIP-1' });
    expect(records.records[1]).toMatchObject({ contractCode: 'ZIP-1', iinBin: iin(10), subjectName: 'ФАМИЛИЯ ИМЯ' });
  });

  test('mixed file: bad records are rejected with Russian messages, good ones load', async () => {
    const { batchPackageId } = await gkb.uploadFile({
      file: batchXml([
        { code: 'MIX-OK', iin: iin(20) },
        { code: 'MIX-BAD-IIN', iin: badIin(21) },
        { code: 'MIX-BAD-DATE', iin: iin(22), start: '2024-07-01', accountingDate: '2024-06-01' },
      ]),
      fileName: nextName(),
      fileType: 1,
    });
    const f = await processed(batchPackageId);
    expect(f.status).toBe('processed');
    expect(f).toMatchObject({ numberOfContracts: 1, newContracts: 1, numberOfErrors: 2 });
    const errors = await detail(f.fileId, 0);
    expect(errors.count).toBe(2);
    const byCode = Object.fromEntries(errors.records.map((r) => [r.contractCode, r]));
    expect(byCode['MIX-BAD-IIN'].message).toMatch(/ИИН\/БИН субъекта не прошел проверку/);
    expect(byCode['MIX-BAD-DATE'].message).toMatch(/раньше даты начала действия договора/);
    expect(byCode['MIX-BAD-DATE'].result).toBe('Запись не загружена.');
    const good = await detail(f.fileId, 4);
    expect(good.records.every((r) => r.contractCode === 'MIX-OK')).toBe(true);
  });

  test('insert then update: real result texts, and insert of an existing contract is an error', async () => {
    const subject = iin(30);
    const first = await processed(
      (await gkb.uploadFile({ file: batchXml([{ op: 1, code: 'UPD-1', iin: subject }]), fileName: nextName(), fileType: 1 })).batchPackageId,
    );
    expect(first).toMatchObject({ newContracts: 1, updatedContracts: 0 });

    const second = await processed(
      (await gkb.uploadFile({ file: batchXml([{ op: 2, code: 'UPD-1', iin: subject, accountingDate: '2024-06-02' }]), fileName: nextName(), fileType: 1 }))
        .batchPackageId,
    );
    expect(second).toMatchObject({ newContracts: 0, updatedContracts: 1, updatedSubjects: 1, numberOfErrors: 0 });
    const updated = await detail(second.fileId, 2);
    expect(updated.records.map((r) => r.result)).toEqual(['Контракт обновлен.', 'Субъект обновлен.']);
    const createdFirst = await detail(first.fileId, 1);
    expect(updated.records[0].contractId).toBe(createdFirst.records[0].contractId);

    // Same code, different StartDate: a different contract (identity = code + StartDate + provider).
    const other = await processed(
      (await gkb.uploadFile({ file: batchXml([{ op: 1, code: 'UPD-1', iin: subject, start: '2024-02-01' }]), fileName: nextName(), fileType: 1 }))
        .batchPackageId,
    );
    expect(other).toMatchObject({ newContracts: 1, updatedSubjects: 1 });

    const again = await processed(
      (await gkb.uploadFile({ file: batchXml([{ op: 1, code: 'UPD-1', iin: subject }]), fileName: nextName(), fileType: 1 })).batchPackageId,
    );
    expect(again).toMatchObject({ numberOfContracts: 0, numberOfErrors: 1 });
    expect((await detail(again.fileId, 0)).records[0].message).toMatch(/уже существует/);
  });

  describe('operation 2 without the blocks K2 has no source for (product decision)', () => {
    const NONE: OptionalBlock[] = ['Collaterals', 'Addresses', 'Communications'];

    test('operation 2 of an unknown contract, without Collaterals/Addresses/Communications, creates it', async () => {
      const subject = iin(50);
      const xml = batchXml([{ op: 2, code: 'OP2-NEW', iin: subject, omit: NONE }]);
      expect(xml.toString('utf8')).not.toMatch(/<Collaterals|<Addresses|<Communications/);
      const f = await processed((await gkb.uploadFile({ file: xml, fileName: nextName(), fileType: 1 })).batchPackageId);
      expect(f).toMatchObject({ status: 'processed', numberOfContracts: 1, newContracts: 1, updatedContracts: 0, numberOfErrors: 0, newSubjects: 1 });
      const created = await detail(f.fileId, 1);
      expect(created.records.map((r) => r.result)).toEqual(['Создан новый контракт.', 'Создан новый субъект.']);
      expect(created.records[0]).toMatchObject({ contractCode: 'OP2-NEW' });

      // The next overdue report is an update of the same contract.
      const next = await processed(
        (
          await gkb.uploadFile({
            file: batchXml([{ op: 2, code: 'OP2-NEW', iin: subject, accountingDate: '2024-06-02', omit: NONE }]),
            fileName: nextName(),
            fileType: 1,
          })
        ).batchPackageId,
      );
      expect(next).toMatchObject({ newContracts: 0, updatedContracts: 1, numberOfErrors: 0 });
      const updated = await detail(next.fileId, 2);
      expect(updated.records.map((r) => r.result)).toEqual(['Контракт обновлен.', 'Субъект обновлен.']);
      expect(updated.records[0].contractId).toBe(created.records[0].contractId);
    });

    test('operation 1 missing a mandatory block is rejected, naming the block; complete records in the file load', async () => {
      const f = await processed(
        (
          await gkb.uploadFile({
            file: batchXml([
              { op: 1, code: 'OP1-NO-COLL', iin: iin(60), omit: ['Collaterals'] },
              { op: 1, code: 'OP1-NO-ADDR', iin: iin(61), omit: ['Addresses'] },
              { op: 1, code: 'OP1-NO-COMM', iin: iin(62), omit: ['Communications'] },
              { op: 1, code: 'OP1-NONE', iin: iin(63), omit: NONE },
              { op: 1, code: 'OP1-FULL', iin: iin(64) },
            ]),
            fileName: nextName(),
            fileType: 1,
          })
        ).batchPackageId,
      );
      expect(f).toMatchObject({ status: 'processed', numberOfContracts: 1, newContracts: 1, numberOfErrors: 4 });
      const errors = await detail(f.fileId, 0);
      const byCode = Object.fromEntries(errors.records.map((r) => [r.contractCode, r]));
      expect(byCode['OP1-NO-COLL'].message).toBe('Не заполнен обязательный блок: Collaterals (информация по обеспечениям).');
      expect(byCode['OP1-NO-COLL'].result).toBe('Запись не загружена.');
      expect(byCode['OP1-NO-ADDR'].message).toBe('Не заполнен обязательный блок: Addresses (информация по адресам субъекта).');
      expect(byCode['OP1-NO-COMM'].message).toBe('Не заполнен обязательный блок: Communications (информация по контактным данным субъекта).');
      expect(byCode['OP1-NONE'].message).toMatch(/Collaterals.*Addresses.*Communications/);
      expect((await detail(f.fileId, 1)).records[0]).toMatchObject({ contractCode: 'OP1-FULL', result: 'Создан новый контракт.' });
    });

    test('a record as K2 builds it (no ResidualAmount, no Citizenship, no blocks K2 has no source for) is accepted', async () => {
      const mapped = mapDossierToContract(
        sampleDossier({ contractNumber: 'K2-BUILT-1', outBal: '2000000', addresses: undefined, communications: undefined, collaterals: undefined }),
        DEFAULT_GKB_DICTIONARY,
        { operation: 2, fileType: 1 },
      );
      if (!mapped.ok) throw new Error(mapped.reason);
      const xml = XML_HEADER + writeContractXml(mapped.record) + XML_FOOTER;
      expect(xml).not.toMatch(/<ResidualAmount|<Citizenship|<Collaterals|<Addresses|<Communications/);
      const f = await processed((await gkb.uploadFile({ file: Buffer.from(xml, 'utf8'), fileName: nextName(), fileType: 1 })).batchPackageId);
      expect(f).toMatchObject({ status: 'processed', numberOfContracts: 1, numberOfErrors: 0 });
    });

    test('the operation-1 block rule is that of file type 1: a one-day file (type 3) does not require them', async () => {
      const f = await processed(
        (await gkb.uploadFile({ file: batchXml([{ op: 1, code: 'OP1-ONEDAY', iin: iin(70), omit: NONE }]), fileName: nextName(), fileType: 3 })).batchPackageId,
      );
      expect(f).toMatchObject({ newContracts: 1, numberOfErrors: 0 });
    });
  });

  test('detail pages for every recordGroupStatus, with pagination', async () => {
    // Known subject and contract first, so that the second file has new, updated and error records.
    await processed((await gkb.uploadFile({ file: batchXml([{ code: 'GRP-OLD', iin: iin(40) }]), fileName: nextName(), fileType: 1 })).batchPackageId);
    const f = await processed(
      (
        await gkb.uploadFile({
          file: batchXml([
            { op: 2, code: 'GRP-OLD', iin: iin(40) },
            { code: 'GRP-NEW-1', iin: iin(41) },
            { code: 'GRP-NEW-2', iin: iin(42) },
            { code: 'GRP-ERR', iin: badIin(43) },
          ]),
          fileName: nextName(),
          fileType: 1,
        })
      ).batchPackageId,
    );
    const counts: Record<number, number> = {};
    for (const g of [0, 1, 2, 3, 4] as RecordGroupStatus[]) counts[g] = (await detail(f.fileId, g)).count;
    expect(counts).toEqual({ 0: 1, 1: 4, 2: 2, 3: 0, 4: 6 });

    const page1 = await gkb.getImportDetailInfo({ fileId: f.fileId, recordGroupStatus: 4, firstResult: 0, maxResults: 4 });
    const page2 = await gkb.getImportDetailInfo({ fileId: f.fileId, recordGroupStatus: 4, firstResult: 4, maxResults: 4 });
    expect(page1.count).toBe(6);
    expect(page1.records).toHaveLength(4);
    expect(page2.records).toHaveLength(2);
    const ids = [...page1.records, ...page2.records].map((r) => r.recordId);
    expect(new Set(ids).size).toBe(6);
  });

  test("getImportInfo pagination over the provider's files (no packageId), newest first", async () => {
    const all = await gkb.getImportInfo({ firstResult: 0, maxResults: 1000 });
    expect(all.count).toBeGreaterThanOrEqual(3);
    const p1 = await gkb.getImportInfo({ firstResult: 0, maxResults: 2 });
    const p2 = await gkb.getImportInfo({ firstResult: 2, maxResults: 2 });
    expect(p1.files.map((f) => f.fileId)).toEqual(all.files.slice(0, 2).map((f) => f.fileId));
    expect(p2.files.map((f) => f.fileId)).toEqual(all.files.slice(2, 4).map((f) => f.fileId));
    expect(Number(all.files[0].fileId)).toBeGreaterThan(Number(all.files[1].fileId));
  });

  describe('credentials', () => {
    test('wrong password: HTTP 401, permanent Authentication error', async () => {
      const err = await caught(clientWith({ password: 'wrong' }).getImportInfo({ firstResult: 0, maxResults: 1 }));
      expect(err).toBeInstanceOf(GkbPermanentError);
      expect(isTransientGkbError(err)).toBe(false);
      expect(err).toMatchObject({ faultKind: 'Authentication', httpStatus: 401, code: 'AUTHENTICATION_FAILED' });
    });
    test('unknown userId in the SOAP header: ScbBusinessFault', async () => {
      const err = await caught(
        clientWith({ userId: 'someone-else' }).uploadFile({ file: batchXml([{ code: 'X', iin: iin(50) }]), fileName: nextName(), fileType: 1 }),
      );
      expect(err).toBeInstanceOf(GkbPermanentError);
      expect(err).toMatchObject({ faultKind: 'ScbBusinessFault', code: 'USER_NOT_AUTHORIZED' });
    });
  });

  describe('faults and their classification', () => {
    test('ScbSystemFault (set through POST /_sim/faults) is transient; DELETE clears it', async () => {
      const base = `http://127.0.0.1:${port}/_sim/faults`;
      const set = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ systemFault: 1 }) });
      const faultsOf = async (r: Response) => ((await r.json()) as { faults: Record<string, number> }).faults;
      expect(await faultsOf(set)).toEqual({ systemFault: 1 });
      const err = await caught(gkb.getImportInfo({ firstResult: 0, maxResults: 1 }));
      expect(err).toBeInstanceOf(GkbTransientError);
      expect(isTransientGkbError(err)).toBe(true);
      expect(err).toMatchObject({ reason: 'ScbSystemFault', code: 'SYSTEM_ERROR' });
      expect(await faultsOf(await fetch(base, { method: 'DELETE' }))).toEqual({});
      expect(await faultsOf(await fetch(base))).toEqual({});
      await expect(gkb.getImportInfo({ firstResult: 0, maxResults: 1 })).resolves.toBeDefined();
    });

    test('file failing the XSD: ScbValidationFault with the violations, nothing registered', async () => {
      const before = sandbox.stats().packages;
      const err = await caught(gkb.uploadFile({ file: Buffer.from('<Records><Contract operation="1"/></Records>'), fileName: nextName(), fileType: 1 }));
      expect(err).toBeInstanceOf(GkbPermanentError);
      const e = err as GkbPermanentError;
      expect(e.faultKind).toBe('ScbValidationFault');
      expect(e.code).toBe('XSD_VALIDATION_FAILED');
      expect(e.constraintViolations.length).toBeGreaterThan(0);
      expect(e.constraintViolations[0].message).toMatch(/General|Contract/);
      expect(sandbox.stats().packages).toBe(before);
    });

    test('Cyrillic file name: refused by the client before sending, and by GKB on the wire', async () => {
      const local = await caught(gkb.uploadFile({ file: batchXml([{ code: 'C', iin: iin(60) }]), fileName: 'пакет.xml', fileType: 1 }));
      expect(local).toMatchObject({ faultKind: 'ScbValidationFault', code: 'CLIENT_FILE_NAME' });

      // A hand-made request as another client might send it: wrapper qualified, children unqualified.
      const envelope =
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:data="http://data.chdb.scb.kz">' +
        `<soapenv:Header><userId>${CREDS.userId}</userId></soapenv:Header><soapenv:Body><data:uploadFile>` +
        `<file>${batchXml([{ code: 'C', iin: iin(60) }]).toString('base64')}</file><fileName>пакет.xml</fileName><fileType>1</fileType>` +
        '</data:uploadFile></soapenv:Body></soapenv:Envelope>';
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'text/xml; charset=utf-8',
          soapaction: '""',
          authorization: `Basic ${Buffer.from(`${CREDS.clientId}:${CREDS.password}`).toString('base64')}`,
        },
        body: envelope,
      });
      expect(res.status).toBe(500);
      const body = await res.text();
      expect(body).toMatch(/<ns2:ScbValidationFault xmlns:ns2="http:\/\/data.chdb.scb.kz"><code>INVALID_PARAMETERS<\/code>/);
      expect(body).toMatch(/<propertyPath>fileName<\/propertyPath>/);
    });

    test('wrong extension / file type: ScbValidationFault naming the parameter', async () => {
      const err = (await caught(gkb.uploadFile({ file: batchXml([{ code: 'T', iin: iin(61) }]), fileName: 'K2_test.txt', fileType: 1 }))) as GkbPermanentError;
      expect(err.faultKind).toBe('ScbValidationFault');
      expect(err.constraintViolations.map((v) => v.propertyPath)).toEqual(['fileName']);
    });

    test('more records than a package may hold: ScbBusinessFault', async () => {
      const contracts = Array.from({ length: 6 }, (_, i) => ({ code: `LIM-${i}`, iin: iin(70 + i) }));
      const err = await caught(gkb.uploadFile({ file: batchXml(contracts), fileName: nextName(), fileType: 1 }));
      expect(err).toBeInstanceOf(GkbPermanentError);
      expect(err).toMatchObject({ faultKind: 'ScbBusinessFault', code: 'RECORDS_LIMIT_EXCEEDED' });
    });

    test('unknown package: ScbBusinessFault', async () => {
      const err = await caught(gkb.getImportInfo({ packageId: '1' }));
      expect(err).toMatchObject({ faultKind: 'ScbBusinessFault', code: 'PACKAGE_NOT_FOUND' });
    });

    test('processingError: the file ends «Ошибка обработки.», every record in the error group', async () => {
      faults.set({ processingError: 1 });
      const f = await processed(
        (
          await gkb.uploadFile({
            file: batchXml([
              { code: 'PE-1', iin: iin(80) },
              { code: 'PE-2', iin: iin(81) },
            ]),
            fileName: nextName(),
            fileType: 1,
          })
        ).batchPackageId,
      );
      expect(f.batchUploadStatus).toBe('Ошибка обработки.');
      expect(f.status).toBe('failed');
      expect(f.final).toBe(true);
      expect(f).toMatchObject({ numberOfContracts: 0, numberOfErrors: 2 });
      const errors = await detail(f.fileId, 0);
      expect(errors.records.map((r) => r.message)).toEqual(['Ошибка обработки файла.', 'Ошибка обработки файла.']);
    });

    test('recordRejectRate: records rejected with a business error', async () => {
      faults.set({ recordRejectRate: 1 });
      const f = await processed((await gkb.uploadFile({ file: batchXml([{ code: 'RR-1', iin: iin(82) }]), fileName: nextName(), fileType: 1 })).batchPackageId);
      expect(f).toMatchObject({ status: 'processed', numberOfContracts: 0, numberOfErrors: 1 });
      expect((await detail(f.fileId, 0)).records[0].message).toMatch(/бизнес-правил/);
    });

    test('slowFactor stretches the schedule of new uploads', async () => {
      faults.set({ slowFactor: 10 });
      const { batchPackageId } = await gkb.uploadFile({ file: batchXml([{ code: 'SLOW-1', iin: iin(83) }]), fileName: nextName(), fileType: 1 });
      advance(5 * STEP);
      expect((await gkb.getImportInfo({ packageId: batchPackageId })).files[0].status).toBe('received');
      advance(30 * STEP);
      expect((await gkb.getImportInfo({ packageId: batchPackageId })).files[0].status).toBe('processing');
    });

    test('HTTP 503 from a proxy is transient', async () => {
      faults.set({ http5xx: 1 });
      const err = await caught(gkb.getImportInfo({ firstResult: 0, maxResults: 1 }));
      expect(err).toBeInstanceOf(GkbTransientError);
      expect(err).toMatchObject({ reason: 'http', httpStatus: 503 });
    });

    test('no answer within the deadline: transient timeout, outcome unknown', async () => {
      faults.set({ latencyMs: 2000 });
      const err = await caught(clientWith({ timeoutMs: 300 }).getImportInfo({ firstResult: 0, maxResults: 1 }));
      expect(err).toBeInstanceOf(GkbTransientError);
      expect(err).toMatchObject({ reason: 'timeout', outcomeUnknown: true });
    });

    test('connection refused: transient network error, the request never left', async () => {
      const err = await caught(createGkbClient({ url: 'http://127.0.0.1:1/BatchProcessingService', ...CREDS, timeoutMs: 2000 }).getImportInfo({}));
      expect(err).toBeInstanceOf(GkbTransientError);
      expect(err).toMatchObject({ reason: 'network', outcomeUnknown: false });
    });
  });

  describe('upload outcome unknown', () => {
    test('a timed-out upload that GKB did register is found by name and adopted, not uploaded twice', async () => {
      const fileName = nextName();
      const file = batchXml([{ code: 'OU-1', iin: iin(90) }]);
      const slowClient = clientWith({ timeoutMs: 500 });
      faults.set({ uploadTimeout: 1 });
      const err = await caught(slowClient.uploadFile({ file, fileName, fileType: 1 }));
      expect(err).toMatchObject({ reason: 'timeout', outcomeUnknown: true });
      faults.reset();

      const packagesBefore = sandbox.stats().packages;
      const found = await gkb.findUploadedFile(fileName);
      expect(found.status).toBe('found');
      const batchPackageId = (found as { batchPackageId: string }).batchPackageId;

      // The retry (attempt 2) searches first and adopts the package.
      const retry = await gkb.uploadFileOnce({ file, fileName, fileType: 1, searchFirst: true });
      expect(retry).toEqual({ batchPackageId, adopted: true });
      expect(sandbox.stats().packages).toBe(packagesBefore);
      expect((await processed(batchPackageId)).newContracts).toBe(1);
    });

    test('uploadFileOnce resolves an outcome-unknown failure by itself when the package exists', async () => {
      const fileName = nextName();
      faults.set({ uploadTimeout: 1 });
      const result = await clientWith({ timeoutMs: 500 }).uploadFileOnce({
        file: batchXml([{ code: 'OU-2', iin: iin(91) }]),
        fileName,
        fileType: 1,
        searchFirst: false,
      });
      expect(result.adopted).toBe(true);
      expect((await gkb.getImportInfo({ packageId: result.batchPackageId })).files[0].batchPackage?.packageName).toBe(fileName);
    });

    test('a service that cannot list without packageId: search unsupported, the file is uploaded again', async () => {
      const strict = createGkbSandbox({ credentials: CREDS, timing: { now: () => clock }, listWithoutPackageId: false });
      const { url: strictUrl } = await strict.listen(0);
      try {
        const client = createGkbClient({ url: strictUrl, ...CREDS, timeoutMs: 5000 });
        const found = await client.findUploadedFile('K2_test_x.xml');
        expect(found.status).toBe('unsupported');
        const result = await client.uploadFileOnce({
          file: batchXml([{ code: 'OU-4', iin: iin(93) }]),
          fileName: 'K2_test_x.xml',
          fileType: 1,
          searchFirst: true,
        });
        expect(result.adopted).toBe(false);
        expect(strict.stats().packages).toBe(1);
      } finally {
        await strict.close();
      }
    });

    test('a name GKB does not know: not found, so the first attempt uploads', async () => {
      expect(await gkb.findUploadedFile('K2_never_uploaded_1.zip')).toEqual({ status: 'not-found' });
      const fileName = nextName();
      const first = await gkb.uploadFileOnce({ file: batchXml([{ code: 'OU-3', iin: iin(92) }]), fileName, fileType: 1, searchFirst: true });
      expect(first.adopted).toBe(false);
    });
  });
});

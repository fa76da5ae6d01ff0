/**
 * The GKB sandbox as another client would see it: hand-written SOAP requests shaped like the GKB document's
 * example requests, over real HTTP, answers read with a generic XML parser. Not K2's SOAP client: these
 * tests check the sandbox's own reading of the document (simulators/gkb/rules.ts), which judges K2's files.
 * The sandbox runs on a clock the tests move.
 */
import fs from 'node:fs';
import path from 'node:path';
import { create } from 'xmlbuilder2';
import { mapDossierToContract, writeContractXml } from '../../domain/gkb/contract-record';
import { mulberry32 } from '../../domain/generate';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { computeCheckDigit } from '../../domain/iin';
import { createGkbSandbox, DUPLICATE_CONTRACT_TEXT, type GkbSandbox } from '../../simulators/gkb/sandbox';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';

const CREDS = { clientId: 'k2-sandbox-test', password: 'secret-1', userId: 'user-7' };
const CREDITOR_ID = '42';
const DAY = 86_400_000;
const STEP = 1000;
const PROCESSING = DAY;
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'gkb');

// ---------------------------------------------------------------------------------------------
// Test data

/** A valid IIN with the given birth date digits (YYMMDD) and century/gender digit; serial from `serial`. */
function iin(serial: number, yymmdd = '890101', centuryGender = '4'): string {
  for (let s = serial; ; s++) {
    const first11 = `${yymmdd}${centuryGender}${String(s % 10000).padStart(4, '0')}`;
    const k = computeCheckDigit(first11);
    if (k !== undefined) return first11 + k;
  }
}
function withWrongCheckDigit(good: string): string {
  return good.slice(0, 11) + String((Number(good[11]) + 1) % 10);
}

interface RecordOpts {
  op?: string;
  code: string;
  iin: string;
  /** Inserted into <General> after <ContractStatus> is written; replaces the default of the named element. */
  general?: Partial<Record<'ContractCode' | 'ContractPhase' | 'ContractStatus' | 'StartDate' | 'EndDate' | 'BranchLocation', string>>;
  gender?: string | null;
  birth?: string;
  iinRank?: string;
  blocks?: boolean;
  creditLimit?: string;
  records?: string;
}

/** A record shaped like the document's §3.1 example (element order and names), with valid data by default. */
function recordXml(o: RecordOpts): string {
  const g = {
    ContractCode: `<ContractCode>${o.code}</ContractCode>`,
    ContractPhase: '<ContractPhase id="4"/>',
    ContractStatus: '<ContractStatus id="12"/>',
    StartDate: '<StartDate>2023-03-15</StartDate>',
    EndDate: '<EndDate>2026-03-15</EndDate>',
    BranchLocation: '<BranchLocation katoId="710000000"/>',
    ...o.general,
  };
  const blocks = o.blocks ?? (o.op ?? '2') === '1';
  return `<Contract operation="${o.op ?? '2'}">
  <General>
    ${g.ContractCode}
    <AgreementNumber>DBZ-${o.code}</AgreementNumber>
    <FundingType id="2"/>
    <CreditPurpose2 id="1"/>
    <CreditObject id="03"/>
    ${g.ContractPhase}
    ${g.ContractStatus}
    ${g.StartDate}
    ${g.EndDate}
    ${g.BranchLocation}
    ${blocks ? '<Collaterals><Collateral statusId="1" typeId="5"><Value currency="KZT" typeId="5">15000.00</Value></Collateral></Collaterals>' : ''}
    <Subjects>
      <Subject roleId="1">
        <Entity>
          <Individual>
            <FirstName><Text language="ru-RU">ИМЯ</Text></FirstName>
            <Surname><Text language="ru-RU">ФАМИЛИЯ</Text></Surname>
            ${o.gender === null ? '' : `<Gender>${o.gender ?? 'F'}</Gender>`}
            <Residency id="1"/>
            <DateOfBirth>${o.birth ?? '1989-01-01'}</DateOfBirth>
            <Identifications>
              <Identification rank="${o.iinRank ?? '1'}" typeId="14"><Number>${o.iin}</Number></Identification>
            </Identifications>
            ${blocks ? '<Addresses><Address katoId="750000000" locationId="110" typeId="1"/></Addresses>' : ''}
            ${blocks ? '<Communications><Communication typeId="3">87019303855</Communication></Communications>' : ''}
          </Individual>
        </Entity>
      </Subject>
    </Subjects>
  </General>
  <Type>
    <Credit>
      ${o.creditLimit ?? '<CreditLimit currency="KZT">2000000.00</CreditLimit>'}
      <RecordsList>
        ${o.records ?? '<Record accountingDate="2024-06-30"><OverdueAmount currency="KZT">125000.50</OverdueAmount></Record>'}
      </RecordsList>
    </Credit>
  </Type>
</Contract>`;
}

function fileXml(records: string[]): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<Records>\n${records.join('\n')}\n</Records>\n`;
}

/** K2's own record of a dossier (its mapping code), operation 2 as K2 reports: what K2 really sends. */
function k2Record(i: number, overrides: Parameters<typeof sampleDossier>[0] = {}): string {
  const dossier = sampleDossier({ contractNumber: `K2-SHAPE-${i}`, ...overrides }, mulberry32(1000 + i)); // a borrower of its own
  const r = mapDossierToContract(dossier, DEFAULT_GKB_DICTIONARY, { operation: 2, fileType: 1 });
  if (!r.ok) throw new Error(r.reason);
  return writeContractXml(r.record);
}

// ---------------------------------------------------------------------------------------------
// A plain SOAP client: the document's example requests, filled in

type Doc = ReturnType<typeof create>;
interface Answer {
  status: number;
  text: string;
  doc: Doc;
}

function elementsNamed(
  doc: Doc,
  name: string,
): Array<{ textContent: string | null; childNodes: ArrayLike<{ nodeType: number; nodeName: string; textContent: string | null }> }> {
  const d = doc.node as unknown as { getElementsByTagName(n: string): ArrayLike<never> };
  return Array.from(d.getElementsByTagName(name));
}

/** The child elements of a DTO element as a flat object of texts (nested DTOs: their own objects). */
function dto(el: { childNodes: ArrayLike<{ nodeType: number; nodeName: string; textContent: string | null; childNodes?: unknown }> }): Record<string, any> {
  const out: Record<string, any> = {};
  for (const c of Array.from(el.childNodes)) {
    if (c.nodeType !== 1) continue;
    const kids = Array.from((c as unknown as { childNodes: ArrayLike<{ nodeType: number }> }).childNodes).filter((k) => k.nodeType === 1);
    out[c.nodeName] = kids.length > 0 ? dto(c as never) : c.textContent;
  }
  return out;
}

/**
 * The shape of a SOAP answer: every element path once, in the order first met, each step as prefix:name{namespace}.
 * Values (ids, texts, counts) are left out: they differ between the document's example and any real answer.
 */
function shape(xml: string): string[] {
  const paths: string[] = [];
  const walk = (el: { nodeType: number; prefix: string | null; localName: string; namespaceURI: string | null; childNodes: ArrayLike<never> }, at: string) => {
    const here = `${at}/${el.prefix ? el.prefix + ':' : ''}${el.localName}{${el.namespaceURI ?? ''}}`;
    if (!paths.includes(here)) paths.push(here);
    for (const c of Array.from(el.childNodes) as Array<typeof el>) if (c.nodeType === 1) walk(c, here);
  };
  walk(create(xml).root().node as never, '');
  return paths;
}

describe('GKB sandbox: its own reading of the document, over plain SOAP', () => {
  let clock = Date.parse('2024-07-01T03:00:00Z');
  let sandbox: GkbSandbox;
  let url: string;
  let fileSeq = 0;

  beforeAll(async () => {
    sandbox = createGkbSandbox({
      credentials: CREDS,
      identity: { creditorId: CREDITOR_ID },
      timing: { stepMs: STEP, processingMs: PROCESSING, now: () => clock },
    });
    ({ url } = await sandbox.listen(0));
  });
  afterAll(async () => {
    await sandbox.close();
  });

  async function call(operation: string, inner: string): Promise<Answer> {
    const envelope =
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:data="http://data.chdb.scb.kz">' +
      `<soapenv:Header><userId>${CREDS.userId}</userId></soapenv:Header>` +
      `<soapenv:Body><data:${operation}>${inner}</data:${operation}></soapenv:Body></soapenv:Envelope>`;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'text/xml; charset=utf-8',
        soapaction: '""',
        authorization: `Basic ${Buffer.from(`${CREDS.clientId}:${CREDS.password}`).toString('base64')}`,
      },
      body: envelope,
    });
    const text = await res.text();
    return { status: res.status, text, doc: create(text) };
  }

  async function upload(xml: string, fileType = 1): Promise<string> {
    const a = await call(
      'uploadFile',
      `<file>${Buffer.from(xml, 'utf8').toString('base64')}</file><fileName>K2_sandbox_${++fileSeq}.xml</fileName><fileType>${fileType}</fileType>`,
    );
    expect(a.status).toBe(200);
    return elementsNamed(a.doc, 'batchPackageId')[0].textContent as string;
  }

  async function importInfo(packageId: string): Promise<{ answer: Answer; file: Record<string, any> }> {
    const answer = await call(
      'getImportInfo',
      `<params><paginationSupportDto><firstResult>0</firstResult><maxResults>10</maxResults></paginationSupportDto><packageId>${packageId}</packageId><language>ru</language></params>`,
    );
    expect(answer.status).toBe(200);
    const files = elementsNamed(answer.doc, 'batchFileDtoList');
    expect(files).toHaveLength(1);
    return { answer, file: dto(files[0] as never) };
  }

  /** Uploads, moves the clock past processing, returns the file's import info. */
  async function processed(xml: string, fileType = 1): Promise<Record<string, any>> {
    const packageId = await upload(xml, fileType);
    clock += 3 * STEP + PROCESSING + 1;
    return (await importInfo(packageId)).file;
  }

  async function detail(fileId: string, group: number): Promise<Array<Record<string, any>>> {
    const a = await call(
      'getImportDetailInfo',
      `<params><paginationSupportDto><firstResult>0</firstResult><maxResults>100</maxResults></paginationSupportDto><fileId>${fileId}</fileId><recordGroupStatus>${group}</recordGroupStatus><language>ru</language></params>`,
    );
    expect(a.status).toBe(200);
    const records = elementsNamed(a.doc, 'batchRecordDtoList').map((r) => dto(r as never));
    expect(elementsNamed(a.doc, 'count')[0].textContent).toBe(String(records.length));
    return records;
  }

  const counts = (f: Record<string, any>) => ({
    status: f.batchUploadStatus,
    contracts: Number(f.numberOfContracts),
    created: Number(f.newContracts),
    updated: Number(f.updatedContracts),
    skipped: Number(f.skippedContracts),
    errors: Number(f.numberOfErrors),
  });

  test("a file of K2's shape (K2's own mapping, operation 2) is processed through the status texts", async () => {
    const packageId = await upload(fileXml([k2Record(1), k2Record(2)]));
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      seen.push((await importInfo(packageId)).file.batchUploadStatus);
      clock += STEP;
    }
    clock += PROCESSING;
    const f = (await importInfo(packageId)).file;
    seen.push(f.batchUploadStatus);
    expect(seen).toEqual(['Файл получен', 'Файл подготовлен к обработке', 'Начинается обработка', 'Файл находится в процессе обработки', 'Файл обработан.']);
    expect(counts(f)).toEqual({ status: 'Файл обработан.', contracts: 2, created: 2, updated: 0, skipped: 0, errors: 0 });
    expect(await detail(f.fileId, 0)).toEqual([]);
  });

  test("an insert of K2's shape with every block (operation 1) is processed too", async () => {
    const r = mapDossierToContract(sampleDossier({ contractNumber: 'K2-SHAPE-INSERT' }), DEFAULT_GKB_DICTIONARY, { operation: 1, fileType: 1 });
    if (!r.ok) throw new Error(r.reason);
    const f = await processed(fileXml([writeContractXml(r.record)]));
    expect(counts(f)).toMatchObject({ status: 'Файл обработан.', created: 1, errors: 0 });
  });

  test("the document's own examples pass every rule but their fictional data (IIN check digit; §6.1 dates)", async () => {
    const doc31 = fs.readFileSync(path.join(FIXTURES, 'doc-3.1-contract.xml'), 'utf8');
    const f31 = await processed(doc31);
    expect(counts(f31)).toEqual({ status: 'Ошибка обработки.', contracts: 0, created: 0, updated: 0, skipped: 0, errors: 1 });
    expect((await detail(f31.fileId, 0)).map((r) => r.message)).toEqual(['ИИН/БИН субъекта не прошел проверку: неверный контрольный разряд.']);

    const doc61 = fs.readFileSync(path.join(FIXTURES, 'doc-6.1-oneday-contract.xml'), 'utf8');
    const f61 = await processed(doc61, 3);
    expect((await detail(f61.fileId, 0)).map((r) => r.message)).toEqual([
      'ИИН/БИН субъекта не прошел проверку: неверный контрольный разряд. Учетная дата (accountingDate) 2019-12-27 раньше даты начала действия договора (StartDate) 2021-02-21.',
    ]);

    // With a valid IIN of the same person (born 1989-01-01, female) the §3.1 example loads as it is.
    const fixed = doc31.replace('890101402472', iin(4020));
    expect(counts(await processed(fixed))).toMatchObject({ status: 'Файл обработан.', created: 1, errors: 0 });
  });

  describe('each rule broken gets its own record error, the rest of the file loads', () => {
    const male = iin(100, '900215', '3');
    const cases: Array<[string, RecordOpts, string]> = [
      ['IIN check digit', { code: 'R-CHECK', iin: withWrongCheckDigit(iin(101)) }, 'ИИН/БИН субъекта не прошел проверку: неверный контрольный разряд.'],
      [
        'BIN in an individual',
        { code: 'R-BIN', iin: iin(102, '050440', '0') },
        'ИИН/БИН субъекта не прошел проверку: это БИН (5-й разряд — тип юридического лица), а субъект — физическое лицо.',
      ],
      [
        'IIN century digit',
        { code: 'R-CENTURY', iin: iin(103, '890101', '7') },
        'ИИН/БИН субъекта не прошел проверку: 7-й разряд (век рождения и пол) должен быть от 1 до 6.',
      ],
      ['IIN birth date', { code: 'R-IINDATE', iin: iin(104, '891301', '4') }, 'ИИН/БИН субъекта не прошел проверку: разряды 1–6 не являются датой рождения.'],
      [
        "DateOfBirth not the IIN's",
        { code: 'R-BIRTH', iin: iin(105), birth: '1989-01-02' },
        'Дата рождения субъекта (DateOfBirth) не совпадает с датой рождения в ИИН (разряды 1–7).',
      ],
      [
        "Gender not the IIN's",
        { code: 'R-GENDER', iin: male, birth: '1990-02-15', gender: 'F' },
        'Пол субъекта (Gender) не соответствует ИИН (7-й разряд: нечетный — мужской, четный — женский).',
      ],
      ['IIN rank', { code: 'R-RANK', iin: iin(106), iinRank: '2' }, 'ИИН субъекта (Identification typeId="14") должен иметь категорию документа rank="1".'],
      [
        'date format',
        { code: 'R-DATEFMT', iin: iin(107), general: { StartDate: '<StartDate>2023.03.15</StartDate>' } },
        'Неверная дата в поле «Дата начала действия договора» (StartDate): «2023.03.15», ожидается ГГГГ-ММ-ДД.',
      ],
      [
        'accounting date before the start',
        { code: 'R-ACCDATE', iin: iin(108), general: { StartDate: '<StartDate>2024-07-01</StartDate>', EndDate: '' } },
        'Учетная дата (accountingDate) 2024-06-30 раньше даты начала действия договора (StartDate) 2024-07-01.',
      ],
      [
        'end before the start',
        { code: 'R-ENDDATE', iin: iin(109), general: { EndDate: '<EndDate>2022-01-01</EndDate>' } },
        'Дата окончания действия договора (EndDate) 2022-01-01 раньше даты начала (StartDate) 2023-03-15.',
      ],
      [
        'unknown ContractStatus',
        { code: 'R-STATUS', iin: iin(110), general: { ContractStatus: '<ContractStatus id="99"/>' } },
        'Значение 99 «Статус контракта» (ContractStatus@id) отсутствует в справочнике.',
      ],
      [
        'missing ContractPhase',
        { code: 'R-PHASE', iin: iin(111), general: { ContractPhase: '' } },
        'Не заполнено обязательное поле «Фаза контракта» (ContractPhase).',
      ],
      [
        'missing ContractCode',
        { code: 'R-CODE', iin: iin(112), general: { ContractCode: '<ContractCode></ContractCode>' } },
        'Не заполнено обязательное поле «Код контракта» (ContractCode).',
      ],
      [
        'amount with three decimals',
        { code: 'R-AMOUNT', iin: iin(113), creditLimit: '<CreditLimit currency="KZT">2000000.005</CreditLimit>' },
        'Неверная сумма в поле «Лимит кредита» (CreditLimit): неотрицательное число, не более 2 знаков после точки.',
      ],
      [
        'unknown currency',
        { code: 'R-CURRENCY', iin: iin(114), creditLimit: '<CreditLimit currency="XYZ">2000000.00</CreditLimit>' },
        'Значение XYZ «Валюта суммы CreditLimit» (CreditLimit@currency) отсутствует в справочнике.',
      ],
      [
        'KATO code',
        { code: 'R-KATO', iin: iin(115), general: { BranchLocation: '<BranchLocation katoId="71000"/>' } },
        'Код КАТО (BranchLocation@katoId) должен состоять из 9 цифр.',
      ],
      ['operation', { op: '3', code: 'R-OP', iin: iin(116) }, 'Неверный вид операции (operation): допустимы 1 «Вставить» и 2 «Обновить».'],
      ['insert without Gender', { op: '1', code: 'R-INS-GENDER', iin: iin(117), gender: null }, 'Не заполнено обязательное поле «Пол» (Gender).'],
      [
        'insert without collaterals',
        { op: '1', code: 'R-INS-BLOCKS', iin: iin(118), blocks: false },
        'Не заполнен обязательный блок: Collaterals (информация по обеспечениям). Не заполнен обязательный блок: Addresses (информация по адресам субъекта). Не заполнен обязательный блок: Communications (информация по контактным данным субъекта).',
      ],
      [
        'insert without CreditLimit',
        { op: '1', code: 'R-INS-LIMIT', iin: iin(119), creditLimit: '' },
        'Не заполнено обязательное поле «Лимит кредита» (CreditLimit).',
      ],
      [
        'accounting date twice',
        { code: 'R-ACCTWICE', iin: iin(120), records: '<Record accountingDate="2024-06-30"/><Record accountingDate="2024-06-30"/>' },
        'Учетная дата (accountingDate) 2024-06-30 передана в записи договора более одного раза.',
      ],
    ];
    let errorsByCode: Record<string, Record<string, any>>;
    let file: Record<string, any>;

    beforeAll(async () => {
      file = await processed(fileXml([recordXml({ code: 'R-VALID', iin: iin(99) }), ...cases.map(([, o]) => recordXml(o))]));
      errorsByCode = Object.fromEntries((await detail(file.fileId, 0)).map((r) => [r.contractCode ?? '(none)', r]));
    });

    test('the file is processed: one valid record loaded, every other one an error', async () => {
      expect(counts(file)).toEqual({ status: 'Файл обработан.', contracts: 1, created: 1, updated: 0, skipped: 0, errors: cases.length });
      expect((await detail(file.fileId, 1)).map((r) => r.contractCode)).toEqual(['R-VALID', 'R-VALID']);
    });

    test.each(cases)('%s', (_name, o, message) => {
      const r = errorsByCode[o.general?.ContractCode === '<ContractCode></ContractCode>' ? '(none)' : o.code];
      expect(r).toBeDefined();
      expect(r.result).toBe('Запись не загружена.');
      expect(r.message).toBe(message);
    });

    test('an error text quotes no personal data (IIN, birth date)', () => {
      for (const r of Object.values(errorsByCode)) {
        expect(r.message).not.toMatch(/\d{12}/);
        expect(r.message).not.toMatch(/19\d\d-\d\d-\d\d/);
      }
    });

    test('the same records under the one-day file type (3) need no Gender and no blocks', async () => {
      const f = await processed(fileXml([recordXml({ op: '1', code: 'R3-INS', iin: iin(130), gender: null, blocks: false })]), 3);
      expect(counts(f)).toMatchObject({ status: 'Файл обработан.', created: 1, errors: 0 });
    });
  });

  describe("a file that fails as a whole ends «Ошибка обработки.» with its records' errors", () => {
    test('every record breaks a rule: nothing is loaded, each record has its own error', async () => {
      const f = await processed(
        fileXml([
          recordXml({ code: 'F-ALL-1', iin: withWrongCheckDigit(iin(140)) }),
          recordXml({ code: 'F-ALL-2', iin: iin(141), general: { ContractStatus: '<ContractStatus id="99"/>' } }),
        ]),
      );
      expect(counts(f)).toEqual({ status: 'Ошибка обработки.', contracts: 0, created: 0, updated: 0, skipped: 0, errors: 2 });
      const errors = await detail(f.fileId, 0);
      expect(errors.map((r) => [r.contractCode, r.message])).toEqual([
        ['F-ALL-1', 'ИИН/БИН субъекта не прошел проверку: неверный контрольный разряд.'],
        ['F-ALL-2', 'Значение 99 «Статус контракта» (ContractStatus@id) отсутствует в справочнике.'],
      ]);
      expect(await detail(f.fileId, 4)).toEqual([]);
    });

    test('a file rule broken (one contract twice): nothing loads; only the records that break it have a detail', async () => {
      const twice = recordXml({ code: 'F-TWICE', iin: iin(142) });
      const f = await processed(fileXml([twice, recordXml({ code: 'F-FINE', iin: iin(143) }), twice.replace('2024-06-30', '2024-07-01')]));
      expect(counts(f)).toEqual({ status: 'Ошибка обработки.', contracts: 0, created: 0, updated: 0, skipped: 0, errors: 2 });
      expect((await detail(f.fileId, 0)).map((r) => [r.contractCode, r.message])).toEqual([
        ['F-TWICE', DUPLICATE_CONTRACT_TEXT],
        ['F-TWICE', DUPLICATE_CONTRACT_TEXT],
      ]);
      for (const g of [1, 2, 4]) expect(await detail(f.fileId, g)).toEqual([]);
      // Nothing was loaded: the fine record, sent again, creates its contract now.
      const again = await processed(fileXml([recordXml({ code: 'F-FINE', iin: iin(143) })]));
      expect((await detail(again.fileId, 1))[0]).toMatchObject({ contractCode: 'F-FINE', result: 'Создан новый контракт.' });
    });
  });

  test('an identical re-send is skipped: counted in skippedContracts, in no result group; a changed one updates', async () => {
    const record = recordXml({ code: 'S-1', iin: iin(150) });
    const first = await processed(fileXml([record]));
    expect(counts(first)).toMatchObject({ created: 1, skipped: 0 });

    // The same record, laid out differently: the same content.
    const again = await processed(fileXml([record.replace(/\n\s*/g, '')]));
    expect(counts(again)).toEqual({ status: 'Файл обработан.', contracts: 1, created: 0, updated: 0, skipped: 1, errors: 0 });
    for (const g of [0, 1, 2, 3, 4]) expect(await detail(again.fileId, g)).toEqual([]);

    const changed = await processed(
      fileXml([
        recordXml({
          code: 'S-1',
          iin: iin(150),
          records: '<Record accountingDate="2024-07-31"><OverdueAmount currency="KZT">130000.00</OverdueAmount></Record>',
        }),
      ]),
    );
    expect(counts(changed)).toMatchObject({ status: 'Файл обработан.', updated: 1, skipped: 0 });
    expect((await detail(changed.fileId, 2)).map((r) => r.result)).toEqual(['Контракт обновлен.', 'Субъект обновлен.']);
  });

  test('an update (operation 2) of a contract the sandbox does not know says «Создан новый контракт.»; the next one «Контракт обновлен.»', async () => {
    const f = await processed(fileXml([k2Record(3)]));
    const created = await detail(f.fileId, 1);
    expect(created.map((r) => r.result)).toEqual(['Создан новый контракт.', 'Создан новый субъект.']);
    expect(created[0]).toMatchObject({ contractCode: 'K2-SHAPE-3', contractPhase: '4', creditDiscriminator: '1' });

    const next = await processed(fileXml([k2Record(3, { reportDate: '2024-07-31', overdueDays: 76 })]));
    const updated = await detail(next.fileId, 2);
    expect(updated.map((r) => r.result)).toEqual(['Контракт обновлен.', 'Субъект обновлен.']);
    expect(updated[0].contractId).toBe(created[0].contractId);

    // An insert (operation 1) of the contract now known is an error.
    const r = mapDossierToContract(sampleDossier({ contractNumber: 'K2-SHAPE-3' }, mulberry32(1003)), DEFAULT_GKB_DICTIONARY, { operation: 1, fileType: 1 });
    if (!r.ok) throw new Error(r.reason);
    const insert = await processed(fileXml([writeContractXml(r.record)]));
    expect((await detail(insert.fileId, 0))[0].message).toBe('Контракт с таким кодом и датой начала действия уже существует у данного поставщика информации.');
  });

  test("times carry +06:00 and the answers have the document's header", async () => {
    const uploadedAt = clock;
    const packageId = await upload(fileXml([recordXml({ code: 'T-1', iin: iin(160) })]));
    const { answer, file } = await importInfo(packageId);
    // 2024-07-01T03:00Z plus whatever the tests moved: the same instant written in +06:00.
    const expected = new Date(uploadedAt + 6 * 3600_000).toISOString().replace('Z', '+06:00');
    expect(file.uploadedTime).toBe(expected);
    expect(file.batchPackage.addTime).toBe(expected);
    expect(Date.parse(file.uploadedTime)).toBe(uploadedAt);

    expect(answer.text).toContain(
      `<SOAP-ENV:Header xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><userId>${CREDS.userId}</userId><creditorId>${CREDITOR_ID}</creditorId><timestamp>${clock}</timestamp></SOAP-ENV:Header>`,
    );
    expect(answer.text).toMatch(/<soap:Envelope xmlns:soap="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/"\s*><SOAP-ENV:Header/);
    expect(answer.text).toContain('<soap:Body><ns2:getImportInfoResponse xmlns:ns2="http://data.chdb.scb.kz"><filesImportInfo>');
  });

  test("every answer has the shape of the document's example answer (§4.1.1–§4.1.3): names, prefixes, namespaces, order", async () => {
    const packageId = await upload(fileXml([recordXml({ code: 'SHAPE-1', iin: iin(165) })]));
    const uploadAnswer = await call(
      'uploadFile',
      `<file>${Buffer.from(fileXml([recordXml({ code: 'SHAPE-2', iin: iin(166) })])).toString('base64')}</file><fileName>K2_sandbox_${++fileSeq}.xml</fileName><fileType>1</fileType>`,
    );
    clock += 3 * STEP + PROCESSING + 1;
    const { answer: infoAnswer, file } = await importInfo(packageId);
    const detailAnswer = await call(
      'getImportDetailInfo',
      `<params><paginationSupportDto><firstResult>0</firstResult><maxResults>10</maxResults></paginationSupportDto><fileId>${file.fileId}</fileId><recordGroupStatus>1</recordGroupStatus><language>ru</language></params>`,
    );
    const example = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
    expect(shape(uploadAnswer.text)).toEqual(shape(example('doc-4.1.1-uploadFile-response.xml')));
    expect(shape(infoAnswer.text)).toEqual(shape(example('doc-4.1.2-getImportInfo-response.xml')));
    expect(shape(detailAnswer.text)).toEqual(shape(example('doc-4.1.3-getImportDetailInfo-response.xml')));
  });

  describe("the file's structure (stage 1): refused at upload, nothing registered", () => {
    async function refused(xml: string): Promise<string> {
      const before = sandbox.stats().packages;
      const a = await call(
        'uploadFile',
        `<file>${Buffer.from(xml).toString('base64')}</file><fileName>K2_sandbox_bad_${++fileSeq}.xml</fileName><fileType>1</fileType>`,
      );
      expect(a.status).toBe(500);
      expect(a.text).toContain('<code>XSD_VALIDATION_FAILED</code>');
      expect(sandbox.stats().packages).toBe(before);
      return elementsNamed(a.doc, 'message')
        .map((m) => m.textContent)
        .join('\n');
    }

    test('an element the document does not have', async () => {
      const xml = fileXml([recordXml({ code: 'X-1', iin: iin(170) }).replace('<OverdueAmount', '<OverdueSum currency="KZT">1.00</OverdueSum><OverdueAmount')]);
      expect(await refused(xml)).toContain('Records/Contract[1]/Type/Credit/RecordsList/Record[1]: элемент <OverdueSum> не допускается в <Record>.');
    });

    test("elements out of the document's order", async () => {
      const xml = fileXml([recordXml({ code: 'X-2', iin: iin(171) }).replace(/(<ContractPhase id="4"\/>)([\s\S]*?)(<StartDate>[^<]*<\/StartDate>)/, '$3$2$1')]);
      expect(await refused(xml)).toMatch(/Records\/Contract\[1\]\/General\/\w+: элемент стоит не на своем месте/);
    });

    test('a contract without <Type>', async () => {
      const xml = fileXml([recordXml({ code: 'X-3', iin: iin(172) }).replace(/<Type>[\s\S]*<\/Type>/, '')]);
      expect(await refused(xml)).toContain('Records/Contract[1]: нет обязательного элемента <Type>.');
    });
  });
});

/**
 * K2's GKB SOAP client on the wire, judged by the GKB document (gkb-batch-upload.txt), not by the sandbox:
 * a tiny local HTTP server records what the client REALLY sends and answers with the document's own
 * example responses (test/fixtures/gkb/doc-4.1*.xml, verbatim copies) or with made-up pages.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { create } from 'xmlbuilder2';
import { createGkbClient, pageAfter, type GkbClient } from '../../integrations/gkb/soap-client';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'gkb');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const GKB_NS = 'http://data.chdb.scb.kz';
/** The document's placeholder userId, so the header compares equal to its examples. */
const DOC_USER_ID = 'xxxxxxxx-xxxx-xxxx-xxxxxxxxxxxxxxxxx';
const CREDS = { clientId: 'k2-client', password: 'k2-secret', userId: DOC_USER_ID };

interface Captured {
  method?: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers every POST with `answer(request)`; keeps every request. */
async function fakeGkb(answer: (req: Captured) => string): Promise<{ url: string; requests: Captured[]; close(): Promise<void> }> {
  const requests: Captured[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const captured = { method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(captured);
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
      res.end(answer(captured));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/BatchProcessingService`,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

const clientFor = (url: string): GkbClient => createGkbClient({ url, ...CREDS, timeoutMs: 10_000 });

// ---------------------------------------------------------------------------------------------
// Structural view of an XML document: namespace URI + local name, children in order, text of leaves.
// Prefixes, namespace declarations, comments and whitespace between elements do not matter.

interface El {
  ns: string | null;
  name: string;
  children?: El[];
  text?: string;
}

interface DomNode {
  nodeType: number;
  localName: string;
  namespaceURI: string | null;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
}

function structure(xml: string): El {
  const toEl = (n: DomNode): El => {
    const kids = Array.from(n.childNodes).filter((c) => c.nodeType === 1);
    return kids.length
      ? { ns: n.namespaceURI, name: n.localName, children: kids.map(toEl) }
      : { ns: n.namespaceURI, name: n.localName, text: (n.textContent ?? '').trim() };
  };
  return toEl(create(xml).root().node as unknown as DomNode);
}

/** The element at a path of local names, e.g. ['Body', 'uploadFile']. */
function at(el: El, ...names: string[]): El {
  let cur = el;
  for (const name of names) {
    const next = cur.children?.find((c) => c.name === name);
    if (!next) throw new Error(`no <${name}> under <${cur.name}>`);
    cur = next;
  }
  return cur;
}

/** One fake answer body per operation, in a minimal SOAP 1.1 envelope. */
const envelope = (body: string) => `<soap:Envelope xmlns:soap="${SOAP_ENV}"><soap:Body>${body}</soap:Body></soap:Envelope>`;
const operationOf = (req: Captured) => /<(?:\w+:)?(uploadFile|getImportInfo|getImportDetailInfo)[\s>]/.exec(req.body)?.[1];
const numberIn = (req: Captured, tag: string) => Number(new RegExp(`<${tag}>(\\d+)</${tag}>`).exec(req.body)?.[1]);

describe("the envelope K2 sends is the document's example request (test/fixtures/gkb/doc-4.1*-request.xml)", () => {
  const DOC_ANSWERS: Record<string, string> = {
    uploadFile: fixture('doc-4.1.1-uploadFile-response.xml'),
    getImportInfo: fixture('doc-4.1.2-getImportInfo-response.xml'),
    getImportDetailInfo: fixture('doc-4.1.3-getImportDetailInfo-response.xml'),
  };
  let gkb: Awaited<ReturnType<typeof fakeGkb>>;
  beforeAll(async () => {
    gkb = await fakeGkb((req) => DOC_ANSWERS[operationOf(req) ?? ''] ?? envelope(''));
  });
  afterAll(() => gkb.close());

  /** The one request the call made. */
  async function sent(call: (c: GkbClient) => Promise<unknown>): Promise<Captured> {
    const before = gkb.requests.length;
    await call(clientFor(gkb.url));
    expect(gkb.requests).toHaveLength(before + 1);
    return gkb.requests[before];
  }

  function expectHttpOfTheDocument(req: Captured) {
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toMatch(/^text\/xml\b/); // SOAP 1.1
    expect(req.headers.soapaction).toBe('""'); // soapAction="" of the binding
    // §4.1: HTTP Basic with «clientId:password» in Base64.
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`${CREDS.clientId}:${CREDS.password}`).toString('base64')}`);
  }

  test('every request has the general shape of §4.1: SOAP 1.1 envelope, <userId> unqualified in the header', async () => {
    const req = await sent((c) => c.getImportInfo({ packageId: '232943', firstResult: 0, maxResults: 10 }));
    const doc = structure(fixture('doc-4.1-soap-message.xml'));
    const ours = structure(req.body);
    expect({ ns: ours.ns, name: ours.name }).toEqual({ ns: SOAP_ENV, name: 'Envelope' });
    expect(ours.children?.map((c) => [c.ns, c.name])).toEqual(doc.children?.map((c) => [c.ns, c.name]));
    expect(at(ours, 'Header')).toEqual(at(doc, 'Header'));
    expect(at(ours, 'Header')).toEqual({ ns: SOAP_ENV, name: 'Header', children: [{ ns: null, name: 'userId', text: DOC_USER_ID }] });
    // The wrapper is in GKB's namespace, like <data:методСервиса>.
    expect(at(ours, 'Body').children?.map((c) => c.ns)).toEqual([GKB_NS]);
  });

  test('uploadFile: wrapper qualified, file / fileName / fileType unqualified, as in the example', async () => {
    const file = Buffer.from('<Records>…</Records>', 'utf8');
    const req = await sent((c) => c.uploadFile({ file, fileName: 'new_batch.xml', fileType: 1 }));
    expectHttpOfTheDocument(req);
    const doc = structure(fixture('doc-4.1.1-uploadFile-request.xml'));
    // The example shows two alternative <fileType> elements («ИЛИ»: 1 or 3); a request carries one.
    const wrapper = at(doc, 'Body', 'uploadFile');
    wrapper.children = wrapper.children?.filter((c) => !(c.name === 'fileType' && c.text === '3'));
    const ours = structure(req.body);
    // The example's file content is elided («PFJlY29yZHM...Vjb3Jkcz4=»); ours must be the file in Base64.
    const ourFile = at(ours, 'Body', 'uploadFile', 'file');
    expect(Buffer.from(ourFile.text ?? '', 'base64')).toEqual(file);
    ourFile.text = at(doc, 'Body', 'uploadFile', 'file').text;
    expect(ours).toEqual(doc);
  });

  test('getImportInfo: params with paginationSupportDto, packageId, language, as in the example', async () => {
    const req = await sent((c) => c.getImportInfo({ packageId: '232943', firstResult: 0, maxResults: 10, language: 'ru' }));
    expectHttpOfTheDocument(req);
    expect(structure(req.body)).toEqual(structure(fixture('doc-4.1.2-getImportInfo-request.xml')));
  });

  test('getImportDetailInfo: params with paginationSupportDto, fileId, recordGroupStatus, language, as in the example', async () => {
    const req = await sent((c) => c.getImportDetailInfo({ fileId: '240700', recordGroupStatus: 0, firstResult: 0, maxResults: 10, language: 'ru' }));
    expectHttpOfTheDocument(req);
    expect(structure(req.body)).toEqual(structure(fixture('doc-4.1.3-getImportDetailInfo-request.xml')));
  });
});

describe("the document's example responses are read as the document means them", () => {
  let gkb: Awaited<ReturnType<typeof fakeGkb>>;
  let answer = '';
  beforeAll(async () => {
    gkb = await fakeGkb(() => answer);
  });
  afterAll(() => gkb.close());

  test('uploadFile → batchPackageId', async () => {
    answer = fixture('doc-4.1.1-uploadFile-response.xml');
    expect(await clientFor(gkb.url).uploadFile({ file: Buffer.from('x'), fileName: 'new_batch.xml', fileType: 1 })).toEqual({ batchPackageId: '241010' });
  });

  test('getImportInfo: each file names its package (packageName is the upload, fileName the XML inside)', async () => {
    answer = fixture('doc-4.1.2-getImportInfo-response.xml');
    const info = await clientFor(gkb.url).getImportInfo({ packageId: '241029', firstResult: 0, maxResults: 10 });
    expect(info).toMatchObject({ count: 2, hasMore: false, nextFirstResult: 2 });
    expect(info.files.map((f) => [f.fileId, f.fileName, f.packageId, f.packageName, f.status, f.final])).toEqual([
      ['240699', 'new_batch1.xml', '241029', 'Пакет.zip', 'processed', true],
      ['240700', 'new_batch2.xml', '241029', 'Пакет.zip', 'failed', true],
    ]);
    expect(info.files[0]).toMatchObject({ numberOfContracts: 1, skippedContracts: 1, numberOfErrors: 0 });
    expect(info.files[1]).toMatchObject({ numberOfContracts: 0, numberOfErrors: 3 });
  });

  test('getImportDetailInfo: result texts, the group asked for, and which records created a contract', async () => {
    answer = fixture('doc-4.1.3-getImportDetailInfo-response.xml');
    const detail = await clientFor(gkb.url).getImportDetailInfo({ fileId: '240700', recordGroupStatus: 1, firstResult: 0, maxResults: 10 });
    expect(detail).toMatchObject({ count: 3, hasMore: false, nextFirstResult: 3 });
    expect(detail.records.map((r) => [r.recordId, r.contractCode, r.contractId, r.result, r.group, r.newContract])).toEqual([
      ['209060544', 'Контракт01', '17775000', 'Создан новый контракт.', 1, true],
      ['209060551', 'Контракт01', '17775000', 'Субъект обновлен.', 1, false],
      ['209060552', 'Контракт01', '17775000', 'Субъект обновлен.', 1, false],
    ]);
    expect(detail.records[1]).toMatchObject({ subjectId: '859962', subjectName: 'ФИО субъекта 01' });
  });
});

describe('getImportInfo: an answer that shows nothing is "not known yet", not a protocol error', () => {
  let gkb: Awaited<ReturnType<typeof fakeGkb>>;
  let answer = '';
  beforeAll(async () => {
    gkb = await fakeGkb(() => answer);
  });
  afterAll(() => gkb.close());

  test.each([
    ['without filesImportInfo', `<ns2:getImportInfoResponse xmlns:ns2="${GKB_NS}"/>`],
    ['with an empty filesImportInfo', `<ns2:getImportInfoResponse xmlns:ns2="${GKB_NS}"><filesImportInfo/></ns2:getImportInfoResponse>`],
    [
      'with count 0 and no list',
      `<ns2:getImportInfoResponse xmlns:ns2="${GKB_NS}"><filesImportInfo><count>0</count></filesImportInfo></ns2:getImportInfoResponse>`,
    ],
  ])('%s: zero files', async (_label, body) => {
    answer = envelope(body);
    expect(await clientFor(gkb.url).getImportInfo({ packageId: '241029' })).toEqual({ files: [], count: 0, hasMore: false, nextFirstResult: 0 });
  });

  test('uploadFile with an empty answer is a protocol error naming batchPackageId (an upload must say its package)', async () => {
    answer = envelope(`<ns2:uploadFileResponse xmlns:ns2="${GKB_NS}"/>`);
    await expect(clientFor(gkb.url).uploadFile({ file: Buffer.from('x'), fileName: 'new_batch.xml', fileType: 1 })).rejects.toMatchObject({
      name: 'GkbProtocolError',
      field: 'batchPackageId',
    });
  });

  test('a record with several messages keeps them all', async () => {
    answer = envelope(
      `<ns2:getImportDetailInfoResponse xmlns:ns2="${GKB_NS}"><recordsImportInfo><batchRecordDtoList><recordId>1</recordId><contractCode>C-1</contractCode>` +
        '<result>Запись не загружена.</result><message>Первая ошибка.</message><message>Вторая ошибка.</message></batchRecordDtoList><count>1</count></recordsImportInfo></ns2:getImportDetailInfoResponse>',
    );
    const detail = await clientFor(gkb.url).getImportDetailInfo({ fileId: '1', recordGroupStatus: 0 });
    expect(detail.records).toEqual([
      expect.objectContaining({
        recordId: '1',
        contractCode: 'C-1',
        result: 'Запись не загружена.',
        message: 'Первая ошибка. Вторая ошибка.',
        group: 0,
        newContract: false,
      }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Paging through everything GKB holds

interface FakeFile {
  fileId: number;
  fileName: string;
  packageId: number;
  packageName: string;
}

function fileDto(f: FakeFile): string {
  return (
    `<batchFileDtoList><fileId>${f.fileId}</fileId><fileName>${f.fileName}</fileName><batchUploadStatus>Файл обработан.</batchUploadStatus>` +
    `<batchPackage><packageId>${f.packageId}</packageId><packageName>${f.packageName}</packageName></batchPackage></batchFileDtoList>`
  );
}

/** A provider's listing (newest first), paged as asked; `cap` imitates a server that returns fewer than maxResults. */
function listing(files: FakeFile[], options: { cap?: number; withCount?: boolean; ignoreFirstResult?: boolean } = {}) {
  return (req: Captured): string => {
    const first = options.ignoreFirstResult ? 0 : numberIn(req, 'firstResult');
    const max = Math.min(numberIn(req, 'maxResults'), options.cap ?? Infinity);
    const page = files
      .slice(first, first + max)
      .map(fileDto)
      .join('');
    const count = options.withCount === false ? '' : `<count>${files.length}</count>`;
    return envelope(`<ns2:getImportInfoResponse xmlns:ns2="${GKB_NS}"><filesImportInfo>${page}${count}</filesImportInfo></ns2:getImportInfoResponse>`);
  };
}

/** `n` files of other batches, newest first, then whatever is appended (older). */
function otherFiles(n: number): FakeFile[] {
  return Array.from({ length: n }, (_, i) => ({
    fileId: 900_000 - i,
    fileName: `K2_other_${n - i}_1.xml`,
    packageId: 500_000 - i,
    packageName: `K2_other_${n - i}_1.zip`,
  }));
}

describe('findUploadedFile pages through every file GKB lists, and matches by package name', () => {
  const NAME = 'K2_batch-0001_1.zip';
  const old: FakeFile = { fileId: 100, fileName: 'K2_batch-0001_1.xml', packageId: 77, packageName: NAME };

  async function search(files: FakeFile[], options: Parameters<typeof listing>[1] = {}) {
    const gkb = await fakeGkb(listing(files, options));
    try {
      const result = await clientFor(gkb.url).findUploadedFile(NAME);
      return { result, firstResults: gkb.requests.map((r) => numberIn(r, 'firstResult')) };
    } finally {
      await gkb.close();
    }
  }

  test('a package behind 2,345 newer files (24 pages of 100) is found', async () => {
    const { result, firstResults } = await search([...otherFiles(2345), old]);
    expect(result).toEqual({
      status: 'found',
      batchPackageId: '77',
      files: [expect.objectContaining({ fileId: '100', packageName: NAME })],
      otherPackageIds: [],
    });
    expect(firstResults).toEqual(Array.from({ length: 24 }, (_, i) => i * 100));
  });

  test('nothing is skipped when GKB returns fewer than asked (pages continue from what arrived)', async () => {
    const { result, firstResults } = await search([...otherFiles(1234), old], { cap: 30 });
    expect(result).toMatchObject({ status: 'found', batchPackageId: '77' });
    expect(firstResults).toHaveLength(Math.ceil(1235 / 30));
    expect(firstResults[1]).toBe(30);
  });

  test('without a count, pages continue while they come back full', async () => {
    const { result, firstResults } = await search([...otherFiles(1500), old], { withCount: false });
    expect(result).toMatchObject({ status: 'found', batchPackageId: '77' });
    expect(firstResults).toEqual(Array.from({ length: 16 }, (_, i) => i * 100));
  });

  test('duplicates anywhere in the listing: the oldest package is adopted, the others named', async () => {
    const newer: FakeFile = { fileId: 899_999, fileName: 'K2_batch-0001_1.xml', packageId: 600_001, packageName: NAME };
    const { result } = await search([newer, ...otherFiles(1100), old]);
    expect(result).toMatchObject({ status: 'found', batchPackageId: '77', otherPackageIds: ['600001'] });
  });

  test('a file whose XML inside the package has the name, in a package of another name, is not a match', async () => {
    const lookalike: FakeFile = { fileId: 5, fileName: NAME, packageId: 66, packageName: 'K2_batch-0002_1.zip' };
    expect((await search([...otherFiles(3), lookalike])).result).toEqual({ status: 'not-found' });
  });

  test('a service that ignores firstResult is not listed forever: search unsupported', async () => {
    const { result, firstResults } = await search([...otherFiles(2000), old], { ignoreFirstResult: true });
    expect(result).toMatchObject({ status: 'unsupported', reason: expect.stringMatching(/ignores paginationSupportDto/) });
    expect(firstResults).toEqual([0, 100]);
  });
});

describe('getImportDetailInfo: a caller can page through every record of a group', () => {
  const records = Array.from({ length: 250 }, (_, i) => ({
    recordId: 1000 + i,
    contractCode: `C-${i}`,
    result: i % 2 ? 'Субъект обновлен.' : 'Создан новый контракт.',
  }));
  const detailAnswer = (options: { withCount: boolean; cap?: number }) => (req: Captured) => {
    const first = numberIn(req, 'firstResult');
    const max = Math.min(numberIn(req, 'maxResults'), options.cap ?? Infinity);
    const page = records
      .slice(first, first + max)
      .map(
        (r) =>
          `<batchRecordDtoList><recordId>${r.recordId}</recordId><contractCode>${r.contractCode}</contractCode><result>${r.result}</result></batchRecordDtoList>`,
      )
      .join('');
    const count = options.withCount ? `<count>${records.length}</count>` : '';
    return envelope(
      `<ns2:getImportDetailInfoResponse xmlns:ns2="${GKB_NS}"><recordsImportInfo>${page}${count}</recordsImportInfo></ns2:getImportDetailInfoResponse>`,
    );
  };

  test.each([
    ['with count', { withCount: true }],
    ['without count', { withCount: false }],
    ['with count, GKB capping pages at 40', { withCount: true, cap: 40 }],
  ])('%s: hasMore / nextFirstResult reach every record once', async (_label, options) => {
    const gkb = await fakeGkb(detailAnswer(options));
    try {
      const client = clientFor(gkb.url);
      const seen: string[] = [];
      for (let firstResult = 0, more = true; more;) {
        const page = await client.getImportDetailInfo({ fileId: '1', recordGroupStatus: 1, firstResult, maxResults: 100 });
        seen.push(...page.records.map((r) => r.recordId));
        expect(page.records.every((r) => r.group === 1)).toBe(true);
        more = page.hasMore;
        firstResult = page.nextFirstResult;
        expect(gkb.requests.length).toBeLessThan(20);
      }
      expect(seen).toEqual(records.map((r) => String(r.recordId)));
    } finally {
      await gkb.close();
    }
  });
});

describe('pageAfter (pure)', () => {
  test.each([
    // firstResult, maxResults, received, count → hasMore, nextFirstResult, count
    [0, 100, 100, 250, true, 100, 250],
    [200, 100, 50, 250, false, 250, 250],
    [0, 100, 40, 250, true, 40, 250],
    [0, 100, 0, 250, false, 0, 250],
    [0, 100, 100, undefined, true, 100, 100],
    [100, 100, 99, undefined, false, 199, 199],
    [0, 10, 0, undefined, false, 0, 0],
  ])('first %i, max %i, got %i, count %s', (first, max, got, count, hasMore, next, total) => {
    expect(pageAfter(first, max, got, count)).toEqual({ hasMore, nextFirstResult: next, count: total });
  });
});

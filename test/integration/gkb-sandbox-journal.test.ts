/**
 * The GKB sandbox's own record of what it received (GET /_sim/journal): uploads and their outcomes,
 * each package's records and how they ended, calls by operation and outcome, and the sandbox's own
 * detection of a contract in two packages in flight at once; and the recordRejectNextFiles knob.
 * Plain SOAP over real HTTP (not K2's client), K2's own records, the sandbox on a clock the test moves.
 */
import { mapDossierToContract, writeContractXml } from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { mulberry32 } from '../../domain/generate';
import { Faults } from '../../simulators/faults';
import { createGkbSandbox, type GkbJournal, type GkbSandbox } from '../../simulators/gkb/sandbox';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';

const CREDS = { clientId: 'k2-journal-test', password: 'secret-2', userId: 'user-9' };
const STEP = 1000;
const PROCESSING = 60_000;
const DONE = 3 * STEP + PROCESSING + 1;

/** K2's record of a contract (its own mapping, operation 2); `debt` varies the record's content. */
function k2Record(contract: string, seed: number, debt = '125000.50'): { xml: string; iinbin: string; fullname: string } {
  const dossier = sampleDossier({ contractNumber: contract, debt }, mulberry32(seed));
  const r = mapDossierToContract(dossier, DEFAULT_GKB_DICTIONARY, { operation: 2, fileType: 1 });
  if (!r.ok) throw new Error(r.reason);
  return { xml: writeContractXml(r.record), iinbin: dossier.iinbin, fullname: dossier.fullname };
}
const fileXml = (records: string[]) => `<?xml version="1.0" encoding="utf-8"?>\n<Records>\n${records.join('\n')}\n</Records>\n`;

describe('GKB sandbox journal', () => {
  let clock = Date.parse('2026-03-02T06:00:00Z');
  const faults = new Faults('gkb');
  let sandbox: GkbSandbox;
  let base: string;
  let url: string;
  let fileSeq = 0;

  beforeAll(async () => {
    sandbox = createGkbSandbox({ faults, credentials: CREDS, timing: { stepMs: STEP, processingMs: PROCESSING, now: () => clock } });
    const listening = await sandbox.listen(0);
    url = listening.url;
    base = `http://127.0.0.1:${listening.port}`;
  });
  afterAll(async () => {
    await sandbox.close();
  });
  afterEach(() => faults.reset());

  async function upload(xml: string): Promise<{ status: number; packageId?: string; fileName: string }> {
    const fileName = `K2_journal_${++fileSeq}.xml`;
    const envelope =
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:data="http://data.chdb.scb.kz">' +
      `<soapenv:Header><userId>${CREDS.userId}</userId></soapenv:Header><soapenv:Body><data:uploadFile>` +
      `<file>${Buffer.from(xml, 'utf8').toString('base64')}</file><fileName>${fileName}</fileName><fileType>1</fileType>` +
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
    const text = await res.text();
    return { status: res.status, packageId: /<batchPackageId>(\d+)<\/batchPackageId>/.exec(text)?.[1], fileName };
  }

  async function journal(): Promise<{ text: string; json: GkbJournal }> {
    const res = await fetch(`${base}/_sim/journal`);
    expect(res.status).toBe(200);
    const text = await res.text();
    return { text, json: JSON.parse(text) };
  }
  const packageOf = (j: GkbJournal, packageId: string | undefined) => j.packages.find((p) => p.packageId === packageId)!;

  test('an upload, its records and their outcomes are journaled, without personal data; an identical re-send is skipped', async () => {
    const records = [k2Record('JRN-A-1', 1), k2Record('JRN-A-2', 2)];
    const first = await upload(fileXml(records.map((r) => r.xml)));
    expect(first.status).toBe(200);

    let { json } = await journal();
    expect(json.uploads.at(-1)).toMatchObject({ fileName: first.fileName, outcome: 'accepted', packageId: first.packageId, records: 2 });
    const pending = packageOf(json, first.packageId);
    expect(pending).toMatchObject({ packageName: first.fileName, final: false });
    expect(pending.files[0].records.map((r) => [r.contract, r.operation, r.outcome])).toEqual([
      ['JRN-A-1|2023-03-15', '2', undefined],
      ['JRN-A-2|2023-03-15', '2', undefined],
    ]);
    expect(pending.files[0].records[0].recordHash).toMatch(/^[0-9a-f]{16}$/);

    clock += DONE;
    const again = await upload(fileXml([records[0].xml]));
    clock += DONE;
    const read = await journal();
    json = read.json;
    expect(packageOf(json, first.packageId).final).toBe(true);
    expect(packageOf(json, first.packageId).files[0].records.map((r) => r.outcome)).toEqual(['created', 'created']);
    const repeat = packageOf(json, again.packageId).files[0].records[0];
    expect(repeat).toMatchObject({
      contract: 'JRN-A-1|2023-03-15',
      outcome: 'skipped',
      recordHash: packageOf(json, first.packageId).files[0].records[0].recordHash,
    });
    expect(json.calls.uploadFile.ok).toBeGreaterThanOrEqual(2);
    for (const r of records) {
      expect(read.text).not.toContain(r.iinbin);
      expect(read.text).not.toContain(r.fullname.split(' ')[0]);
    }
  });

  test('a contract uploaded while another unfinished package holds it is recorded as in flight twice; after that package is final it is not', async () => {
    const held = await upload(fileXml([k2Record('JRN-B-1', 3).xml, k2Record('JRN-B-2', 4).xml]));
    const second = await upload(fileXml([k2Record('JRN-B-1', 3, '99.00').xml]));
    let { json } = await journal();
    expect(json.inFlightConflicts).toEqual([
      {
        at: expect.any(String),
        contract: 'JRN-B-1|2023-03-15',
        packageId: second.packageId,
        packageName: second.fileName,
        otherPackageId: held.packageId,
        otherPackageName: held.fileName,
      },
    ]);

    clock += DONE;
    await upload(fileXml([k2Record('JRN-B-2', 4, '98.00').xml]));
    ({ json } = await journal());
    expect(json.inFlightConflicts).toHaveLength(1);
  });

  test('recordRejectNextFiles=1: exactly the next file ends with per-record errors (every other record), and the knob counts down', async () => {
    faults.set({ recordRejectNextFiles: 1 });
    const mixed = await upload(fileXml([k2Record('JRN-C-1', 5).xml, k2Record('JRN-C-2', 6).xml, k2Record('JRN-C-3', 7).xml]));
    expect(faults.get('recordRejectNextFiles')).toBe(0);
    const clean = await upload(fileXml([k2Record('JRN-C-4', 8).xml]));
    clock += DONE;

    const { json } = await journal();
    const file = packageOf(json, mixed.packageId).files[0];
    expect(file.status).toBe('Файл обработан.');
    expect(file.records.map((r) => r.outcome)).toEqual(['rejected', 'created', 'rejected']);
    expect(file.records[0].message).toMatch(/бизнес-правил/);
    expect(packageOf(json, clean.packageId).files[0].records.map((r) => r.outcome)).toEqual(['created']);
  });

  test('a system fault on upload and a bare 503 of the proxy are journaled and counted', async () => {
    faults.set({ systemFault: 1 });
    const refused = await upload(fileXml([k2Record('JRN-D-1', 9).xml]));
    expect(refused.status).toBe(500);
    faults.set({ systemFault: 0, http5xx: 1 });
    const bare = await upload(fileXml([k2Record('JRN-D-1', 9).xml]));
    expect(bare.status).toBe(503);

    const { json } = await journal();
    expect(json.uploads.at(-1)).toEqual({ at: expect.any(String), fileName: refused.fileName, outcome: 'system-fault', fault: 'ScbSystemFault SYSTEM_ERROR' });
    expect(json.calls.uploadFile.ScbSystemFault).toBe(1);
    expect(json.calls['(proxy)'].http5xx).toBe(1);
    expect(json.packages.some((p) => p.packageName === refused.fileName)).toBe(false);
  });
});

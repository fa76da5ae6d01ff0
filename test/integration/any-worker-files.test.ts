/**
 * Any activity may run on any worker (issue 14): a GKB file built by worker 1 (its own activities
 * instance and temp folder, both thrown away afterwards) is uploaded by worker 2 (another instance,
 * another folder) to the GKB sandbox; a scan stored by one worker is read by another. With the pg
 * store (K2's PostgreSQL database) both work; with per-worker fs folders (the control) both fail,
 * which is why production uses pg (documents/README.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createGkbActivities, type GkbFileProgress } from '../../activities/gkb';
import type { Db } from '../../db';
import { BlobNotFoundError, createBlobBackend, type BlobStoreKind } from '../../documents/blobs';
import type { FileKey } from '../../documents/encryption';
import { createDocumentStore, DocumentNotFoundError } from '../../documents/store';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { mulberry32 } from '../../domain/generate';
import { createGkbClient, type GkbClient } from '../../integrations/gkb/soap-client';
import { createLogger } from '../../observability/logger';
import { Faults } from '../../simulators/faults';
import { createGkbSandbox } from '../../simulators/gkb/sandbox';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';
import { testDatabases, type TestDatabase } from '../helpers/databases';

jest.setTimeout(60_000);

const credentials = { clientId: 'k2-test', password: 'k2-test-secret', userId: 'k2-operator' };
const key: FileKey = { id: 'k2025', key: randomBytes(32) };
const dossiers = Array.from({ length: 3 }, (_, i) => sampleDossier({}, mulberry32(300 + i), i));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const databases = testDatabases();
const sqlite = databases.find((d) => d.name === 'sqlite')!;
const postgres = databases.find((d) => d.name === 'postgres');
if (!postgres) {
  // eslint-disable-next-line no-console
  console.warn('any-worker-files: the pg store runs only on PostgreSQL (K2_TEST_PG_URL unset or not answering); only the fs control runs');
}

let sandbox: ReturnType<typeof createGkbSandbox>;
let gkb: GkbClient;
let uploaded: Buffer[];
const folders: string[] = [];

beforeAll(async () => {
  sandbox = createGkbSandbox({ faults: new Faults('gkb'), credentials, timing: { stepMs: 3600_000, processingMs: 86_400_000, now: () => Date.now() } });
  const real = createGkbClient({ url: (await sandbox.listen(0, '127.0.0.1')).url, ...credentials, timeoutMs: 10_000 });
  gkb = Object.assign(Object.create(real) as GkbClient, {
    uploadFileOnce: (input: Parameters<GkbClient['uploadFileOnce']>[0]) => {
      uploaded.push(input.file);
      return real.uploadFileOnce(input);
    },
  });
});
beforeEach(() => {
  uploaded = [];
});
afterAll(async () => {
  await sandbox?.close();
  for (const d of folders) fs.rmSync(d, { recursive: true, force: true });
  await Promise.all(databases.map((d) => d.cleanup()));
});

/** One worker: its own data folder and activities instance, sharing only the database (and, with pg, the store in it). */
function worker(db: Db, store: BlobStoreKind) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-worker-'));
  folders.push(dataDir);
  const gkbActivities = createGkbActivities({
    db,
    gkb,
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: path.join(dataDir, 'gkb'),
    files: createBlobBackend(store, { db, dir: path.join(dataDir, 'gkb'), space: 'gkb' }), // as worker/index.ts wires it
    fileKeys: [key],
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
  });
  const documents = createDocumentStore({ db, store, dir: path.join(dataDir, 'documents'), fileKeys: [key] });
  return { dataDir, gkb: gkbActivities, documents, kill: () => fs.rmSync(dataDir, { recursive: true, force: true }) };
}

/** Worker 1 queues, claims and builds the batch's file, then dies with its folder. */
async function builtOnWorker1(db: Db, store: BlobStoreKind, batchId: string): Promise<GkbFileProgress> {
  const w1 = worker(db, store);
  const env = new MockActivityEnvironment();
  for (const [i, dossier] of dossiers.entries()) {
    await env.run(w1.gkb.enqueueGkbReport, { reportKey: `${batchId}/${i}`, caseId: `case-${batchId}-${i}/run`, workflowId: `case-${batchId}-${i}`, dossier });
  }
  expect(await env.run(w1.gkb.claimGkbRecords, { batchId })).toBe(dossiers.length);
  const [file]: GkbFileProgress[] = await env.run(w1.gkb.buildGkbFiles, { batchId });
  w1.kill();
  return file;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const scan = Buffer.from('%PDF-1.4\nBT (a scan of a loan agreement) Tj ET\n%%EOF\n', 'utf8');
const meta = { caseId: 'case-KD0000000001', kind: 'dbz-scan', mediaType: 'application/pdf', fileName: 'Скан ДБЗ.pdf' } as const;

const onPostgres = postgres ? describe : describe.skip;
onPostgres('pg store on PostgreSQL: any activity may run on any worker', () => {
  let db: Db;
  beforeAll(async () => {
    db = await (postgres as TestDatabase).open();
  });

  it('a GKB file built on worker 1 (killed, folder gone) is uploaded by worker 2, exactly as built', async () => {
    const file = await builtOnWorker1(db, 'pg', 'gkb-any-1');
    const w2 = worker(db, 'pg');
    const { packageId }: { packageId: string } = await new MockActivityEnvironment().run(w2.gkb.uploadGkbFile, {
      batchId: 'gkb-any-1',
      fileName: file.fileName,
    });
    expect(packageId).toBeTruthy(); // the sandbox unzipped, parsed and accepted it
    expect(uploaded).toHaveLength(1);
    expect(sha(uploaded[0])).toBe(file.sha256);
    expect(fs.readdirSync(w2.dataDir)).toEqual([]); // nothing came from worker 2's own folder
  });

  it('a scan stored by one worker is read by another', async () => {
    const w1 = worker(db, 'pg');
    const ref = await w1.documents.put(Readable.from([scan]), meta);
    w1.kill();
    expect(await readAll(worker(db, 'pg').documents.open(ref.sha256))).toEqual(scan);
  });
});

describe('control: per-worker fs folders (K2_DOCUMENT_STORE=fs) fail across workers', () => {
  let db: Db;
  beforeAll(async () => {
    db = await sqlite.open();
  });

  it('worker 2 cannot upload the file worker 1 built', async () => {
    const file = await builtOnWorker1(db, 'fs', 'gkb-any-2');
    const w2 = worker(db, 'fs');
    await expect(new MockActivityEnvironment().run(w2.gkb.uploadGkbFile, { batchId: 'gkb-any-2', fileName: file.fileName })).rejects.toThrow(BlobNotFoundError);
    expect(uploaded).toEqual([]);
  });

  it('a scan stored by one worker is not found by another', async () => {
    const ref = await worker(db, 'fs').documents.put(Readable.from([scan]), meta);
    expect(() => worker(db, 'fs').documents.open(ref.sha256)).toThrow(DocumentNotFoundError);
  });
});

/**
 * The GKB files K2 keeps are encrypted at rest (issue 13): buildGkbFiles writes each ZIP encrypted
 * with the first payload key, its sha256 in the batch's progress over the plaintext ZIP; uploadGkbFile
 * sends GKB exactly that plaintext ZIP (the real GKB sandbox unzips and accepts it); a ZIP written
 * before encryption still uploads; a damaged kept file fails the file instead of uploading other bytes,
 * and one whose key is not configured is retried.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import yauzl from 'yauzl';
import { batchFileLabel, createGkbActivities, type EnqueueOutcome, type GkbFileProgress } from '../../activities/gkb';
import type { Db } from '../../db';
import { FILE_MAGIC, FileKeyUnknownError, readFilePlain, type FileKey } from '../../documents/encryption';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { mapDossierToContract } from '../../domain/gkb/contract-record';
import { enqueueReport } from '../../db/gkb';
import { mulberry32 } from '../../domain/generate';
import { createGkbClient, type GkbClient } from '../../integrations/gkb/soap-client';
import { createLogger } from '../../observability/logger';
import { Faults } from '../../simulators/faults';
import { createGkbSandbox } from '../../simulators/gkb/sandbox';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';
import { testDatabases } from '../helpers/databases';
import { SealedKeyUnknownError } from '../../db/sealed';

jest.setTimeout(60_000);

const credentials = { clientId: 'k2-test', password: 'k2-test-secret', userId: 'k2-operator' };
const key2025: FileKey = { id: 'k2025', key: randomBytes(32) };
const [sqlite] = testDatabases();
let db: Db;
let dir: string;
let sandbox: ReturnType<typeof createGkbSandbox>;
let gkb: GkbClient;
/** Every file handed to GKB's upload, as GKB receives it. */
let uploaded: Buffer[];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dossiers = Array.from({ length: 3 }, (_, i) => sampleDossier({}, mulberry32(100 + i), i));

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
beforeEach(async () => {
  db = await sqlite.open();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-gkb-rest-'));
  uploaded = [];
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
afterAll(async () => {
  await sandbox?.close();
  await sqlite.cleanup();
});

function activities(fileKeys: FileKey[]) {
  return createGkbActivities({
    db,
    gkb,
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: path.join(dir, 'gkb'),
    fileKeys,
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    triggerBatch: async () => undefined,
    logger: createLogger('test', 'error'),
  });
}

/** Queues the dossiers, claims them for `batchId` and builds its files. */
async function built(acts: ReturnType<typeof activities>, batchId: string) {
  const env = new MockActivityEnvironment();
  for (const [i, dossier] of dossiers.entries()) {
    const outcome: EnqueueOutcome = await env.run(acts.enqueueGkbReport, {
      reportKey: `${batchId}/${i}`,
      caseId: `case-${batchId}-${i}/run`,
      workflowId: `case-${batchId}-${i}`,
      dossier,
    });
    expect(outcome.state).toBe('queued');
  }
  expect(await env.run(acts.claimGkbRecords, { batchId })).toBe(dossiers.length);
  const progress: GkbFileProgress[] = await env.run(acts.buildGkbFiles, { batchId });
  expect(progress).toHaveLength(1);
  return { progress: progress[0], zipPath: path.join(dir, 'gkb', batchFileLabel(batchId), progress[0].fileName) };
}

/** The XML inside a ZIP (one entry). */
function xmlOf(zip: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
      if (err || !z) return reject(err);
      z.on('entry', (entry: yauzl.Entry) =>
        z.openReadStream(entry, (e, s) => {
          if (e || !s) return reject(e);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c))
            .on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
            .on('error', reject);
        }),
      );
      z.readEntry();
    });
  });
}

it('keeps the ZIP encrypted and uploads exactly the plaintext ZIP whose sha256 the progress holds', async () => {
  const acts = activities([key2025]);
  const { progress, zipPath } = await built(acts, 'gkb-rest-1');
  const kept = fs.readFileSync(zipPath);
  expect(kept.subarray(0, FILE_MAGIC.length)).toEqual(FILE_MAGIC);
  expect(kept.subarray(0, 4).equals(Buffer.from('PK\u0003\u0004', 'latin1'))).toBe(false);
  for (const d of dossiers) {
    expect(kept.includes(Buffer.from(d.iinbin))).toBe(false);
    expect(kept.includes(Buffer.from(d.fullname.split(' ')[0], 'utf8'))).toBe(false);
  }
  // The queued records were sealed in K2's database with the same key (db/sealed.ts), and built from there.
  const queued: Array<{ record: string }> = await db('gkb_records').where({ batch_id: 'gkb-rest-1' }).select('record');
  expect(queued).toHaveLength(dossiers.length);
  for (const { record } of queued) {
    expect(record).toMatch(/^k2s1:k2025:/);
    for (const d of dossiers) expect(record.includes(d.iinbin) || record.includes(d.fullname.split(' ')[0])).toBe(false);
  }
  expect(fs.readdirSync(path.dirname(zipPath))).toEqual([progress.fileName]); // no XML left in clear

  const { packageId }: { packageId: string } = await new MockActivityEnvironment().run(acts.uploadGkbFile, {
    batchId: 'gkb-rest-1',
    fileName: progress.fileName,
  });
  expect(packageId).toBeTruthy(); // the sandbox unzipped, parsed and accepted it
  expect(uploaded).toHaveLength(1);
  expect(uploaded[0].subarray(0, 4)).toEqual(Buffer.from('PK\u0003\u0004', 'latin1'));
  expect(sha(uploaded[0])).toBe(progress.sha256);
  expect(uploaded[0]).toEqual(await readFilePlain(zipPath, [key2025]));
  const xml = await xmlOf(uploaded[0]);
  for (const d of dossiers) expect(xml).toContain(d.iinbin); // the real content reached GKB
});

it('a ZIP kept before encryption (or in the demo without keys) uploads as it is', async () => {
  const plain = activities([]);
  const { progress, zipPath } = await built(plain, 'gkb-rest-2');
  const kept = fs.readFileSync(zipPath);
  expect(kept.subarray(0, 4)).toEqual(Buffer.from('PK\u0003\u0004', 'latin1'));
  expect(sha(kept)).toBe(progress.sha256);
  await new MockActivityEnvironment().run(activities([key2025]).uploadGkbFile, { batchId: 'gkb-rest-2', fileName: progress.fileName });
  expect(uploaded).toEqual([kept]);
});

it('a damaged kept file fails the file (not retried) and nothing is uploaded', async () => {
  const acts = activities([key2025]);
  const { progress, zipPath } = await built(acts, 'gkb-rest-3');
  const kept = fs.readFileSync(zipPath);
  fs.writeFileSync(zipPath, kept.subarray(0, kept.length - 1));
  const failure = await new MockActivityEnvironment().run(acts.uploadGkbFile, { batchId: 'gkb-rest-3', fileName: progress.fileName }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ type: 'GkbFileUnreadable', nonRetryable: true, message: expect.stringContaining('truncated') });
  expect(uploaded).toEqual([]);
});

it('a kept file whose key is not configured is retried (a configuration fault), not failed', async () => {
  const { progress } = await built(activities([key2025]), 'gkb-rest-4');
  const other: FileKey = { id: 'k2026', key: randomBytes(32) };
  const err = await new MockActivityEnvironment()
    .run(activities([other]).uploadGkbFile, { batchId: 'gkb-rest-4', fileName: progress.fileName })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FileKeyUnknownError);
  expect(err).not.toBeInstanceOf(ApplicationFailure); // Temporal retries a plain error
  expect(uploaded).toEqual([]);
});

/** Queues the dossiers with `queuedWith` and claims them for `batchId`; the build is left to the test. */
async function queuedAndClaimed(queuedWith: ReturnType<typeof activities>, batchId: string): Promise<void> {
  const env = new MockActivityEnvironment();
  for (const [i, dossier] of dossiers.entries())
    await env.run(queuedWith.enqueueGkbReport, {
      reportKey: `${batchId}/${i}`,
      caseId: `case-${batchId}-${i}/run`,
      workflowId: `case-${batchId}-${i}`,
      dossier,
    });
  expect(await env.run(queuedWith.claimGkbRecords, { batchId })).toBe(dossiers.length);
}

it('a queued record sealed with a key this worker lacks is retried (a configuration fault); a damaged one fails the build', async () => {
  await queuedAndClaimed(activities([key2025]), 'gkb-rest-6');
  const other: FileKey = { id: 'k2026', key: randomBytes(32) };
  const unknownKey = await new MockActivityEnvironment().run(activities([other]).buildGkbFiles, { batchId: 'gkb-rest-6' }).catch((e: unknown) => e);
  expect(unknownKey).toBeInstanceOf(SealedKeyUnknownError);
  expect(unknownKey).not.toBeInstanceOf(ApplicationFailure); // Temporal retries a plain error

  const [first] = await db('gkb_records').where({ batch_id: 'gkb-rest-6' }).orderBy('id').select('id', 'record');
  await db('gkb_records')
    .where({ id: first.id })
    .update({ record: first.record.slice(0, -8) + 'AAAAAAA=' });
  const damaged = await new MockActivityEnvironment().run(activities([key2025]).buildGkbFiles, { batchId: 'gkb-rest-6' }).catch((e: unknown) => e);
  expect(damaged).toBeInstanceOf(ApplicationFailure);
  expect(damaged).toMatchObject({
    type: 'GkbFileInvalid',
    nonRetryable: true,
    message: expect.stringContaining('gkb_records.record: sealed value is damaged'),
  });
});

it('a file that fails the XSD fails the build at once (GkbFileInvalid, not retried): bad data, not a passing fault', async () => {
  const mapped = mapDossierToContract(dossiers[0], DEFAULT_GKB_DICTIONARY, { operation: 2, fileType: 1 });
  if (!mapped.ok) throw new Error(mapped.reason);
  const bad = { ...mapped.record, general: { ...mapped.record.general, startDate: '15.03.2023' } };
  await enqueueReport(db, { reportKey: 'gkb-rest-7/0', caseId: 'case-gkb-rest-7/run', workflowId: 'case-gkb-rest-7', record: bad });
  const acts = activities([key2025]);
  expect(await new MockActivityEnvironment().run(acts.claimGkbRecords, { batchId: 'gkb-rest-7' })).toBe(1);
  const failure = await new MockActivityEnvironment().run(acts.buildGkbFiles, { batchId: 'gkb-rest-7' }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ type: 'GkbFileInvalid', nonRetryable: true, message: expect.stringMatching(/fails the XSD: line \d+: Element 'StartDate'/) });
});

it('says so at start when the demo has no keys', () => {
  const warnings: string[] = [];
  const logger = { ...createLogger('test', 'error'), warn: (m: string) => warnings.push(m) };
  const deps = {
    db,
    gkb,
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: dir,
    maxRecordsPerFile: 10,
    batchMaxRecords: 1000,
    batchMinRecords: 10,
    triggerBatch: async () => undefined,
    logger,
  };
  createGkbActivities(deps);
  createGkbActivities({ ...deps, fileKeys: [key2025] });
  expect(warnings).toEqual(['no payload keys (demo): GKB files are kept in clear at rest']);
});

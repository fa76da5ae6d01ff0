/**
 * The worker's sweep of writes a crash left half done (worker/housekeeping.ts): staged blobs never
 * committed (database chunks on SQLite and, with K2_TEST_PG_URL, PostgreSQL; fs staged files) and
 * GKB build folders. Only what is older than the cut-off goes; committed files and writes under way stay.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Db } from '../../db';
import { createDbBlobs, createFsBlobs, readBlobPlain, stagingDir } from '../../documents/blobs';
import { startHousekeeping, sweepAbandonedWrites, type SweepTargets } from '../../worker/housekeeping';
import { testDatabases } from '../helpers/databases';

const HOUR = 3600_000;
const bytes = (text: string) => Readable.from([Buffer.from(text)]);
const threeHoursAgo = () => new Date(Date.now() - 3 * HOUR);

/** Makes a file or folder look last written at `when`. */
function age(p: string, when: Date): void {
  fs.utimesSync(p, when, when);
}

describe.each(testDatabases())('on %s', (database) => {
  let db: Db;
  let dir: string;
  let targets: (store: 'fs' | 'pg') => SweepTargets;
  beforeEach(async () => {
    db = await database.open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-sweep-'));
    targets = (store) => ({ store, db, documentsDir: path.join(dir, 'documents'), gkbDir: path.join(dir, 'gkb') });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterAll(() => database.cleanup());

  test('pg store: chunks no name points at, staged before the cut-off, go; committed and recent ones stay', async () => {
    const blobs = createDbBlobs(db, 'documents', { chunkBytes: 4 });
    await blobs.put('ab/cd/kept', bytes('committed long ago'));
    const crashed = await blobs.stage(bytes('staged, then the worker died'));
    void crashed; // never committed nor discarded
    await db('document_blob_chunks').update({ staged_at: threeHoursAgo().toISOString() }); // all of them old, the committed too
    await createDbBlobs(db, 'gkb', { chunkBytes: 4 }).stage(bytes('a write under way')); // recent, other space

    const blobIds = async () => (await db('document_blob_chunks').distinct('blob_id')).length;
    expect(await blobIds()).toBe(3);
    expect(await sweepAbandonedWrites(targets('pg'), new Date(Date.now() - 2 * HOUR))).toEqual({ staged: 1, buildFolders: 0 });
    expect(await blobIds()).toBe(2);
    expect((await readBlobPlain(blobs, 'ab/cd/kept', [])).toString()).toBe('committed long ago');
    expect(await sweepAbandonedWrites(targets('pg'), new Date(Date.now() - 2 * HOUR))).toEqual({ staged: 0, buildFolders: 0 });
  });
});

test('fs store: old staged files and GKB build folders go; committed files, recent writes and other folders stay', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-sweep-fs-'));
  try {
    const t: SweepTargets = { store: 'fs', db: undefined as unknown as Db, documentsDir: path.join(dir, 'documents'), gkbDir: path.join(dir, 'gkb') };
    const documents = createFsBlobs(t.documentsDir);
    await documents.put('ab/cd/kept', bytes('a scan'));
    age(path.join(t.documentsDir, 'ab/cd/kept'), threeHoursAgo());
    await documents.stage(bytes('staged, then the worker died'));
    await createFsBlobs(t.gkbDir).stage(bytes('a ZIP under way')); // recent
    for (const f of fs.readdirSync(stagingDir(t.documentsDir))) age(path.join(stagingDir(t.documentsDir), f), threeHoursAgo());

    const builds = stagingDir(t.gkbDir);
    const crashedBuild = path.join(builds, 'build-gkb-batch-7-Ab12Cd');
    fs.mkdirSync(crashedBuild, { recursive: true });
    fs.writeFileSync(path.join(crashedBuild, 'K2_gkb-batch-7_1.xml'), '<Records>personal data in clear</Records>');
    age(path.join(crashedBuild, 'K2_gkb-batch-7_1.xml'), threeHoursAgo());
    age(crashedBuild, threeHoursAgo());
    const runningBuild = path.join(builds, 'build-gkb-batch-8-Ef34Gh');
    fs.mkdirSync(runningBuild);
    fs.writeFileSync(path.join(runningBuild, 'K2_gkb-batch-8_1.xml'), '<Records>');
    age(runningBuild, threeHoursAgo()); // the folder is old, but its XML is being written now
    const other = path.join(builds, 'not-a-build');
    fs.mkdirSync(other);
    age(other, threeHoursAgo());

    expect(await sweepAbandonedWrites(t, new Date(Date.now() - 2 * HOUR))).toEqual({ staged: 1, buildFolders: 1 });
    expect(fs.existsSync(crashedBuild)).toBe(false);
    expect(fs.existsSync(runningBuild) && fs.existsSync(other)).toBe(true);
    expect(fs.readdirSync(stagingDir(t.documentsDir))).toEqual([]);
    expect(fs.readdirSync(stagingDir(t.gkbDir)).filter((f) => f.endsWith('.part'))).toHaveLength(1);
    expect((await readBlobPlain(documents, 'ab/cd/kept', [])).toString()).toBe('a scan');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('startHousekeeping sweeps at once, logs what went and, when a sweep fails, says so and carries on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-sweep-log-'));
  try {
    const gkbDir = path.join(dir, 'gkb');
    fs.mkdirSync(path.join(stagingDir(gkbDir), 'build-b-1'), { recursive: true });
    age(path.join(stagingDir(gkbDir), 'build-b-1'), threeHoursAgo());
    const lines: Array<[string, string, Record<string, unknown>]> = [];
    const logger = {
      info: (msg: string, f: Record<string, unknown>) => lines.push(['info', msg, f]),
      warn: (msg: string, f: Record<string, unknown>) => lines.push(['warn', msg, f]),
    };
    const t: SweepTargets = { store: 'fs', db: undefined as unknown as Db, documentsDir: path.join(dir, 'documents'), gkbDir };
    await startHousekeeping(t, logger).stop();
    expect(lines).toEqual([['info', 'abandoned writes swept', { staged: 0, buildFolders: 1, abandonedAfterMs: 2 * HOUR }]]);

    lines.length = 0;
    fs.writeFileSync(path.join(dir, 'blocked'), 'a file where the documents folder should be');
    const broken: SweepTargets = { ...t, documentsDir: path.join(dir, 'blocked') }; // its staging folder cannot be read
    await startHousekeeping(broken, logger).stop();
    expect(lines).toEqual([
      ['warn', 'sweeping abandoned writes failed; tried again later', expect.objectContaining({ err: expect.stringContaining('ENOTDIR') })],
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

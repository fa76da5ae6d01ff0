/**
 * Queueing a case's GKB record triggers an early batch once batchMinRecords (at least a full
 * package) are queued, without counting the whole queue after every record (a scan of tens of
 * thousands of rows per case). The package rule itself: test/integration/gkb-results.test.ts.
 */
import { createGkbActivities } from '../../activities/gkb';
import type { Db } from '../../db';
import { DEFAULT_GKB_DICTIONARY } from '../../domain/gkb/dossier';
import { mulberry32 } from '../../domain/generate';
import { createLogger } from '../../observability/logger';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';
import { testDatabases } from '../helpers/databases';

const [sqlite] = testDatabases();
let db: Db;

beforeAll(async () => {
  db = await sqlite.open();
});

afterAll(async () => {
  await sqlite.cleanup();
});

test('an early batch is triggered once batchMinRecords are queued, the queue counted at most once a second', async () => {
  let triggered = 0;
  const acts = createGkbActivities({
    db,
    gkb: {} as never, // not called by enqueueGkbReport
    temporal: {} as never,
    dictionary: DEFAULT_GKB_DICTIONARY,
    filesDir: '/nonexistent',
    maxRecordsPerFile: 2,
    batchMaxRecords: 1000,
    batchMinRecords: 2,
    triggerBatch: async () => {
      triggered += 1;
    },
    logger: createLogger('test', 'error'),
  });
  const rand = mulberry32(7);
  const enqueue = (i: number) =>
    acts.enqueueGkbReport({ reportKey: `case-${i}/run/overdue/1`, caseId: `case-${i}/run`, workflowId: `case-${i}`, dossier: sampleDossier({}, rand, i) });

  expect(await enqueue(1)).toMatchObject({ state: 'queued' }); // counted: 1 queued
  await enqueue(2); // 2 queued, but counted less than a second ago
  expect(triggered).toBe(0);
  await new Promise((r) => setTimeout(r, 1100));
  await enqueue(3); // counted: 3 queued
  expect(triggered).toBe(1);
  await new Promise((r) => setTimeout(r, 1100));
  await enqueue(4); // an early batch was triggered less than a minute ago: not again
  expect(triggered).toBe(1);
});

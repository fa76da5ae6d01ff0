/**
 * The API's state gauges read from K2's database (observability/state-metrics.ts, db/gkb.ts,
 * db/demands.ts, db/outbox.ts) on SQLite and PostgreSQL (K2_TEST_PG_URL): the outbox's oldest item,
 * GKB packages in flight and their age, demands by status; and a source that cannot be read (here
 * visibility, with no Temporal behind the client) is counted and logged once while the others go on.
 */
import type { Client } from '@temporalio/client';
import { DEMO_ENV, loadConfig } from '../../config';
import type { Db } from '../../db';
import { issueDemand, markDemandSent, recordDemandStatus } from '../../db/demands';
import { assignFile, claimRecords, enqueueReport } from '../../db/gkb';
import { enqueueLoans, markDispatched, pendingLoans } from '../../db/outbox';
import { generateLoans } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import type { ContractRecord } from '../../domain/gkb/contract-record';
import { createLogger } from '../../observability/logger';
import { Metrics } from '../../observability/metrics';
import { createStateMetrics } from '../../observability/state-metrics';
import { testDatabases } from '../helpers/databases';

jest.setTimeout(60_000);

const NOW = Date.now();
const config = loadConfig({ ...DEMO_ENV, GKB_RESULT_HORIZON: '2d' });
const gauge = (metrics: Metrics, series: string): number | undefined => {
  const line = metrics
    .render()
    .split('\n')
    .find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

let seq = 0;
const report = (db: Db, contractCode: string) =>
  enqueueReport(db, {
    reportKey: `r-${++seq}`,
    caseId: `case-${contractCode}/run`,
    workflowId: `case-${contractCode}`,
    record: { operation: 2, general: { contractCode } } as unknown as ContractRecord,
  });
const demand = (n: number) => ({
  caseId: `case-${n}/run`,
  workflowId: `case-${n}`,
  contractNumber: `KD${n}`,
  amount: '100.00',
  currency: 'KZT',
  iban: 'KZ86125KZT5004100100',
  iinbin: '900101300007',
  evidence: [],
});

describe.each(testDatabases())('state gauges from the database on %s', (database) => {
  let db: Db;
  beforeEach(async () => {
    db = await database.open();
  });
  afterAll(async () => {
    await database.cleanup();
  });

  test('outbox, GKB and demands are read; visibility failing is counted and logged once, the others go on', async () => {
    // Outbox: the first request's items were dispatched; the oldest still waiting was accepted 10 minutes ago.
    const loans = generateLoans(7, 4) as unknown as Loan[];
    await enqueueLoans(db, loans.slice(0, 1), 'req-1', new Date(NOW - 60 * 60_000));
    await enqueueLoans(db, loans.slice(1, 3), 'req-2', new Date(NOW - 10 * 60_000));
    await enqueueLoans(db, loans.slice(3), 'req-3', new Date(NOW - 60_000));
    await markDispatched(db, [(await pendingLoans(db, 1))[0].id]);

    // GKB: two batches in flight (one with two files), claimed 3 days and 1 hour ago; one record queued behind them.
    for (const c of ['A', 'B', 'C']) await report(db, c);
    await claimRecords(db, 'batch-old', 100);
    await db('gkb_batches')
      .where({ batch_id: 'batch-old' })
      .update({ created_at: new Date(NOW - 3 * 86_400_000).toISOString() });
    await assignFile(db, 'batch-old', 'K2_old_1.zip', ['A']);
    await assignFile(db, 'batch-old', 'K2_old_2.zip', ['B', 'C']);
    await report(db, 'D');
    await claimRecords(db, 'batch-new', 100);
    await db('gkb_batches')
      .where({ batch_id: 'batch-new' })
      .update({ created_at: new Date(NOW - 3_600_000).toISOString() });
    await report(db, 'A'); // waits: A is in flight

    // Demands: one issued, one sent, one with PC1.
    for (const n of [1, 2, 3]) await issueDemand(db, demand(n));
    const refs = (await db('payment_demands').orderBy('reference').select('reference')).map((r) => r.reference as string);
    await markDemandSent(db, refs[1]);
    await markDemandSent(db, refs[2]);
    await recordDemandStatus(db, refs[2], 'PC1');

    const lines: string[] = [];
    const metrics = new Metrics();
    const noTemporal = {} as Client; // every visibility read throws
    const state = createStateMetrics({
      registry: metrics,
      client: noTemporal,
      db,
      config,
      logger: createLogger('test', 'info', {}, (l) => lines.push(l)),
      clock: () => NOW,
    });
    await state.refresh();
    await state.refresh();

    expect(gauge(metrics, 'k2_outbox_pending_oldest_seconds')).toBe(600);
    expect(gauge(metrics, 'k2_gkb_packages_in_flight')).toBe(3);
    expect(gauge(metrics, 'k2_gkb_records_in_flight')).toBe(4);
    expect(gauge(metrics, 'k2_gkb_records_queued')).toBe(1);
    expect(gauge(metrics, 'k2_gkb_package_oldest_seconds')).toBe(3 * 86_400);
    expect(gauge(metrics, 'k2_gkb_result_horizon_seconds')).toBe(2 * 86_400);
    expect(gauge(metrics, 'k2_demands{status="issued"}')).toBe(1);
    expect(gauge(metrics, 'k2_demands{status="sent"}')).toBe(1);
    expect(gauge(metrics, 'k2_demands{status="PC1"}')).toBe(1);
    expect(gauge(metrics, 'k2_demands{status="PC3"}')).toBe(0);

    expect(gauge(metrics, 'k2_metrics_refresh_failures_total{source="visibility"}')).toBe(2);
    expect(gauge(metrics, 'k2_metrics_refreshed_timestamp_seconds{source="gkb"}')).toBe(Math.round(NOW / 1000));
    expect(gauge(metrics, 'k2_metrics_refreshed_timestamp_seconds{source="visibility"}')).toBeUndefined();
    expect(lines.filter((l) => l.includes('metrics source not read'))).toHaveLength(1);
  });

  test('an empty database gives zeros', async () => {
    const metrics = new Metrics();
    await createStateMetrics({
      registry: metrics,
      client: {} as Client,
      db,
      config,
      logger: createLogger('test', 'error', {}, () => undefined),
      clock: () => NOW,
    }).refresh();
    for (const series of ['k2_outbox_pending_oldest_seconds', 'k2_gkb_packages_in_flight', 'k2_gkb_package_oldest_seconds', 'k2_demands{status="issued"}'])
      expect({ series, value: gauge(metrics, series) }).toEqual({ series, value: 0 });
  });
});

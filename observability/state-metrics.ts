/**
 * The API's state gauges, recounted every K2_METRICS_INTERVAL (README "Metrics and alerts"): the
 * cases from Temporal visibility (observability/case-metrics.ts) and, from K2's database, the
 * outbox, GKB's packages in flight and the demands. Every API replica reports the same values (one
 * database, one Temporal): the alert rules take `max without(instance)`.
 *
 *   k2_outbox_pending_oldest_seconds          age of the oldest accepted loan item not yet handed to Temporal (0: none)
 *   k2_gkb_packages_in_flight                 GKB packages (a batch's files) whose records wait for GKB's final result
 *   k2_gkb_records_in_flight, k2_gkb_records_queued
 *   k2_gkb_package_oldest_seconds             since the oldest package in flight was claimed (0: none)
 *   k2_gkb_result_horizon_seconds             GKB_RESULT_HORIZON, for the alert on the above
 *   k2_demands{status}                        demands by status: issued (not yet sent), withdrawn (its case closed first), sent, PC1, PC3
 *   k2_metrics_refreshed_timestamp_seconds{source}, k2_metrics_refresh_failures_total{source}
 *
 * Each source is read on its own: one that fails keeps its last values, is counted and logged once
 * until it recovers; the others go on. A refresh never overlaps the previous one.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';
import { countDemandsByStatus } from '../db/demands';
import { gkbInFlight } from '../db/gkb';
import { oldestPendingAcceptedAt } from '../db/outbox';
import { createCaseMetrics } from './case-metrics';
import type { Logger } from './logger';
import type { MetricsRegistry } from './metrics';

export const DEMAND_STATUSES = ['issued', 'withdrawn', 'sent', 'PC1', 'PC3'] as const;

export interface StateMetricsDeps {
  registry: MetricsRegistry;
  client: Client;
  db: Db;
  config: Config;
  logger: Logger;
  clock?: () => number;
}

export interface StateMetrics {
  /** Reads every source once (what each interval does); never throws. */
  refresh(): Promise<void>;
  /** Refreshes now, then every K2_METRICS_INTERVAL after the previous refresh ended. */
  start(): void;
  stop(): void;
}

/** Seconds from `since` to `now`, 0 when there is nothing (or it lies ahead). */
export function ageSeconds(now: number, since: Date | undefined): number {
  return since ? Math.max(0, Math.round((now - since.getTime()) / 1000)) : 0;
}

export function createStateMetrics({ registry, client, db, config, logger, clock = Date.now }: StateMetricsDeps): StateMetrics {
  const outboxOldest = registry.gauge(
    'k2_outbox_pending_oldest_seconds',
    'Age of the oldest accepted loan item not yet handed to Temporal (dead letters not counted; 0 when none waits).',
  );
  const packages = registry.gauge('k2_gkb_packages_in_flight', "GKB packages (a batch's files) whose records wait for GKB's final result.");
  const recordsInFlight = registry.gauge('k2_gkb_records_in_flight', "GKB records claimed by a batch, waiting for GKB's final result.");
  const recordsQueued = registry.gauge('k2_gkb_records_queued', 'GKB records queued for the next batch.');
  const packageOldest = registry.gauge(
    'k2_gkb_package_oldest_seconds',
    'Since the batch of the oldest GKB package in flight claimed its records (0 when none is in flight).',
  );
  const horizon = registry.gauge(
    'k2_gkb_result_horizon_seconds',
    "GKB_RESULT_HORIZON: how long a case waits for GKB's result before it needs attention (for the alert on k2_gkb_package_oldest_seconds).",
  );
  const demands = registry.gauge(
    'k2_demands',
    'Payment demands by status: issued (not yet sent to EKO), withdrawn (its case closed before it was sent), sent, PC1, PC3.',
  );
  const refreshed = registry.gauge('k2_metrics_refreshed_timestamp_seconds', 'When each source of the state gauges was last read (unix seconds).');
  const failures = registry.counter('k2_metrics_refresh_failures_total', 'Failed reads of a source of the state gauges (visibility, outbox, gkb, demands).');
  horizon.set(config.gkb.resultHorizonMs / 1000);

  const cases = createCaseMetrics(registry, client, { clock });
  const sources: Record<string, () => Promise<void>> = {
    visibility: () => cases.refresh(),
    outbox: async () => outboxOldest.set(ageSeconds(clock(), await oldestPendingAcceptedAt(db))),
    gkb: async () => {
      const g = await gkbInFlight(db);
      packages.set(g.packages);
      recordsInFlight.set(g.records);
      recordsQueued.set(g.queued);
      packageOldest.set(ageSeconds(clock(), g.oldestSince));
    },
    demands: async () => {
      const byStatus = await countDemandsByStatus(db);
      for (const status of DEMAND_STATUSES) demands.set(byStatus[status] ?? 0, { status });
    },
  };
  const failing = new Set<string>();

  async function refresh(): Promise<void> {
    for (const [source, read] of Object.entries(sources)) {
      try {
        await read();
        refreshed.set(Math.round(clock() / 1000), { source });
        if (failing.delete(source)) logger.info('metrics source readable again', { source });
      } catch (err) {
        failures.inc({ source });
        if (!failing.has(source))
          logger.warn('metrics source not read; its gauges keep their last values', { source, err: String((err as Error)?.message ?? err) });
        failing.add(source);
      }
    }
  }

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    if (!running) return;
    timer = setTimeout(() => void refresh().then(next), config.api.metricsIntervalMs);
    timer.unref();
  };
  return {
    refresh,
    start() {
      if (running) return;
      running = true;
      void refresh().then(next);
    },
    stop() {
      running = false;
      clearTimeout(timer);
    },
  };
}

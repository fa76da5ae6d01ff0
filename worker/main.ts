/**
 * Worker process: `node dist/worker/main.js`. Stops gracefully on SIGINT/SIGTERM: it stops polling,
 * running activities get K2_WORKER_SHUTDOWN_GRACE to finish, /health answers 503 meanwhile.
 */
import { Runtime } from '@temporalio/worker';
import { loadConfig } from '../config';
import { createDb } from '../db';
import { hasPendingBacklog } from '../db/outbox';
import { K2_HISTOGRAM_BUCKETS } from '../observability/call-metrics';
import { createLogger, logFatal } from '../observability/logger';
import { sdkMetricsRegistry } from '../observability/sdk-metrics';
import { temporalSdkLogger } from '../observability/temporal-logger';
import { connectClient, encryptingKeyId, temporalDataConverter } from '../temporal/connection';
import { connectNative, isTemporalUnreachable } from '../temporal/native-connection';
import { startWorkerHealth } from './health';
import { createCaseWorker, createWorkerActivities, ensureGkbSchedule, workflowsPath } from './index';
import { workflowCode } from './workflow-bundle';
import { heapLimitMiB, heapProblem } from './heap';
import { startHousekeeping, sweepTargets } from './housekeeping';
import { migrateWhenReady, retryingTransient, STARTUP_WAIT_MS } from './startup-retry';
import { NarrowingSlots, watchOutboxBacklog } from './backlog-narrowing';

const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
const READY_TEMPORAL_TIMEOUT_MS = 2000;

async function main() {
  const config = loadConfig();
  const logger = createLogger('worker', config.logLevel);
  const heapProblemFound = heapProblem(config.worker.maxCachedWorkflows, heapLimitMiB());
  if (heapProblemFound) throw new Error(heapProblemFound);
  Runtime.install({
    // The SDK's own lines (activity failures with their messages) go through K2's redacting logger.
    logger: temporalSdkLogger(logger),
    shutdownSignals: SHUTDOWN_SIGNALS,
    // K2's own metrics (ABS/EKO/GKB calls) go to the same /metrics as the SDK's: observability/sdk-metrics.ts.
    telemetryOptions: {
      metrics: {
        prometheus: {
          bindAddress: config.temporal.workerMetrics,
          histogramBucketOverrides: Object.fromEntries(Object.entries(K2_HISTOGRAM_BUCKETS).map(([name, buckets]) => [name, [...buckets]])),
        },
      },
    },
  });
  const metrics = sdkMetricsRegistry(Runtime.instance().metricMeter, K2_HISTOGRAM_BUCKETS);
  // Started with the rest of the system, the worker may come up before PostgreSQL or Temporal does: it waits for them.
  const db = createDb(config.db);
  await migrateWhenReady(db, (attempt, err) => logger.warn('K2 database not answering yet; trying again shortly', { attempt, err }));
  // TLS as configured; the payload codec is in the client and in Worker.create (createCaseWorker): temporal/connection.ts.
  const connection = await retryingTransient(() => connectNative(config), {
    limitMs: STARTUP_WAIT_MS,
    isTransient: isTemporalUnreachable,
    onRetry: (attempt, err) => logger.warn('Temporal not reachable yet; trying again shortly', { attempt, err }),
  });
  const client = await connectClient(config);
  await retryingTransient(() => ensureGkbSchedule(client, config), {
    limitMs: STARTUP_WAIT_MS,
    onRetry: (attempt, err) => logger.warn('Temporal not answering yet; the GKB schedule is set up again shortly', { attempt, err }),
  });
  const { workflowSlots, narrowSlots, narrowBacklog } = config.worker;
  const slots = new NarrowingSlots({ maxSlots: workflowSlots, narrowSlots });
  const code = workflowCode(workflowsPath(), temporalDataConverter(config).failureConverterPath);
  if (code.kind === 'prebuilt') logger.info('workflow code: the prebuilt bundle', { codePath: code.options.workflowBundle.codePath, sha256: code.sha256 });
  else logger.warn('workflow code: bundled at start (more memory for the life of the process)', { why: code.why });
  const worker = await createCaseWorker(config, createWorkerActivities(config, db, client, logger, metrics), connection, slots, code);
  const narrowedGauge = metrics.gauge(
    'k2_worker_narrowed',
    '1 while the outbox backlog narrows the worker to K2_WORKER_NARROW_SLOTS workflow tasks (backlog narrowing)',
  );
  narrowedGauge.set(0);
  const stopWatching =
    narrowBacklog > 0
      ? watchOutboxBacklog(slots, () => hasPendingBacklog(db, narrowBacklog), {
          everyMs: 1000,
          onChange: (narrowed) => {
            narrowedGauge.set(narrowed ? 1 : 0);
            if (narrowed)
              logger.info('backlog narrowing: the outbox holds a backlog; the worker runs fewer workflow tasks at once', {
                backlogAtLeast: narrowBacklog,
                workflowSlots: narrowSlots,
              });
            else logger.info('backlog narrowing: backlog gone; the worker runs workflow tasks at full width', { workflowSlots });
          },
          onError: (err) =>
            logger.warn('backlog narrowing: the outbox backlog cannot be read; the worker keeps its current width until it can', {
              err: String((err as Error)?.message ?? err),
            }),
        })
      : () => undefined;
  // The Runtime shuts the worker down on these signals; this only says so (and when it ends, below).
  let shutdownStartedAt = 0;
  for (const signal of SHUTDOWN_SIGNALS) {
    process.once(signal, () => {
      if (shutdownStartedAt) return;
      shutdownStartedAt = Date.now();
      logger.info('worker shutting down: polling stops, running activities may finish', { signal, graceMs: config.worker.shutdownGraceMs });
    });
  }
  const health = await startWorkerHealth({
    address: config.worker.health,
    running: () => worker.getState() === 'RUNNING',
    readyChecks: {
      temporal: () => client.connection.withDeadline(Date.now() + READY_TEMPORAL_TIMEOUT_MS, () => client.connection.workflowService.getSystemInfo({})),
      database: () => db.raw('select 1'),
    },
  });
  const housekeeping = startHousekeeping(sweepTargets(config, db), logger.child({ part: 'housekeeping' }));
  logger.info('worker ready', {
    taskQueue: config.temporal.taskQueue,
    temporal: config.temporal.address,
    metrics: `http://${config.temporal.workerMetrics}/metrics`,
    health: `${health.url}/health`,
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    heapLimitMiB: heapLimitMiB(),
    codecKeyId: encryptingKeyId(config),
    gkbBatchEvery: config.gkb.batchIntervalMs,
    workflowSlots,
    narrowSlots,
    narrowBacklog,
  });
  await worker.run();
  stopWatching();
  await housekeeping.stop();
  await health.close();
  await client.connection.close();
  await connection.close();
  await db.destroy();
  logger.info('worker stopped', shutdownStartedAt ? { shutdownMs: Date.now() - shutdownStartedAt } : {});
}

main().catch((err) => {
  logFatal('worker', 'worker failed', err);
  process.exit(1);
});

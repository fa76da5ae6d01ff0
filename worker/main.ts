/**
 * Worker process: `node dist/worker/main.js`. Stops gracefully on SIGINT/SIGTERM: it stops polling,
 * running activities get K2_WORKER_SHUTDOWN_GRACE to finish, /health answers 503 meanwhile.
 */
import { Runtime } from '@temporalio/worker';
import { loadConfig } from '../config';
import { openDb } from '../db';
import { hasPendingBacklog } from '../db/outbox';
import { createLogger, logFatal } from '../observability/logger';
import { temporalSdkLogger } from '../observability/temporal-logger';
import { connectClient, encryptingKeyId } from '../temporal/connection';
import { connectNative } from '../temporal/native-connection';
import { startWorkerHealth } from './health';
import { createCaseWorker, createWorkerActivities, ensureGkbSchedule } from './index';
import { IntakeFirstSlots, watchOutboxBacklog } from './intake-first';

const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
const READY_TEMPORAL_TIMEOUT_MS = 2000;

async function main() {
  const config = loadConfig();
  const logger = createLogger('worker', config.logLevel);
  Runtime.install({
    // The SDK's own lines (activity failures with their messages) go through K2's redacting logger.
    logger: temporalSdkLogger(logger),
    shutdownSignals: SHUTDOWN_SIGNALS,
    telemetryOptions: { metrics: { prometheus: { bindAddress: config.temporal.workerMetrics } } },
  });
  const db = await openDb(config.db);
  // TLS as configured; the payload codec is in the client and in Worker.create (createCaseWorker): temporal/connection.ts.
  const connection = await connectNative(config);
  const client = await connectClient(config);
  await ensureGkbSchedule(client, config);
  const { workflowSlots, intakeSlots, intakeBacklog } = config.worker;
  const slots = new IntakeFirstSlots({ maxSlots: workflowSlots, intakeSlots });
  const worker = await createCaseWorker(config, createWorkerActivities(config, db, client, logger), connection, slots);
  const intakeGauge = Runtime.instance().metricMeter.createGauge('k2_worker_intake_first', 'int', '', '1 while the outbox backlog limits the worker to K2_WORKER_INTAKE_SLOTS workflow tasks');
  intakeGauge.set(0);
  const stopWatching =
    intakeBacklog > 0
      ? watchOutboxBacklog(slots, () => hasPendingBacklog(db, intakeBacklog), {
          everyMs: 1000,
          onChange: (intake) => {
            intakeGauge.set(intake ? 1 : 0);
            if (intake) logger.info('intake first: the outbox holds a backlog; the worker runs fewer workflow tasks at once', { backlogAtLeast: intakeBacklog, workflowSlots: intakeSlots });
            else logger.info('intake first: backlog gone; the worker runs workflow tasks at full width', { workflowSlots });
          },
          onError: (err) => logger.warn('intake first: the outbox backlog cannot be read; the worker keeps its current width until it can', { err: String((err as Error)?.message ?? err) }),
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
  logger.info('worker ready', { taskQueue: config.temporal.taskQueue, temporal: config.temporal.address, metrics: `http://${config.temporal.workerMetrics}/metrics`, health: `${health.url}/health`, maxCachedWorkflows: config.worker.maxCachedWorkflows, codecKeyId: encryptingKeyId(config), gkbBatchEvery: config.gkb.batchIntervalMs, workflowSlots, intakeSlots, intakeBacklog });
  await worker.run();
  stopWatching();
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

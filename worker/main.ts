/** Worker process: `node dist/worker/main.js`. Stops gracefully on SIGINT/SIGTERM (in-flight tasks finish). */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig } from '../config';
import { openDb } from '../db';
import { createLogger } from '../observability/logger';
import { createCaseWorker, createWorkerActivities, ensureGkbSchedule } from './index';

async function main() {
  const config = loadConfig();
  const logger = createLogger('worker', config.logLevel);
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    telemetryOptions: { metrics: { prometheus: { bindAddress: config.temporal.workerMetrics } } },
  });
  const db = await openDb(config.db);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  await ensureGkbSchedule(client, config);
  const worker = await createCaseWorker(config, createWorkerActivities(config, db, client, logger), connection);
  logger.info('worker ready', { taskQueue: config.temporal.taskQueue, temporal: config.temporal.address, metrics: `http://${config.temporal.workerMetrics}/metrics`, gkbBatchEvery: config.gkb.batchIntervalMs });
  await worker.run();
  await clientConnection.close();
  await connection.close();
  await db.destroy();
  logger.info('worker stopped');
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', component: 'worker', msg: 'worker failed', err: String(err?.message ?? err) })}\n`);
  process.exit(1);
});

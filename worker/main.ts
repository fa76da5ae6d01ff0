/** Worker process: `node dist/worker/main.js`. Stops gracefully on SIGINT/SIGTERM (in-flight tasks finish). */
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig } from '../config';
import { openDb } from '../db';
import { createLogger } from '../observability/logger';
import { buildActivityDeps, createCaseWorker } from './index';

async function main() {
  const config = loadConfig();
  const logger = createLogger('worker', config.logLevel);
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const db = await openDb(config.db);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createCaseWorker(config, buildActivityDeps(config, db), connection);
  logger.info('worker ready', { taskQueue: config.temporal.taskQueue, temporal: config.temporal.address });
  await worker.run();
  await connection.close();
  await db.destroy();
  logger.info('worker stopped');
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', component: 'worker', msg: 'worker failed', err: String(err?.message ?? err) })}\n`);
  process.exit(1);
});

/** API process: `node dist/api/main.js`. Serves K2's HTTP facade and runs the outbox dispatcher; stops gracefully (api/shutdown.ts). */
import { loadConfig } from '../config';
import { createDb } from '../db';
import { migrateWhenReady } from '../worker/startup-retry';
import { createLogger, logFatal } from '../observability/logger';
import { Metrics } from '../observability/metrics';
import { createStateMetrics } from '../observability/state-metrics';
import { encryptingKeyId, lazyClient } from '../temporal/connection';
import { createApp } from './app';
import { OutboxDispatcher } from './dispatcher';
import { ArrivalRate } from './burst-hold';
import { shutdownApi } from './shutdown';

async function main() {
  const config = loadConfig();
  const logger = createLogger('api', config.logLevel);
  // Started with the rest of the system, the API may come up before PostgreSQL does: it waits for it, as the worker does.
  const db = createDb(config.db);
  await migrateWhenReady(db, (attempt, err) => logger.warn('K2 database not answering yet; trying again shortly', { attempt, err }));
  // connect lazily: the API answers (and queues loans) even while Temporal is still starting.
  // Payloads and failure texts encrypted (payload codec), TLS as configured: temporal/connection.ts.
  const temporal = lazyClient(config);
  const metrics = new Metrics();
  const arrivals = new ArrivalRate();
  const dispatcher = new OutboxDispatcher(db, temporal, config, logger, metrics, arrivals);
  const app = createApp({ config, db, temporal, logger, metrics, onLoansAccepted: () => dispatcher.nudge(), arrivals });
  const server = app.listen(config.api.port, config.api.host, () => {
    logger.info('api ready', { url: `http://${config.api.host}:${config.api.port}`, auth: config.api.auth.mode, codecKeyId: encryptingKeyId(config) });
  });
  dispatcher.start();
  // Cases, outbox, GKB and demand gauges of /metrics, recounted every K2_METRICS_INTERVAL.
  const stateMetrics = createStateMetrics({ registry: metrics, client: temporal, db, config, logger });
  stateMetrics.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    stateMetrics.stop();
    const closeTemporal = () => temporal.connection.close();
    await shutdownApi({ server, dispatcher, closeTemporal, closeDb: () => db.destroy(), logger, graceMs: config.api.shutdownGraceMs }, signal);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  logFatal('api', 'api failed', err);
  process.exit(1);
});

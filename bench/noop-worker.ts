/**
 * A worker for the benchmark's trivial workflow (bench/noop-workflow.ts), in its own process like
 * K2's worker, so the bare rate can be measured with every started workflow also executed:
 *
 *   node dist/bench/noop-worker.js <temporal address> <task queue>
 *
 * Prints "ready" on stdout once it polls; stops on SIGINT/SIGTERM. Its environment is the system's
 * (bench/api-ingest.ts): the same payload codec and Temporal TLS as K2's worker.
 */
import { Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../config';
import { temporalDataConverter } from '../temporal/connection';
import { connectNative } from '../temporal/native-connection';

async function main() {
  const [address, taskQueue] = process.argv.slice(2);
  if (!address || !taskQueue) throw new Error('usage: noop-worker.js <temporal address> <task queue>');
  Runtime.install({
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (m) => process.stderr.write(`${m}\n`),
    },
  });
  const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: address });
  const connection = await connectNative(config);
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('./noop-workflow'),
    dataConverter: temporalDataConverter(config),
  });
  process.once('SIGINT', () => worker.shutdown());
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
  await connection.close();
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});

/**
 * A worker for the benchmark's trivial workflow (bench/noop-workflow.ts), in its own process like
 * K2's worker, so the bare rate can be measured with every started workflow also executed:
 *
 *   node dist/bench/noop-worker.js <temporal address> <task queue>
 *
 * Prints "ready" on stdout once it polls; stops on SIGINT/SIGTERM.
 */
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';

async function main() {
  const [address, taskQueue] = process.argv.slice(2);
  if (!address || !taskQueue) throw new Error('usage: noop-worker.js <temporal address> <task queue>');
  Runtime.install({ logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m) => process.stderr.write(`${m}\n`) } });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({ connection, taskQueue, workflowsPath: require.resolve('./noop-workflow') });
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

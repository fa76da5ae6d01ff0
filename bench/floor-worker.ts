/**
 * The worker of the bare floor (bench/floor-workflow.ts), in K2's worker's shape: its own process,
 * the same payload codec, workflow-task slots at K2's full width (K2_WORKER_WORKFLOW_SLOTS), the
 * same activity and local-activity slots, pollers and cache size (K2_WORKER_MAX_CACHED_WORKFLOWS) as
 * worker/index.ts createCaseWorker, and Prometheus metrics like worker/main.ts. Only the code it
 * runs is different: activities that return at once.
 *
 *   node dist/bench/floor-worker.js <task queue> <metrics host:port>
 *
 * Its configuration comes from the environment (the topology's: TEMPORAL_ADDRESS, K2_PAYLOAD_KEYS,
 * TLS). Prints "ready" once it polls; stops on SIGINT/SIGTERM.
 */
import { Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../config';
import { temporalDataConverter } from '../temporal/connection';
import { connectNative } from '../temporal/native-connection';
import { FLOOR_CALLS, type FloorActivities } from './floor-workflow';

const floorActivities = (): FloorActivities => Object.fromEntries(FLOOR_CALLS.map((name) => [name, async () => ({ ok: true as const })])) as FloorActivities;

async function main() {
  const [taskQueue, metrics] = process.argv.slice(2);
  if (!taskQueue || !metrics) throw new Error('usage: floor-worker.js <task queue> <metrics host:port>');
  const quiet = () => undefined;
  Runtime.install({
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: (m) => process.stderr.write(`${m}\n`) },
    telemetryOptions: { metrics: { prometheus: { bindAddress: metrics } } },
  });
  const config = loadConfig();
  const connection = await connectNative(config);
  const slots = config.worker.workflowSlots;
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue,
    workflowsPath: require.resolve('./floor-workflow'),
    activities: floorActivities(),
    dataConverter: temporalDataConverter(config),
    tuner: {
      workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: slots },
      activityTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
    },
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: Math.min(10, slots) },
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    shutdownGraceTime: config.worker.shutdownGraceMs,
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

/**
 * Runs the GKB sandbox as a process for the demo and benchmarks:
 *   SOAP  http://127.0.0.1:<GKB_SIM_PORT>/BatchProcessingService   (the default GKB_URL)
 *   fault control  POST/DELETE/GET http://127.0.0.1:<GKB_SIM_PORT>/_sim/faults
 * Credentials are K2's own GKB settings (GKB_CLIENT_ID, GKB_PASSWORD, GKB_USER_ID), so K2 talks to it unchanged.
 * State is kept in <K2_DATA_DIR>/gkb-sandbox.json so that a restart does not forget uploaded packages.
 * Start-up faults come from SIM_FAULTS ("gkb.systemFault=0.1,gkb.uploadTimeout=0.05").
 * Pace: GKB_SIM_STEP (each of the first three status texts, default 2s) and GKB_SIM_PROCESSING
 * («Файл находится в процессе обработки», default 5s).
 * Binds SIM_HOST (127.0.0.1 by default), like the ABS and EKO simulators.
 */
import path from 'node:path';
import { loadConfig } from '../../config';
import { runSimulator } from '../http';
import { createLogger } from '../../observability/logger';
import { Faults } from '../faults';
import { createGkbSandbox } from './sandbox';

async function main() {
  const config = loadConfig();
  const log = createLogger('gkb-sandbox', config.logLevel);
  const faults = Faults.fromSpec('gkb', config.simulators.faults);
  const sandbox = createGkbSandbox({
    faults,
    credentials: { clientId: config.gkb.clientId, password: config.gkb.password, userId: config.gkb.userId },
    // Pace from configuration (GKB_SIM_STEP, GKB_SIM_PROCESSING). The late answer of the uploadTimeout fault
    // must come after K2 has given up, so it waits longer than K2's call deadline.
    timing: {
      stepMs: config.simulators.gkbStepMs,
      processingMs: config.simulators.gkbProcessingMs,
      lateAnswerMs: config.gkb.timeoutMs + 5000,
    },
    db: { file: path.join(config.dataDir, 'gkb-sandbox.json') },
    logger: log,
  });
  const { url } = await sandbox.listen(config.simulators.gkbPort, config.simulators.host);
  log.info('gkb sandbox ready', {
    url,
    stepMs: config.simulators.gkbStepMs,
    processingMs: config.simulators.gkbProcessingMs,
    faults: faults.snapshot(),
  });

  return { close: () => sandbox.close(), log };
}

runSimulator('gkb sandbox', main);

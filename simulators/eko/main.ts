/**
 * Runs the EKO simulator on SIM_HOST:EKO_SIM_PORT, reporting statuses to K2 at EKO_SIM_K2_URL.
 * Stops cleanly on SIGINT/SIGTERM: pending status timers are cancelled, not left to fire.
 */
import { loadConfig } from '../../config';
import { runSimulator } from '../http';
import { createLogger } from '../../observability/logger';
import { Faults } from '../faults';
import { createEkoSimulator, EKO_DEMAND_PATH, k2AuthHeader } from './server';

async function main() {
  const config = loadConfig();
  const log = createLogger('eko-sim', config.logLevel);
  const faults = Faults.fromSpec('eko', config.simulators.faults);
  const k2BaseUrl = config.simulators.ekoK2Url;
  const sim = createEkoSimulator({
    faults,
    statusDelayMs: config.simulators.ekoStatusDelayMs,
    k2BaseUrl,
    k2AuthHeader: k2AuthHeader(config.api.auth),
    logger: log,
  });
  const port = await sim.listen(config.simulators.ekoPort, config.simulators.host);
  log.info('eko simulator ready', {
    port,
    demandUrl: `http://127.0.0.1:${port}${EKO_DEMAND_PATH}`,
    k2BaseUrl,
    statusDelayMs: config.simulators.ekoStatusDelayMs,
    faults: faults.snapshot(),
  });

  return { close: () => sim.close(), log };
}

runSimulator('eko simulator', main);

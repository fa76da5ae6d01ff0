/**
 * Runs the ABS simulator on SIM_HOST:ABS_SIM_PORT with the 'abs.*' faults of SIM_FAULTS.
 * Stops cleanly on SIGINT/SIGTERM: requests held by the timeout fault are ended, not left hanging.
 */
import { loadConfig } from '../../config';
import { runSimulator } from '../http';
import { createLogger } from '../../observability/logger';
import { Faults } from '../faults';
import { ABS_SCENARIO_IINS, ABS_SIM_PATHS, createAbsSimulator } from './server';

async function main() {
  const config = loadConfig();
  const log = createLogger('abs-sim', config.logLevel);
  const faults = Faults.fromSpec('abs', config.simulators.faults);
  const sim = createAbsSimulator({ faults });
  const port = await sim.listen(config.simulators.absPort, config.simulators.host);
  log.info('abs simulator ready', {
    port,
    paths: ABS_SIM_PATHS,
    faults: faults.snapshot(),
    scenarioCount: Object.keys(ABS_SCENARIO_IINS).length,
  });

  return { close: () => sim.close(), log };
}

runSimulator('abs simulator', main);

/**
 * Runs the ABS simulator on SIM_HOST:ABS_SIM_PORT with the 'abs.*' faults of SIM_FAULTS.
 * Stops cleanly on SIGINT/SIGTERM: requests held by the timeout fault are ended, not left hanging.
 */
import { loadConfig } from '../../config';
import { createLogger } from '../../observability/logger';
import { Faults } from '../faults';
import { ABS_SCENARIO_IINS, ABS_SIM_PATHS, createAbsSimulator } from './server';

async function main(): Promise<void> {
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

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('abs simulator stopping', { signal });
    sim.close().then(
      () => process.exit(0),
      (err) => {
        log.error('abs simulator did not stop cleanly', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: Error) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', component: 'abs-sim', msg: 'abs simulator failed to start', err: { name: err.name, message: err.message } })}\n`);
  process.exit(1);
});

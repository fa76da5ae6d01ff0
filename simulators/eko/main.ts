/**
 * Runs the EKO simulator on SIM_HOST:EKO_SIM_PORT, reporting statuses to K2 at EKO_SIM_K2_URL.
 * Stops cleanly on SIGINT/SIGTERM: pending status timers are cancelled, not left to fire.
 */
import { loadConfig } from '../../config';
import { createLogger } from '../../observability/logger';
import { Faults } from '../faults';
import { createEkoSimulator, EKO_DEMAND_PATH, k2AuthHeader } from './server';

async function main(): Promise<void> {
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

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('eko simulator stopping', { signal });
    sim.close().then(
      () => {
        log.info('eko simulator stopped');
        process.exit(0);
      },
      (err) => {
        log.error('eko simulator did not stop cleanly', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: Error) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', component: 'eko-sim', msg: 'eko simulator failed to start', err: { name: err.name, message: err.message } })}\n`);
  process.exit(1);
});

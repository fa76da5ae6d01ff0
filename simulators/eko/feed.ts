/**
 * Sends demo loans to a running K2 as EKO would:  node dist/simulators/eko/feed.js --count 100 --seed 42
 * URLs come from the configuration: K2 at 127.0.0.1:K2_API_PORT, the ABS simulator at 127.0.0.1:ABS_SIM_PORT.
 */
import { loadConfig } from '../../config';
import { createLogger, logFatal } from '../../observability/logger';
import { feedDemoLoans } from './demo-feeder';
import { k2AuthHeader } from './server';

function readArgs(argv: string[]): { count: number; seed: number } {
  const args = { count: 10, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    if (flag !== '--count' && flag !== '--seed') throw new Error(`unknown argument ${argv[i]} (expected --count N --seed S)`);
    const raw = inline ?? argv[++i];
    if (raw === undefined || !/^\d+$/.test(raw)) throw new Error(`${flag}: expected a non-negative integer, got ${raw ?? 'nothing'}`);
    args[flag === '--count' ? 'count' : 'seed'] = Number(raw);
  }
  if (args.count < 1) throw new Error('--count: at least 1 loan');
  return args;
}

async function main(): Promise<void> {
  const { count, seed } = readArgs(process.argv.slice(2));
  const config = loadConfig();
  const log = createLogger('eko-feeder', config.logLevel);
  const contractNumbers = await feedDemoLoans({
    k2BaseUrl: `http://127.0.0.1:${config.api.port}`,
    k2AuthHeader: k2AuthHeader(config.api.auth),
    absSimUrl: `http://127.0.0.1:${config.simulators.absPort}`,
    count,
    seed,
    logger: log,
  });
  log.info('demo loans fed', { count: contractNumbers.length, seed, first: contractNumbers.slice(0, 5) });
}

main().catch((err: Error) => {
  logFatal('eko-feeder', 'feeding demo loans failed', err);
  process.exit(1);
});

/**
 * Benchmark: build + XSD-validate + zip GKB files of 10,000 and 50,000 contracts (50,000 = 5 files
 * at the 10,000-record package limit). Writes bench/reports/gkb-files.json.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/gkb-files.js      (or: npm run build first)
 *
 * Memory is sampled every 20 ms (process RSS, which includes the xmllint-wasm worker threads);
 * process.resourceUsage().maxRSS is reported too, but it is a process-lifetime peak.
 * "RSS growth 10k → 50k" is the difference of the two runs' sampled peaks: it should stay near
 * zero, since files are written record by record and validated one file (≤ 10,000 records) at a time.
 * A 2,000-contract warm-up run precedes the measured runs (warmupContracts, its rate reported apart).
 * Each size runs twice: as the demo builds (no payload keys: the XML a named file, the ZIP in clear)
 * and as production does (`atRest`: the XML with no name on disk, the ZIP encrypted on its way).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { mapDossierToContract, type ContractRecord } from '../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY } from '../domain/gkb/dossier';
import { writeBatchFiles } from '../integrations/gkb/batch-file';
import { sampleDossiers } from '../test/fixtures/gkb/sample-dossiers';

export interface GkbFilesRun {
  contracts: number;
  /** Built with a payload key, as production builds: the XML unnamed on disk, the ZIP encrypted. */
  atRest?: boolean;
  files: number;
  xmlBytes: number;
  zipBytes: number;
  totalMs: number;
  /** Producing records (mapping) and writing the XML. */
  buildMs: number;
  buildContractsPerSecond: number;
  validateMs: number;
  zipMs: number;
  contractsPerSecondEndToEnd: number;
  peakRssMiB: number;
  rssBeforeMiB: number;
  /** Peak of the main thread's JS heap + external memory (Buffers): what the code itself holds. */
  peakHeapPlusExternalMiB: number;
}

export interface GkbFilesReport {
  generatedAt: string;
  node: string;
  platform: string;
  cpus: number;
  runs: GkbFilesRun[];
  rssGrowth10kTo50kMiB: number;
  /** The same for the runs at rest. */
  rssGrowth10kTo50kAtRestMiB?: number;
  processMaxRssMiB: number;
  /** Contracts of the unreported warm-up run before the measured runs (JIT, validator start); 0 = none. */
  warmupContracts: number;
  /** Build rate of the warm-up run: what a cold process gets for its first contracts. */
  warmupBuildContractsPerSecond?: number;
}

const MiB = 1024 * 1024;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

function* records(count: number): Generator<ContractRecord> {
  for (const d of sampleDossiers(count)) {
    const r = mapDossierToContract(d, DEFAULT_GKB_DICTIONARY, { operation: 2, fileType: 1 });
    if (!r.ok) throw new Error(`sample dossier did not map: ${r.reason}`);
    yield r.record;
  }
}

/** A key of the bench's own, never stored: what config.payloadKeys gives a worker. */
const BENCH_KEY = { id: 'bench', key: randomBytes(32) };

async function runOnce(contracts: number, atRest = false): Promise<GkbFilesRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gkb-bench-'));
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed + m.external);
  };
  const sampler = setInterval(sample, 20);
  try {
    const started = performance.now();
    const files = await writeBatchFiles({ records: records(contracts), dir, baseName: `bench${contracts}`, ...(atRest ? { fileKeys: [BENCH_KEY] } : {}) });
    const totalMs = performance.now() - started;
    sample();
    const sum = (f: (x: (typeof files)[number]) => number) => files.reduce((a, x) => a + f(x), 0);
    const buildMs = sum((f) => f.timingsMs.write);
    return {
      contracts,
      ...(atRest ? { atRest } : {}),
      files: files.length,
      xmlBytes: sum((f) => f.xmlBytes),
      zipBytes: sum((f) => f.bytes),
      totalMs: round(totalMs),
      buildMs: round(buildMs),
      buildContractsPerSecond: Math.round(contracts / (buildMs / 1000)),
      validateMs: round(sum((f) => f.timingsMs.validate)),
      zipMs: round(sum((f) => f.timingsMs.zip)),
      contractsPerSecondEndToEnd: Math.round(contracts / (totalMs / 1000)),
      peakRssMiB: round(peak / MiB),
      rssBeforeMiB: round(rssBefore / MiB),
      peakHeapPlusExternalMiB: round(peakHeap / MiB),
    };
  } finally {
    clearInterval(sampler);
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runGkbFilesBench(sizes: readonly number[] = [10_000, 50_000], warmupContracts = 2_000): Promise<GkbFilesReport> {
  // Sizes are run in order in one process, after a small warm-up run (reported apart) so that the
  // first measured run does not also pay for JIT compilation of the mapping and XML code.
  const warmup = warmupContracts > 0 ? await runOnce(warmupContracts) : undefined;
  const runs: GkbFilesRun[] = [];
  for (const atRest of [false, true]) for (const n of sizes) runs.push(await runOnce(n, atRest));
  const growth = (atRest: boolean) => {
    const small = runs.find((r) => r.contracts === 10_000 && Boolean(r.atRest) === atRest);
    const large = runs.find((r) => r.contracts === 50_000 && Boolean(r.atRest) === atRest);
    return small && large ? round(large.peakRssMiB - small.peakRssMiB) : NaN;
  };
  const report: GkbFilesReport = {
    generatedAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: os.cpus().length,
    runs,
    rssGrowth10kTo50kMiB: growth(false),
    rssGrowth10kTo50kAtRestMiB: growth(true),
    processMaxRssMiB: round((process.resourceUsage().maxRSS * 1024) / MiB),
    warmupContracts: warmup ? warmupContracts : 0,
    ...(warmup ? { warmupBuildContractsPerSecond: warmup.buildContractsPerSecond } : {}),
  };
  const root = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../..' : '..');
  const out = path.join(root, 'bench', 'reports', 'gkb-files.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2) + '\n');
  return report;
}

if (require.main === module) {
  runGkbFilesBench().then(
    (report) => console.log(JSON.stringify(report, null, 2)),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}

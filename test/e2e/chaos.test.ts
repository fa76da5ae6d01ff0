/**
 * The chaos suite's short run (chaos/run.ts --short) on each topology: 80 cases for two minutes
 * under every fault kind (each worker SIGKILLed twice, the API killed mid-POST, Temporal restarted,
 * PostgreSQL restarted on the cluster, ABS, EKO and GKB faults, one GKB file with per-record errors),
 * then every check. Fails on any violation, naming the case; the report goes to artifacts/chaos/
 * (CI keeps artifacts/). The cluster is skipped, with the reason, only when its binaries are missing.
 * Processes from dist/ (scripts/test.sh builds it first).
 */
import path from 'node:path';
import { runChaos, SHORT } from '../../chaos/run';
import { repoRoot } from '../../scripts/system';
import { topologyUnavailable, TOPOLOGY_KINDS } from '../../scripts/topology';

const ARTIFACTS = path.join(repoRoot(), 'artifacts', 'chaos');
/** Start, the run, the settling (at most SHORT.settleMaxMs) and the checks. */
jest.setTimeout(SHORT.durationMs + SHORT.settleMaxMs + 8 * 60_000);

describe.each(TOPOLOGY_KINDS)('chaos, short run, %s topology', (kind) => {
  const skipReason = topologyUnavailable(kind);
  if (skipReason) console.warn(`chaos.test.ts (${kind}) skipped: ${skipReason}`);
  const it = skipReason ? test.skip : test;

  it('nothing lost, nothing issued twice, no GKB report twice, no case waiting without a reason', async () => {
    const lines: string[] = [];
    const { report, violations, files } = await runChaos(
      {
        topology: kind,
        cases: SHORT.cases,
        durationMs: SHORT.durationMs,
        seed: 20_260_300 + TOPOLOGY_KINDS.indexOf(kind),
        short: true,
        outDir: ARTIFACTS,
        settleMaxMs: SHORT.settleMaxMs,
        keepData: false,
      },
      (line) => lines.push(line),
    );
    // eslint-disable-next-line no-console
    console.log(`chaos (${kind}): ${report.passed ? 'passed' : 'FAILED'} in ${(report.runMs / 1000).toFixed(0)} s, report ${files.md}`);

    // Every fault of the timeline ran, none failed to run.
    expect(report.executed.filter((e) => e.error).map((e) => `${e.description}: ${e.error}`)).toEqual([]);
    expect(new Set(report.executed.map((e) => e.kind))).toEqual(
      new Set(['kill-worker', 'kill-api-mid-post', 'restart-temporal', 'set-faults', 'clear-faults', ...(kind === 'cluster' ? ['restart-postgres'] : [])]),
    );
    expect(report.counts?.load).toMatchObject({ contracts: SHORT.cases, givenUp: 0, cutOff: 1 });
    // The simulators' own journals show each fault at work.
    const counts = report.counts!;
    expect(counts.abs.byOutcome).toMatchObject({ http5xx: expect.any(Number), timeout: expect.any(Number) });
    expect(counts.eko.demandPosts['5xx']).toBeGreaterThan(0);
    expect(Object.values(counts.gkb.calls).some((byOutcome) => (byOutcome.ScbSystemFault ?? 0) > 0)).toBe(true);
    expect(counts.gkb.records.rejected).toBeGreaterThan(0);
    expect(report.settle.settled).toBe(true);
    expect(violations.map((v) => `${v.rule} ${v.workflowId ?? ''} ${v.contract ?? ''}: ${v.detail}`)).toEqual([]);
    expect(lines.length).toBeGreaterThan(0);
  });
});

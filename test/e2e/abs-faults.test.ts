/**
 * Acceptance run of the issue "ABS integration": 200 cases against the ABS simulator answering 30%
 * of its calls with HTTP 5xx all reach their payment demand, none of them ever in Needs attention,
 * and every case has exactly one demand reference.
 *
 * The whole system runs as real processes from dist/ (scripts/system.ts; scripts/test.sh builds
 * dist/ before jest). Retries are Temporal's, with the case workflow's policy (2 s, backoff 2, at
 * most 5 min apart), so the run's length is set by the unluckiest of the ~800 ABS calls: a call that
 * fails k times in a row waits 2·(2^k − 1) s (k = 7: 254 s, k = 8: 510 s, k = 9: 810 s), and with
 * 800 calls at 30% some call fails 7 times in about 1 run in 6 (800·0.3^7). Most runs take 2–3
 * minutes; the wait is bounded by K2_E2E_FAULTS_WAIT (default 15m, which only a call failing 10
 * times in a row exceeds: ~0.5% of runs) and the timings are printed either way.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { e2eSystem } from '../helpers/e2e-system';
import { generateLoans } from '../../domain/generate';
import { caseWorkflowId, CASE_STAGES, type CaseStatus } from '../../domain/case';
import { caseStatusQuery } from '../../workflows/definitions';
import { parseDuration } from '../../config';

const CASES = 200;
const FAULTS = 'abs.http5xx=0.3';
const WAIT_MS = parseDuration(process.env.K2_E2E_FAULTS_WAIT ?? '15m') ?? 15 * 60_000;
const QUERY_CONCURRENCY = 16;
const REFERENCE = /^PTP\d{11}$/;

jest.setTimeout(WAIT_MS + 5 * 60_000);

const e2e = e2eSystem('k2-e2e-abs-faults-');

/** Maps with at most `limit` calls in flight. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, json: await res.json() };
}

/** demand-issued and the stages after it short of closed (a case may already be reported to GKB). */
const AT_DEMAND = CASE_STAGES.slice(CASE_STAGES.indexOf('demand-issued'), CASE_STAGES.indexOf('closed'));
const reachedDemand = (s: CaseStatus | undefined) => s !== undefined && (AT_DEMAND as readonly string[]).includes(s.stage);

/** Whether the case's history ever set K2NeedsAttention to true (parking publishes it). */
function everNeededAttention(history: {
  events?: Array<{
    upsertWorkflowSearchAttributesEventAttributes?: {
      searchAttributes?: { indexedFields?: Record<string, { data?: Uint8Array | null } | undefined> | null } | null;
    } | null;
  }> | null;
}): boolean {
  return (history.events ?? []).some((e) => {
    const data = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.K2NeedsAttention?.data;
    return data != null && Buffer.from(data).toString('utf8').trim() === 'true';
  });
}

test(`${CASES} cases at 30% ABS 5xx all reach their demand, none needs attention, one reference each`, async () => {
  const t0 = Date.now();
  const { system, client, ports } = await e2e.start({ K2_API_AUTH: 'none', SIM_FAULTS: FAULTS, EKO_SIM_STATUS_DELAY: '1s' });
  const started = Date.now();

  // 200 valid loans, known to ABS through its loan book, then handed to K2 as EKO would.
  const loans = generateLoans(20_260_522, CASES);
  const contracts = loans.map((l) => l.contract_number);
  expect(new Set(contracts).size).toBe(CASES);
  const registered = await post(`http://127.0.0.1:${ports.abs}/_sim/loans`, loans);
  expect(registered).toMatchObject({ status: 200, json: { registered: CASES } });
  const accepted = await post(`http://127.0.0.1:${ports.api}/restapi/services/k2loan_from_eko`, loans);
  expect(accepted).toMatchObject({ status: 200, json: { error_code: 0 } });
  const posted = Date.now();

  const ids = contracts.map(caseWorkflowId);

  // Poll every case until all reached their demand; remember any that was ever seen in attention.
  const sawAttention = new Map<string, unknown>();
  const doneAt = new Map<string, number>();
  const deadline = posted + WAIT_MS;
  let last: Array<CaseStatus | undefined> = [];
  let rounds = 0;
  for (;;) {
    rounds += 1;
    const waiting = ids.filter((id) => !doneAt.has(id));
    const statuses = await mapLimit(
      waiting,
      QUERY_CONCURRENCY,
      (id) =>
        client.workflow
          .getHandle(id)
          .query(caseStatusQuery)
          .catch(() => undefined), // not started by the dispatcher yet
    );
    last = statuses;
    waiting.forEach((id, i) => {
      const s = statuses[i];
      if (s?.attention) sawAttention.set(id, s.attention);
      if (reachedDemand(s) && s!.demand?.reference) doneAt.set(id, Date.now());
    });
    if (doneAt.size === ids.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  const finished = Date.now();

  const byStage: Record<string, number> = {};
  for (const s of last) byStage[s?.stage ?? 'not started'] = (byStage[s?.stage ?? 'not started'] ?? 0) + 1;
  const durations = [...doneAt.values()].map((t) => t - posted).sort((a, b) => a - b);
  const pct = (p: number) => (durations.length ? Math.round(durations[Math.min(durations.length - 1, Math.floor((p / 100) * durations.length))] / 1000) : NaN);
  // eslint-disable-next-line no-console
  console.log(
    `abs-faults: ${doneAt.size}/${CASES} cases at their demand in ${((finished - posted) / 1000).toFixed(1)} s ` +
      `(system start ${((started - t0) / 1000).toFixed(1)} s, ${rounds} polling rounds; per case p50 ${pct(50)} s, p90 ${pct(90)} s, p99 ${pct(99)} s, max ${pct(100)} s); ` +
      `still waiting by stage: ${JSON.stringify(doneAt.size === CASES ? {} : byStage)}; seen in attention: ${sawAttention.size}`,
  );

  expect([...sawAttention.entries()]).toEqual([]);
  expect(ids.filter((id) => !doneAt.has(id))).toEqual([]);

  // Final state from the server: every case at its demand with a reference, none in attention.
  const finals = await mapLimit(ids, QUERY_CONCURRENCY, (id) => client.workflow.getHandle(id).query(caseStatusQuery));
  for (const s of finals) {
    expect(reachedDemand(s)).toBe(true);
    expect(s.attention).toBeUndefined();
    expect(s.demand?.reference).toMatch(REFERENCE);
  }
  expect(new Set(finals.map((s) => s.demand!.reference)).size).toBe(CASES);
  const finalStages: Record<string, number> = {};
  for (const s of finals) finalStages[s.stage] = (finalStages[s.stage] ?? 0) + 1;
  // eslint-disable-next-line no-console
  console.log(`abs-faults: final stages ${JSON.stringify(finalStages)}`);

  // Visibility (eventually consistent): once it shows every case at its demand, none of them is
  // marked as needing attention (both attributes are written by the same upsert).
  const visibleAt = Date.now() + 60_000;
  let atDemand = 0;
  while (
    (atDemand = Number((await client.workflow.count(`K2Stage IN (${AT_DEMAND.map((st) => `'${st}'`).join(', ')})`)).count)) < CASES &&
    Date.now() < visibleAt
  ) {
    await new Promise((r) => setTimeout(r, 1000));
  }
  expect(atDemand).toBe(CASES);
  expect(Number((await client.workflow.count(`K2NeedsAttention = true`)).count)).toBe(0);
  // And no case ever parked: a park always publishes K2NeedsAttention = true into the history.
  const histories = await mapLimit(ids, QUERY_CONCURRENCY, (id) => client.workflow.getHandle(id).fetchHistory());
  expect(ids.filter((_, i) => everNeededAttention(histories[i] as never))).toEqual([]);

  // The K2 database: exactly one demand per contract, each with its own reference.
  const sqlite = new Database(path.join(system.dataDir, 'k2.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const rows = sqlite.prepare('SELECT reference, contract_number, case_id, workflow_id FROM payment_demands').all() as Array<{
      reference: string;
      contract_number: string;
      case_id: string;
      workflow_id: string;
    }>;
    expect(rows).toHaveLength(CASES);
    expect(rows.every((r) => REFERENCE.test(r.reference))).toBe(true);
    expect(new Set(rows.map((r) => r.reference)).size).toBe(CASES);
    expect(rows.map((r) => r.contract_number).sort()).toEqual([...contracts].sort());
    expect(rows.every((r) => r.workflow_id === caseWorkflowId(r.contract_number) && r.case_id.startsWith(`${r.workflow_id}/`))).toBe(true);
    // The database and the cases agree on each reference.
    const refOf = new Map(rows.map((r) => [r.contract_number, r.reference]));
    expect(finals.map((s) => refOf.get(s.contractNumber))).toEqual(finals.map((s) => s.demand!.reference));
  } finally {
    sqlite.close();
  }

  // The simulator really did fail calls: the ABS simulator's faults are what was asked.
  const { faults } = (await (await fetch(`http://127.0.0.1:${ports.abs}/_sim/faults`)).json()) as { faults: Record<string, number> };
  expect(faults).toMatchObject({ http5xx: 0.3 });
});

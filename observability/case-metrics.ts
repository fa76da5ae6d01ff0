/**
 * The cases' gauges, read from Temporal visibility (the search attributes the case keeps,
 * workflows/search-attributes.ts), for the API's /metrics:
 *
 *   k2_cases{stage}                       running cases by K2Stage
 *   k2_cases_attention{reason}            running cases that need attention, by K2AttentionReason ("other": a code not in this list)
 *   k2_case_stage_oldest_seconds{stage}   how long the oldest running case of the stage has been in it (0: none)
 *
 * Counting: one `count` with GROUP BY when the server can (Elasticsearch visibility); SQL visibility
 * groups by ExecutionStatus only, so there it is one count per stage and per reason (the lists are
 * K2's own: CASE_STAGES, ATTENTION_CODES).
 *
 * The oldest case: visibility cannot order by a custom attribute, so it is found by counting: the
 * time t* of the oldest case is where `count(… AND K2StageSince < t)` turns from 0 to more; a search
 * from now backwards in growing steps brackets it, halving the bracket narrows it to 1% of the age
 * (at least a second). The bracket is kept: while it still holds, the next refresh costs two counts.
 * The age reported is now − the bracket's upper end, a lower bound (never older than true). A case
 * without K2StageSince (started before the case recorded it, or while the attribute is not
 * registered) counts from its run's StartTime instead.
 */
import type { Client } from '@temporalio/client';
import { ATTENTION_CODES, CASE_STAGES } from '../domain/case';
import type { Gauge, MetricsRegistry } from './metrics';

export const RUNNING_CASES = 'WorkflowType="caseWorkflow" AND ExecutionStatus="Running"';
/** The Datetime search attribute: when the case entered its current stage. */
export const STAGE_SINCE = 'K2StageSince';

/** A visibility datetime literal. */
export const visibilityTime = (ms: number): string => `"${new Date(ms).toISOString()}"`;
const quoted = (value: string): string => `"${value.replace(/["\\]/g, '')}"`;

// ---- the oldest, by counting --------------------------------------------------------------------

/** The oldest time lies in [lo, hi): nothing is before lo, something is before hi. */
export interface Bracket {
  lo: number;
  hi: number;
}

const FIRST_STEP_MS = 60_000;
const STEP_FACTOR = 4;
/** Nothing K2 keeps is older than this (the search gives up there). */
const FURTHEST_BACK_MS = 20 * 365 * 86_400_000;

/** Narrow enough: 1% of the age at the bracket's far end, at least a second. */
export function preciseEnough({ lo, hi }: Bracket, now: number): boolean {
  return hi - lo <= Math.max(1000, 0.01 * (now - lo));
}

/**
 * Brackets the earliest time t with countBefore(t) > 0 (countBefore counts the items before t and
 * grows with t), to preciseEnough; undefined when nothing is before now. `hint`, a bracket of an
 * earlier call, is verified first (two counts) and used when it still holds.
 */
export async function bracketOldest(countBefore: (t: number) => Promise<number>, now: number, hint?: Bracket): Promise<Bracket | undefined> {
  let bracket: Bracket | undefined;
  if (hint && hint.lo < hint.hi && hint.hi <= now && (await countBefore(hint.lo)) === 0 && (await countBefore(hint.hi)) > 0) bracket = { ...hint };
  if (!bracket) {
    if ((await countBefore(now)) === 0) return undefined;
    let hi = now;
    let step = FIRST_STEP_MS;
    for (;;) {
      const t = Math.max(now - step, now - FURTHEST_BACK_MS);
      if ((await countBefore(t)) === 0) {
        bracket = { lo: t, hi };
        break;
      }
      hi = t;
      if (t === now - FURTHEST_BACK_MS) return { lo: t, hi: t };
      step *= STEP_FACTOR;
    }
  }
  while (!preciseEnough(bracket, now)) {
    const mid = Math.floor((bracket.lo + bracket.hi) / 2);
    if ((await countBefore(mid)) > 0) bracket.hi = mid;
    else bracket.lo = mid;
  }
  return bracket;
}

/** Seconds since the earliest of the brackets' upper ends (a lower bound of the oldest's age); 0 when there is none. */
export function oldestAgeSeconds(now: number, brackets: ReadonlyArray<Bracket | undefined>): number {
  const his = brackets.filter((b): b is Bracket => b !== undefined).map((b) => b.hi);
  return his.length ? Math.max(0, Math.round((now - Math.min(...his)) / 1000)) : 0;
}

// ---- counting by value ----------------------------------------------------------------------------

export type CountQuery = (query: string) => Promise<{ count: number; groups: Array<{ count: number; groupValues: unknown[] }> }>;

/** The value of a group (the SDK gives each group's values as arrays of search attribute values). */
function groupValue(values: unknown[]): string | undefined {
  const v = Array.isArray(values[0]) ? values[0][0] : values[0];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Counts of `base` per value of `attribute`, for `values` (each present, 0 when none), and what the
 * total holds beyond them (`other`). `grouping.supported` is set to false after the server refused
 * GROUP BY, so later calls count value by value at once.
 */
export async function countByValue(
  count: CountQuery,
  base: string,
  attribute: string,
  values: readonly string[],
  grouping: { supported: boolean },
): Promise<{ byValue: Map<string, number>; other: number }> {
  const byValue = new Map(values.map((v) => [v, 0]));
  let total: number;
  let grouped = false;
  if (grouping.supported) {
    try {
      const answer = await count(`${base} GROUP BY ${attribute}`);
      total = answer.count;
      for (const g of answer.groups) {
        const v = groupValue(g.groupValues);
        if (v !== undefined && byValue.has(v)) byValue.set(v, g.count);
      }
      grouped = true;
    } catch (err) {
      if (!isRefusedQuery(err)) throw err;
      grouping.supported = false;
    }
  }
  if (!grouped) {
    total = (await count(base)).count;
    for (const v of values) byValue.set(v, (await count(`${base} AND ${attribute}=${quoted(v)}`)).count);
  }
  const known = [...byValue.values()].reduce((a, b) => a + b, 0);
  return { byValue, other: Math.max(0, total! - known) };
}

/** The server refused the query itself (INVALID_ARGUMENT, UNIMPLEMENTED), e.g. a GROUP BY SQL visibility cannot do. */
export function isRefusedQuery(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 3 || code === 12) return true;
  }
  return false;
}

// ---- the refresher's part -------------------------------------------------------------------------

export interface CaseMetricsOptions {
  /** Deadline of one visibility call. */
  callTimeoutMs?: number;
  clock?: () => number;
}

export interface CaseMetrics {
  /** Counts everything once and sets the gauges; throws when visibility cannot be read (the gauges keep their values). */
  refresh(): Promise<void>;
}

export function createCaseMetrics(registry: MetricsRegistry, client: Client, options: CaseMetricsOptions = {}): CaseMetrics {
  const cases = registry.gauge('k2_cases', 'Running cases by stage (K2Stage, from Temporal visibility).');
  const attention = registry.gauge('k2_cases_attention', 'Running cases that need attention, by reason (K2AttentionReason; "other": a code K2 does not list).');
  const oldest = registry.gauge(
    'k2_case_stage_oldest_seconds',
    `How long the oldest running case of each stage has been in it (${STAGE_SINCE}, else its run's StartTime; 0: none).`,
  );
  const clock = options.clock ?? Date.now;
  const timeoutMs = options.callTimeoutMs ?? 10_000;
  const grouping = { supported: true };
  const hints = new Map<string, Bracket | undefined>();

  const count: CountQuery = (query) => client.connection.withDeadline(Date.now() + timeoutMs, () => client.workflow.count(query));
  const countNumber = async (query: string) => (await count(query)).count;

  async function stageSinceRegistered(): Promise<boolean> {
    const answer = await client.connection.withDeadline(Date.now() + timeoutMs, () =>
      client.connection.operatorService.listSearchAttributes({ namespace: client.options.namespace }),
    );
    return Object.prototype.hasOwnProperty.call(answer.customAttributes ?? {}, STAGE_SINCE);
  }

  /** The oldest case of a stage: by K2StageSince, and by StartTime for cases without it. */
  async function oldestOfStage(stage: string, now: number, withSince: boolean): Promise<number> {
    const inStage = `${RUNNING_CASES} AND K2Stage=${quoted(stage)}`;
    const bySince = withSince
      ? await bracketOldest((t) => countNumber(`${inStage} AND ${STAGE_SINCE} < ${visibilityTime(t)}`), now, hints.get(`${stage}:since`))
      : undefined;
    const withoutSince = withSince ? `${inStage} AND ${STAGE_SINCE} IS NULL` : inStage;
    const byStart = await bracketOldest((t) => countNumber(`${withoutSince} AND StartTime < ${visibilityTime(t)}`), now, hints.get(`${stage}:start`));
    hints.set(`${stage}:since`, bySince);
    hints.set(`${stage}:start`, byStart);
    return oldestAgeSeconds(now, [bySince, byStart]);
  }

  return {
    async refresh() {
      const now = clock();
      const withSince = await stageSinceRegistered();
      const stages = await countByValue(count, RUNNING_CASES, 'K2Stage', CASE_STAGES, grouping);
      const reasons = await countByValue(count, `${RUNNING_CASES} AND K2NeedsAttention=true`, 'K2AttentionReason', ATTENTION_CODES, grouping);
      const ages = new Map<string, number>();
      for (const stage of CASE_STAGES) ages.set(stage, stages.byValue.get(stage) ? await oldestOfStage(stage, now, withSince) : 0);
      setAll(cases, 'stage', stages.byValue);
      setAll(attention, 'reason', reasons.byValue);
      attention.set(reasons.other, { reason: 'other' });
      setAll(oldest, 'stage', ages);
    },
  };
}

function setAll(gauge: Gauge, label: string, values: Map<string, number>): void {
  for (const [value, n] of values) gauge.set(n, { [label]: value });
}

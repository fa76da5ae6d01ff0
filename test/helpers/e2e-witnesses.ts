/**
 * Witnesses of an e2e run that do not take K2's word for it: EKO's own journal of the demands it
 * received (simulators/eko/journal.ts), the cases' histories on Temporal (case-histories.ts), and
 * the outbox rows in K2's database they are compared with. The judging functions are pure.
 */
import type { Client } from '@temporalio/client';
import type { Db } from '../../db';
import { caseWorkflowId, type CaseStatus } from '../../domain/case';
import { NEW_DEMAND_OUTCOMES, type DemandJournalEntry } from '../../simulators/eko/journal';
import { EKO_DEMAND_PATH, EKO_JOURNAL_PATH } from '../../simulators/eko/server';
import { caseStatusQuery } from '../../workflows/definitions';
import { caseItems } from './case-histories';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items`, at most `limit` at a time (queries and histories of hundreds of cases). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

// ---- EKO: one demand per contract and episode ---------------------------------------------------

/** Every demand POST the EKO simulator received (GET /_sim/journal). */
export async function ekoJournal(ekoUrl: string): Promise<DemandJournalEntry[]> {
  const res = await fetch(`${ekoUrl}${EKO_JOURNAL_PATH}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`EKO simulator journal: HTTP ${res.status}`);
  const body = (await res.json()) as { demands: DemandJournalEntry[]; dropped: number };
  if (body.dropped > 0) throw new Error(`EKO simulator journal dropped ${body.dropped} entries: it cannot witness this run`);
  return body.demands;
}

export interface DemandsJudged {
  /** Contract → its references EKO took as new demands. */
  newDemands: Map<string, string[]>;
  /** Contracts EKO took more than one new demand for (one episode per contract in these runs). */
  contractsWithSeveral: Record<string, string[]>;
  /** References EKO took as new more than once. */
  referencesTakenTwice: string[];
}

/** What EKO took as new demands, and what it took twice. */
export function judgeDemands(journal: readonly DemandJournalEntry[]): DemandsJudged {
  const newDemands = new Map<string, string[]>();
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const entry of journal) {
    if (!NEW_DEMAND_OUTCOMES.includes(entry.outcome) || !entry.contract_number || !entry.reference) continue;
    if (seen.has(entry.reference)) twice.add(entry.reference);
    seen.add(entry.reference);
    newDemands.set(entry.contract_number, [...(newDemands.get(entry.contract_number) ?? []), entry.reference]);
  }
  const contractsWithSeveral = Object.fromEntries([...newDemands].filter(([, refs]) => refs.length > 1));
  return { newDemands, contractsWithSeveral, referencesTakenTwice: [...twice] };
}

// ---- the outbox against the cases' histories ----------------------------------------------------

export interface OutboxRowSeen {
  id: number;
  contract: string;
  dispatched: boolean;
  stale: boolean;
  dead: boolean;
}

export async function outboxRows(db: Db): Promise<OutboxRowSeen[]> {
  const rows = await db('loan_outbox').orderBy('id').select('id', 'contract_number', 'dispatched_at', 'stale_reason', 'dead_at');
  return rows.map((r) => ({
    id: Number(r.id),
    contract: String(r.contract_number),
    dispatched: r.dispatched_at !== null,
    stale: r.stale_reason !== null,
    dead: r.dead_at !== null,
  }));
}

export interface ItemsJudged {
  /** Rows not handed over (still pending, or dead letters). */
  notDispatched: number[];
  /** Rows whose item never reached their case. */
  never: number[];
  /** Rows whose item reached their case more than once: id → times. */
  twice: Record<number, number>;
}

/** Each row handed over (not stale) must have reached its contract's case exactly once. */
export function judgeItems(rows: readonly OutboxRowSeen[], signalledByContract: ReadonlyMap<string, readonly number[]>): ItemsJudged {
  const judged: ItemsJudged = { notDispatched: [], never: [], twice: {} };
  for (const row of rows) {
    if (!row.dispatched || row.dead) {
      judged.notDispatched.push(row.id);
      continue;
    }
    if (row.stale) continue;
    const times = (signalledByContract.get(row.contract) ?? []).filter((seq) => seq === row.id).length;
    if (times === 0) judged.never.push(row.id);
    if (times > 1) judged.twice[row.id] = times;
  }
  return judged;
}

/** The acceptedSeq of every loanUpdated signal of each contract's case. */
export async function signalledByContract(client: Client, contracts: readonly string[]): Promise<Map<string, number[]>> {
  const items = await mapLimit(contracts, 8, (c) => caseItems(client, caseWorkflowId(c)));
  return new Map(contracts.map((c, i) => [c, items[i].signalled]));
}

/** Live outbox claims by owner (a dispatcher: host, pid, random part; api/dispatcher.ts dispatcherOwner). */
export async function claimsByOwner(db: Db): Promise<Map<string, number[]>> {
  const rows = await db('loan_outbox').whereNotNull('claimed_by').whereNull('dispatched_at').select('id', 'claimed_by');
  const owners = new Map<string, number[]>();
  for (const r of rows) owners.set(String(r.claimed_by), [...(owners.get(String(r.claimed_by)) ?? []), Number(r.id)]);
  return owners;
}

// ---- cases reaching their stage -----------------------------------------------------------------

export interface Settled {
  /** The last status of every case that answered, by workflow id. */
  statuses: Map<string, CaseStatus>;
  /** The cases not at their stage when the time was up (empty: all are). */
  waiting: string[];
}

/** Polls the cases' status until each passes `reached` or the time is up, querying only those not there yet. */
export async function settleCases(
  client: Client,
  workflowIds: readonly string[],
  reached: (workflowId: string, status: CaseStatus) => boolean,
  timeoutMs: number,
): Promise<Settled> {
  const statuses = new Map<string, CaseStatus>();
  let waiting = [...workflowIds];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answers = await mapLimit(waiting, 16, (id) =>
      client.workflow
        .getHandle(id)
        .query(caseStatusQuery)
        .catch(() => undefined),
    );
    waiting.forEach((id, i) => answers[i] && statuses.set(id, answers[i]!));
    waiting = waiting.filter((id) => !(statuses.has(id) && reached(id, statuses.get(id)!)));
    if (waiting.length === 0 || Date.now() > deadline) return { statuses, waiting };
    await sleep(1000);
  }
}

/** settleCases, failing with how the waiting cases stand when the time is up. */
export async function waitForCases(
  client: Client,
  workflowIds: readonly string[],
  reached: (workflowId: string, status: CaseStatus) => boolean,
  timeoutMs: number,
): Promise<Map<string, CaseStatus>> {
  const { statuses, waiting } = await settleCases(client, workflowIds, reached, timeoutMs);
  if (waiting.length)
    throw new Error(
      `${waiting.length} of ${workflowIds.length} cases not at their stage after ${timeoutMs} ms: ${JSON.stringify(standing(waiting, statuses))}, e.g. ${waiting.slice(0, 5).join(', ')}`,
    );
  return statuses;
}

/** EKO's summary of a demand (GET /eko/payment-demands: no personal data): its statuses as `PC1:delivered`. */
export interface EkoDemandSummary {
  reference: string;
  contract_number: string;
  state: string;
  sent: string[];
}

export async function ekoDemandList(ekoUrl: string): Promise<EkoDemandSummary[]> {
  const res = await fetch(`${ekoUrl}${EKO_DEMAND_PATH}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`EKO simulator demands: HTTP ${res.status}`);
  return (await res.json()) as EkoDemandSummary[];
}

/**
 * How cases stand, counted by stage/attention/demand status, and (with EKO's list) by what EKO did
 * with their demand's statuses: "delivered" there and not in the case points at the case, not at EKO.
 */
export function standing(
  workflowIds: readonly string[],
  statuses: ReadonlyMap<string, CaseStatus>,
  eko: readonly EkoDemandSummary[] = [],
): Record<string, number> {
  const byReference = new Map(eko.map((d) => [d.reference, d]));
  const counts: Record<string, number> = {};
  for (const id of workflowIds) {
    const s = statuses.get(id);
    const told = s?.demand && byReference.get(s.demand.reference);
    const key = !s
      ? 'no answer'
      : `${s.stage}/${s.attention?.code ?? '-'}/${s.demand?.status ?? '-'}${told ? ` (EKO: ${told.state}, ${told.sent.join(' ') || 'no status sent'})` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

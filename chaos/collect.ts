/**
 * Gathers the chaos run's facts from independent sources once the system has settled: K2's database
 * (outbox rows, demands, GKB records; db/*.ts tables, read only), each simulator's own journal
 * (GET /_sim/journal of ABS, EKO and the GKB sandbox, and EKO's demand summary), and Temporal
 * (visibility, each case's description, status query or result, and histories) through K2's client.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config';
import { createDb, type Db } from '../db';
import type { CaseStatus } from '../domain/case';
import { caseWorkflowId } from '../domain/case';
import { openConnection, temporalClient } from '../temporal/connection';
import { caseStatusQuery } from '../workflows/definitions';
import type { DemandJournalEntry } from '../simulators/eko/journal';
import type { GkbJournal } from '../simulators/gkb/sandbox';
import type { AbsJournal } from '../simulators/abs/server';
import type { RunningTopology } from '../scripts/topology';
import type { CaseFact, EkoDemandFact, Facts, PendingActivityFact } from './checks';
import type { LoadPlan, LoadRecord } from './load';

export interface Sources {
  db: Db;
  client: Client;
  simUrls: RunningTopology['simUrls'];
  close(): Promise<void>;
}

/** K2's database and Temporal as the topology's own processes reach them (its configuration, its payload keys). */
export async function openSources(topology: Pick<RunningTopology, 'env' | 'simUrls'>): Promise<Sources> {
  const config = loadConfig({ ...process.env, ...topology.env });
  const db = createDb(config.db);
  let connection: Connection | undefined;
  try {
    connection = await openConnection(config);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const client = temporalClient(config, connection);
  return {
    db,
    client,
    simUrls: topology.simUrls,
    async close() {
      await connection?.close();
      await db.destroy();
    },
  };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Maps with at most `limit` calls in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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

// ---------------------------------------------------------------------------------------------
// Settling

/** What still moves; all zero (twice in a row) means the system settled. */
export interface Unsettled {
  outboxPending: number;
  gkbRecordsOpen: number;
  demandsNotSent: number;
  ekoStatusRuns: number;
  casesBeforeDemand: number;
}

const EARLY_STAGES = ['received', 'client-checked', 'account-checked', 'evidence-collected'];

export async function unsettled(s: Sources): Promise<Unsettled> {
  const n = async (q: Promise<Array<Record<string, unknown>>>) => Number((await q)[0]?.n ?? 0);
  const [outboxPending, gkbRecordsOpen, demandsNotSent] = await Promise.all([
    n(s.db('loan_outbox').whereNull('dispatched_at').whereNull('dead_at').count({ n: '*' })),
    n(s.db('gkb_records').whereIn('state', ['queued', 'claimed']).count({ n: '*' })),
    // A demand issued and not sent because its case closed first (repaid meanwhile) will never be sent: not waited for
    // (it is withdrawn once its case records the closure; until then it is still issued).
    n(
      s
        .db('payment_demands as d')
        .where('d.status', 'issued')
        .whereNotExists(function closedAfter() {
          this.select(s.db.raw('1')).from('case_episodes as e').whereRaw('e.contract_number = d.contract_number').andWhereRaw('e.closed_at >= d.created_at');
        })
        .count({ n: '*' }),
    ),
  ]);
  const eko = await getJson<EkoDemandFact[]>(`${s.simUrls.eko}/eko/payment-demands`);
  const stages = EARLY_STAGES.map((st) => `K2Stage="${st}"`).join(' OR ');
  const early = await s.client.workflow.count(`WorkflowType="caseWorkflow" AND ExecutionStatus="Running" AND K2NeedsAttention=false AND (${stages})`);
  return { outboxPending, gkbRecordsOpen, demandsNotSent, ekoStatusRuns: eko.filter((d) => d.state === 'sending').length, casesBeforeDemand: early.count };
}

const isQuiet = (u: Unsettled) => Object.values(u).every((v) => v === 0);

/**
 * Waits until nothing moves (two readings in a row, `pollMs` apart), at most `maxMs`. A reading that
 * fails (a source still coming back) counts as not quiet.
 */
export async function waitUntilSettled(
  s: Sources,
  opts: { maxMs: number; pollMs?: number; log?: (line: string) => void },
): Promise<{ settled: boolean; tookMs: number; last?: Unsettled; lastError?: string }> {
  const started = Date.now();
  const pollMs = opts.pollMs ?? 10_000;
  let quietBefore = false;
  let last: Unsettled | undefined;
  let lastError: string | undefined;
  for (;;) {
    try {
      last = await unsettled(s);
      lastError = undefined;
      if (isQuiet(last) && quietBefore) return { settled: true, tookMs: Date.now() - started, last };
      quietBefore = isQuiet(last);
    } catch (err) {
      lastError = (err as Error).message;
      quietBefore = false;
    }
    if (Date.now() - started > opts.maxMs) return { settled: false, tookMs: Date.now() - started, last, lastError };
    opts.log?.(`settling: ${lastError ?? JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

// ---------------------------------------------------------------------------------------------
// The facts

async function caseFact(client: Client, contract: string, runs: number): Promise<CaseFact> {
  const workflowId = caseWorkflowId(contract);
  const handle = client.workflow.getHandle(workflowId);
  const fact: CaseFact = { workflowId, contract, status: 'NOT_FOUND', runs, pendingActivities: [] };
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const described = await handle.describe();
      fact.status = described.status.name;
      fact.pendingActivities = (described.raw.pendingActivities ?? []).map((p): PendingActivityFact => ({
        type: p.activityType?.name ?? '?',
        attempt: p.attempt ?? 0,
        ...(p.lastFailure?.message ? { lastFailure: p.lastFailure.message } : {}),
      }));
      if (fact.status === 'RUNNING') fact.caseStatus = await handle.query(caseStatusQuery);
      else if (fact.status === 'COMPLETED') fact.caseStatus = (await handle.result()) as CaseStatus;
      fact.readError = undefined;
      return fact;
    } catch (err) {
      const e = err as Error;
      if (e.name === 'WorkflowNotFoundError') return { ...fact, status: 'NOT_FOUND' };
      fact.readError = `${e.name}: ${e.message}`;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  return fact;
}

export async function collectFacts(s: Sources, plan: LoadPlan, load: LoadRecord): Promise<Facts> {
  const [outbox, demands, gkbRecords] = await Promise.all([
    s.db('loan_outbox').orderBy('id').select('id', 'contract_number', 'request_id', 'payload_sha256', 'dispatched_at', 'dead_at', 'stale_reason'),
    s.db('payment_demands').whereNotNull('reference').orderBy('id').select('reference', 'case_id', 'contract_number', 'status'),
    s.db('gkb_records').orderBy('id').select('report_key', 'contract_code', 'operation', 'state'),
  ]);
  const [ekoJournal, ekoDemands, gkb, abs] = await Promise.all([
    getJson<{ demands: DemandJournalEntry[] }>(`${s.simUrls.eko}/_sim/journal`),
    getJson<EkoDemandFact[]>(`${s.simUrls.eko}/eko/payment-demands`),
    getJson<GkbJournal>(`${s.simUrls.gkb}/_sim/journal`),
    getJson<AbsJournal>(`${s.simUrls.abs}/_sim/journal`),
  ]);

  const runs = new Map<string, number>();
  for await (const w of s.client.workflow.list({ query: 'WorkflowType="caseWorkflow"' })) runs.set(w.workflowId, (runs.get(w.workflowId) ?? 0) + 1);
  const contracts = new Set([...load.accepted.map((a) => a.loan.contract_number), ...[...runs.keys()].map((id) => id.replace(/^case-/, ''))]);
  const cases = await mapLimit([...contracts], 16, (contract) => caseFact(s.client, contract, runs.get(caseWorkflowId(contract)) ?? 0));

  return {
    plan,
    load,
    k2: {
      outbox: outbox.map((r) => ({
        id: Number(r.id),
        contract: r.contract_number,
        requestId: r.request_id,
        sha256: r.payload_sha256,
        dispatched: r.dispatched_at !== null,
        dead: r.dead_at !== null,
        ...(r.stale_reason ? { staleReason: r.stale_reason } : {}),
      })),
      demands: demands.map((d) => ({ reference: d.reference, caseId: d.case_id, contract: d.contract_number, status: d.status })),
      gkbRecords: gkbRecords.map((r) => ({ reportKey: r.report_key, contract: r.contract_code, operation: Number(r.operation), state: r.state })),
    },
    eko: { journal: ekoJournal.demands, demands: ekoDemands },
    gkb,
    abs,
    cases,
  };
}

/**
 * Writes the histories of the named cases (as Temporal holds them: payloads encrypted, no personal
 * data in clear) into `dir`, for replay and reading (README: download the history and replay it).
 */
export async function exportHistories(client: Client, workflowIds: readonly string[], dir: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  await mapLimit([...new Set(workflowIds)], 4, async (id) => {
    try {
      const history = await client.workflow.getHandle(id).fetchHistory();
      const file = path.join(dir, `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
      fs.writeFileSync(file, JSON.stringify(history));
      written.push(file);
    } catch {
      // A case that does not exist has no history: the violation says so already.
    }
  });
  return written;
}

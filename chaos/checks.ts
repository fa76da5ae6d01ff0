/**
 * The chaos run's checks: pure functions over the facts gathered from independent sources after
 * the system settled (chaos/collect.ts): what EKO's side sent and K2 answered 0 for (the load), K2's
 * database, each simulator's own journal, and Temporal (visibility, each case's status). Each rule
 * names the case and contract it finds wrong; the run fails on any violation.
 *
 * The rules (README "Chaos suite"):
 * - lost: every accepted item is in the outbox and dispatched (no dead letter, nothing pending); every
 *   contract has its case, which ended no other way than completing and holds the last accepted data;
 *   every status EKO delivered is in K2's database and in its case while the case is open;
 * - unexpected-stage: each case is in the stage its data calls for (repaid: closed; overdue: its demand
 *   issued and beyond; a demo scenario loan: where its scenario parks);
 * - double-demand: per contract no more demands than episodes (EKO's journal, and K2's database), no
 *   reference taken as new twice, none EKO received that K2 does not know, and none K2 marked sent that
 *   EKO never took;
 * - gkb-double-accepted: no report (contract and record content) accepted in more than one package (a
 *   report is known by its content: the load never brings a contract back to data it had, and repays a
 *   contract at most once, so two reports of one contract never have the same content);
 * - gkb-in-flight: no contract in two packages in flight at once (the sandbox's own detection);
 * - waiting-without-reason: every open case shows attention with its reason, runs an activity the Web
 *   UI shows, or waits for an external answer it names (waitingReason);
 * - partly-accepted: the POST cut off mid-flight was accepted whole or not at all.
 */
import type { CaseStatus } from '../domain/case';
import { NOTICE_CODES } from '../domain/case';
import { validateLoanItem, type EkoLoanItem, type Loan } from '../domain/loan';
import { loanDigest } from '../db/outbox';
import { demoScenarioOutcome } from '../simulators/eko/demo-scenarios';
import { NEW_DEMAND_OUTCOMES, type DemandJournalEntry } from '../simulators/eko/journal';
import type { GkbJournal } from '../simulators/gkb/sandbox';
import type { AbsJournal } from '../simulators/abs/server';
import type { AcceptedItem, ItemKind, LoadPlan, LoadRecord } from './load';

// ---------------------------------------------------------------------------------------------
// Facts

export interface PendingActivityFact {
  type: string;
  attempt: number;
  lastFailure?: string;
}

export interface CaseFact {
  workflowId: string;
  contract: string;
  /** Temporal's status of the newest run (RUNNING, COMPLETED, FAILED, TERMINATED, …), or NOT_FOUND. */
  status: string;
  /** Runs of the workflow id in visibility (continue-as-new makes more). */
  runs: number;
  /** The caseStatus query (running) or the result (completed). */
  caseStatus?: CaseStatus;
  pendingActivities: PendingActivityFact[];
  /** Why the status could not be read. */
  readError?: string;
}

export interface OutboxFact {
  id: number;
  contract: string;
  requestId: string;
  sha256: string;
  dispatched: boolean;
  dead: boolean;
  staleReason?: string;
}

export interface DemandFact {
  reference: string;
  caseId: string;
  contract: string;
  status: string;
}

export interface GkbRecordFact {
  reportKey: string;
  contract: string;
  operation: number;
  state: string;
}

/** The EKO simulator's summary of a demand it holds (GET /eko/payment-demands). */
export interface EkoDemandFact {
  reference: string;
  contract_number: string;
  state: string;
  /** "PC1:delivered", "PC3:refused", … */
  sent: string[];
}

export interface Facts {
  plan: LoadPlan;
  load: LoadRecord;
  k2: { outbox: OutboxFact[]; demands: DemandFact[]; gkbRecords: GkbRecordFact[] };
  eko: { journal: DemandJournalEntry[]; demands: EkoDemandFact[] };
  gkb: GkbJournal;
  abs: AbsJournal;
  cases: CaseFact[];
}

export type Rule = 'lost' | 'unexpected-stage' | 'double-demand' | 'gkb-double-accepted' | 'gkb-in-flight' | 'waiting-without-reason' | 'partly-accepted';

export interface Violation {
  rule: Rule;
  workflowId?: string;
  contract?: string;
  detail: string;
}

// ---------------------------------------------------------------------------------------------
// What the load asks of each contract

export interface Expectation {
  contract: string;
  /** The last item K2 accepted, normalized as K2 stores it. */
  last: Loan;
  lastKind: ItemKind;
  /** Overdue episodes the accepted items opened: 1, plus one per overdue item after a repayment. */
  episodes: number;
  /** Digests of every accepted item (as the outbox keeps them). */
  digests: string[];
}

/** The loan as K2 normalizes and stores it (api/app.ts validates, db/outbox.ts digests). */
export function normalized(item: EkoLoanItem): Loan {
  const checked = validateLoanItem(item, { absSystems: [item.system] });
  if (!checked.ok)
    throw new Error(`the load sent an invalid item for ${item.contract_number}: ${checked.problems.map((p) => `${p.field} ${p.reason}`).join('; ')}`);
  return checked.loan;
}

const isRepaid = (loan: Loan) => Number(loan.debt) === 0;

export function expectationsOf(accepted: readonly AcceptedItem[]): Map<string, Expectation> {
  const out = new Map<string, Expectation>();
  for (const item of accepted) {
    const loan = normalized(item.loan);
    const before = out.get(loan.contract_number);
    const digest = loanDigest(loan);
    if (!before) {
      out.set(loan.contract_number, { contract: loan.contract_number, last: loan, lastKind: item.kind, episodes: 1, digests: [digest] });
      continue;
    }
    const reopened = isRepaid(before.last) && !isRepaid(loan);
    if (!before.digests.includes(digest)) before.digests.push(digest);
    Object.assign(before, { last: loan, lastKind: item.kind, episodes: before.episodes + (reopened ? 1 : 0) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Waiting with a reason

/**
 * Why an open case waits, as an operator can see it (the Web UI's current details and pending
 * activities, the caseStatus query), or undefined when it waits for nothing it names: it needs
 * attention (code and reason), runs an activity (its attempts and last failure), or waits for an
 * external answer it names (GKB's result of its record; EKO's statuses of its demand, or EKO's next
 * item once everything is reported).
 */
export function waitingReason(s: CaseStatus, pending: readonly PendingActivityFact[]): string | undefined {
  if (s.attention) return `needs attention (${s.attention.code}): ${s.attention.reason}`;
  if (pending.length > 0)
    return pending.map((p) => `runs ${p.type} (attempt ${p.attempt}${p.lastFailure ? `, last failure: ${p.lastFailure}` : ''})`).join('; ');
  if (s.gkb.state === 'queued' && (s.stage === 'demand-issued' || s.stage === 'reported-to-gkb' || s.stage === 'closed'))
    return `waits for GKB's result of record ${s.gkb.recordId}`;
  if (s.stage === 'reported-to-gkb' && s.demand && s.demand.status !== 'issued') {
    return s.demand.status === 'PC3'
      ? `waits for EKO: demand ${s.demand.reference} is in the card index; the loan re-sent or repaid`
      : `waits for EKO's statuses of demand ${s.demand.reference} (${s.demand.status})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The rules

const AT_DEMAND = new Set(['demand-issued', 'reported-to-gkb']);
const isNotice = (code: string) => (NOTICE_CODES as readonly string[]).includes(code);

/** Contracts whose last record at the GKB sandbox ended rejected or not loaded: their case may rightly park in gkb-rejected. */
function gkbRejectedContracts(gkb: GkbJournal): Set<string> {
  const last = new Map<string, string | undefined>();
  for (const p of gkb.packages) for (const f of p.files) for (const r of f.records) last.set(r.contract.split('|')[0], r.outcome);
  return new Set([...last].filter(([, outcome]) => outcome === 'rejected' || outcome === 'not-loaded').map(([contract]) => contract));
}

function lostItems(facts: Facts, expected: Map<string, Expectation>, v: Violation[]): void {
  const inOutbox = new Set(facts.k2.outbox.map((r) => `${r.contract}#${r.sha256}`));
  for (const e of expected.values()) {
    for (const digest of e.digests) {
      if (!inOutbox.has(`${e.contract}#${digest}`))
        v.push({
          rule: 'lost',
          workflowId: `case-${e.contract}`,
          contract: e.contract,
          detail: `an item K2 answered 0 for is not in the outbox (payload sha256 ${digest.slice(0, 12)}…)`,
        });
    }
  }
  for (const r of facts.k2.outbox) {
    if (r.dead) v.push({ rule: 'lost', workflowId: `case-${r.contract}`, contract: r.contract, detail: `outbox row ${r.id} is a dead letter` });
    else if (!r.dispatched)
      v.push({
        rule: 'lost',
        workflowId: `case-${r.contract}`,
        contract: r.contract,
        detail: `outbox row ${r.id} was still not handed to Temporal after the run settled`,
      });
  }
}

function caseRules(facts: Facts, expected: Map<string, Expectation>, v: Violation[]): void {
  const byContract = new Map(facts.cases.map((c) => [c.contract, c]));
  const rejectedAtGkb = gkbRejectedContracts(facts.gkb);
  for (const e of expected.values()) {
    const id = `case-${e.contract}`;
    const fact = byContract.get(e.contract);
    const at = (rule: Rule, detail: string) => v.push({ rule, workflowId: id, contract: e.contract, detail });
    if (!fact || fact.status === 'NOT_FOUND') {
      at('lost', 'no case in Temporal for a loan K2 answered 0 for');
      continue;
    }
    if (fact.status !== 'RUNNING' && fact.status !== 'COMPLETED') {
      at('lost', `the case ended ${fact.status}`);
      continue;
    }
    const s = fact.caseStatus;
    if (!s) {
      at('lost', `the case's status cannot be read: ${fact.readError ?? 'no answer'}`);
      continue;
    }
    // A contract back overdue while its case closes: the item waits in the case as its next episode (shown in its status).
    const heldAsNext = s.nextEpisode?.debt === e.last.debt && s.nextEpisode.overdueDays === e.last.overdue_days;
    if (!heldAsNext && (s.debt !== e.last.debt || s.overdueDays !== e.last.overdue_days)) {
      at(
        'lost',
        `the case holds debt ${s.debt}, ${s.overdueDays} overdue days; the last item K2 accepted (${e.lastKind}) has debt ${e.last.debt}, ${e.last.overdue_days} days`,
      );
    }

    const parked = s.attention && !isNotice(s.attention.code) ? s.attention : undefined;
    const shown = `stage ${s.stage}${s.attention ? `, attention ${s.attention.code}: ${s.attention.reason}` : ''}, run ${fact.status.toLowerCase()}`;
    const scenario = demoScenarioOutcome(e.contract);
    if (scenario && scenario !== 'demand') {
      if (s.stage !== scenario.parksAt || s.attention?.code !== scenario.attention)
        at('unexpected-stage', `a demo scenario loan expected to park at ${scenario.parksAt} (${scenario.attention}); it shows ${shown}`);
      continue;
    }
    const gkbRejected = parked?.code === 'gkb-rejected' && rejectedAtGkb.has(e.contract);
    if (heldAsNext) {
      // The next episode starts once GKB accepts the closure; after the run settled it may wait only on a rejected closure (an operator's turn).
      if (!gkbRejected) at('unexpected-stage', `back overdue while closing: its next episode still waits, and GKB rejected no closure; it shows ${shown}`);
      continue;
    }
    if (isRepaid(e.last)) {
      const closed = s.stage === 'closed' && (fact.status === 'COMPLETED' ? s.closedReason === 'repaid' : gkbRejected);
      if (!closed) at('unexpected-stage', `repaid (debt 0): expected closed; it shows ${shown}`);
      continue;
    }
    if (fact.status !== 'RUNNING' || !AT_DEMAND.has(s.stage) || !s.demand?.reference) {
      at(
        'unexpected-stage',
        `overdue: expected its demand issued and beyond; it shows ${shown}${s.demand ? `, demand ${s.demand.reference} ${s.demand.status}` : ', no demand'}`,
      );
    } else if (parked && !gkbRejected) {
      at('unexpected-stage', `overdue with its demand, but parked: ${parked.code}: ${parked.reason}`);
    }
  }
  for (const fact of facts.cases) {
    if (fact.status !== 'RUNNING' || !fact.caseStatus) continue;
    if (waitingReason(fact.caseStatus, fact.pendingActivities) === undefined) {
      const s = fact.caseStatus;
      v.push({
        rule: 'waiting-without-reason',
        workflowId: fact.workflowId,
        contract: fact.contract,
        detail: `open at stage ${s.stage}, no attention, no activity running, GKB ${s.gkb.state}, demand ${s.demand ? `${s.demand.reference} ${s.demand.status}` : 'none'}`,
      });
    }
  }
}

/**
 * Every status EKO delivered (K2 answered 0) is recorded in K2's database, and an open case working
 * that demand shows it. A case that closed before its statuses came does not: K2 records them in the
 * database only (api/app.ts), so a completed case is judged by its database row.
 */
function statusRules(facts: Facts, v: Violation[]): void {
  const open = new Map(facts.cases.filter((c) => c.status === 'RUNNING' && c.caseStatus?.demand).map((c) => [c.caseStatus!.demand!.reference, c]));
  const recorded = new Map(facts.k2.demands.map((d) => [d.reference, d.status]));
  const shows = (status: string | undefined, code: string) => status === code || (code === 'PC1' && status === 'PC3');
  for (const d of facts.eko.demands) {
    const at = (detail: string, workflowId = `case-${d.contract_number}`) => v.push({ rule: 'lost', workflowId, contract: d.contract_number, detail });
    if (d.state === 'gave_up') {
      at(`EKO gave up delivering the statuses of demand ${d.reference} to K2 (${d.sent.join(', ')})`);
      continue;
    }
    const delivered = ['PC3', 'PC1'].find((code) => d.sent.includes(`${code}:delivered`));
    if (!delivered) continue;
    if (!shows(recorded.get(d.reference), delivered))
      at(`EKO delivered ${delivered} of demand ${d.reference}; K2's database holds ${recorded.get(d.reference) ?? 'no such demand'}`);
    const fact = open.get(d.reference);
    if (fact && !shows(fact.caseStatus!.demand!.status, delivered))
      at(`EKO delivered ${delivered} of demand ${d.reference}; the open case shows ${fact.caseStatus!.demand!.status}`, fact.workflowId);
  }
}

function demandRules(facts: Facts, expected: Map<string, Expectation>, v: Violation[]): void {
  const isNew = (e: DemandJournalEntry) => NEW_DEMAND_OUTCOMES.includes(e.outcome) && e.reference !== undefined;
  const taken = facts.eko.journal.filter(isNew);
  const k2ByReference = new Map(facts.k2.demands.map((d) => [d.reference, d]));

  const timesNew = new Map<string, number>();
  for (const e of taken) timesNew.set(e.reference!, (timesNew.get(e.reference!) ?? 0) + 1);
  const refsByContract = new Map<string, Set<string>>();
  const refsByEpisode = new Map<string, Set<string>>();
  for (const e of taken) {
    const contract = e.contract_number ?? '?';
    refsByContract.set(contract, (refsByContract.get(contract) ?? new Set()).add(e.reference!));
    if (e.episode !== undefined) refsByEpisode.set(`${contract}#${e.episode}`, (refsByEpisode.get(`${contract}#${e.episode}`) ?? new Set()).add(e.reference!));
  }
  for (const [reference, n] of timesNew) {
    if (n > 1) {
      const contract = taken.find((e) => e.reference === reference)?.contract_number;
      v.push({ rule: 'double-demand', workflowId: `case-${contract}`, contract, detail: `EKO took demand ${reference} as new ${n} times` });
    }
  }
  for (const [contract, refs] of refsByContract) {
    const episodes = expected.get(contract)?.episodes ?? 1;
    if (refs.size > episodes)
      v.push({
        rule: 'double-demand',
        workflowId: `case-${contract}`,
        contract,
        detail: `EKO received ${refs.size} demands (${[...refs].join(', ')}) for ${episodes} overdue episode(s)`,
      });
  }
  for (const [key, refs] of refsByEpisode) {
    if (refs.size > 1) {
      const contract = key.split('#')[0];
      v.push({
        rule: 'double-demand',
        workflowId: `case-${contract}`,
        contract,
        detail: `EKO received ${refs.size} demands (${[...refs].join(', ')}) for one episode (${key.slice(contract.length + 1)})`,
      });
    }
  }
  for (const e of taken) {
    const k2 = k2ByReference.get(e.reference!);
    if (!k2 || k2.contract !== e.contract_number) {
      v.push({
        rule: 'double-demand',
        workflowId: `case-${e.contract_number}`,
        contract: e.contract_number,
        detail: `EKO holds demand ${e.reference} that K2's database ${k2 ? `issued for contract ${k2.contract}` : 'has no record of'}`,
      });
    }
  }
  // K2's own count: a closed case's next episode is a new run (or, while closing, the next episode of the run); either way one demand each.
  const k2ByContract = new Map<string, string[]>();
  for (const d of facts.k2.demands) k2ByContract.set(d.contract, [...(k2ByContract.get(d.contract) ?? []), d.reference]);
  for (const [contract, refs] of k2ByContract) {
    const episodes = expected.get(contract)?.episodes ?? 1;
    if (refs.length > episodes)
      v.push({
        rule: 'double-demand',
        workflowId: `case-${contract}`,
        contract,
        detail: `K2 issued ${refs.length} demands (${refs.join(', ')}) for ${episodes} overdue episode(s)`,
      });
  }
  const refsByCaseKey = new Map<string, string[]>();
  for (const d of facts.k2.demands) refsByCaseKey.set(d.caseId, [...(refsByCaseKey.get(d.caseId) ?? []), d.reference]);
  for (const [caseId, refs] of refsByCaseKey) {
    if (refs.length > 1)
      v.push({
        rule: 'double-demand',
        workflowId: caseId.split('/')[0],
        detail: `K2 issued ${refs.length} demands (${refs.join(', ')}) for one episode key ${caseId}`,
      });
  }
  const takenRefs = new Set(taken.map((e) => e.reference));
  for (const d of facts.k2.demands) {
    // issued: not sent yet; withdrawn: its case closed before sending it (db/demands.ts). EKO must have every other one.
    if (d.status !== 'issued' && d.status !== 'withdrawn' && !takenRefs.has(d.reference))
      v.push({
        rule: 'lost',
        workflowId: `case-${d.contract}`,
        contract: d.contract,
        detail: `K2 marked demand ${d.reference} ${d.status}, but EKO never took it`,
      });
  }
}

function gkbRules(facts: Facts, v: Violation[]): void {
  const accepted = new Map<string, Array<{ packageId: string; packageName: string; outcome: string }>>();
  for (const p of facts.gkb.packages) {
    for (const f of p.files) {
      for (const r of f.records) {
        if (r.outcome !== 'created' && r.outcome !== 'updated' && r.outcome !== 'skipped') continue;
        const key = `${r.contract}#${r.recordHash}`;
        accepted.set(key, [...(accepted.get(key) ?? []), { packageId: p.packageId, packageName: p.packageName, outcome: r.outcome }]);
      }
    }
  }
  for (const [key, packages] of accepted) {
    if (packages.length < 2) continue;
    const contract = key.split('|')[0];
    v.push({
      rule: 'gkb-double-accepted',
      workflowId: `case-${contract}`,
      contract,
      detail: `the same report (record ${key.split('#')[1]}) was accepted in ${packages.length} packages: ${packages.map((p) => `${p.packageId} ${p.packageName} (${p.outcome})`).join(', ')}`,
    });
  }
  for (const c of facts.gkb.inFlightConflicts) {
    const contract = c.contract.split('|')[0];
    v.push({
      rule: 'gkb-in-flight',
      workflowId: `case-${contract}`,
      contract,
      detail: `package ${c.packageId} (${c.packageName}) was uploaded at ${c.at} holding the contract while package ${c.otherPackageId} (${c.otherPackageName}) still held it`,
    });
  }
}

function cutOffRules(facts: Facts, v: Violation[]): void {
  for (const request of facts.load.requests) {
    if (!request.interrupted) continue;
    const items = facts.plan.steps[request.step].items.map((i) => normalized(i.loan));
    const wanted = new Set(items.map((l) => `${l.contract_number}#${loanDigest(l)}`));
    const byRequest = new Map<string, number>();
    for (const r of facts.k2.outbox) if (wanted.has(`${r.contract}#${r.sha256}`)) byRequest.set(r.requestId, (byRequest.get(r.requestId) ?? 0) + 1);
    for (const [requestId, n] of byRequest) {
      if (n !== items.length)
        v.push({
          rule: 'partly-accepted',
          detail: `request ${requestId} holds ${n} of the ${items.length} loans of the POST cut off by killing ${request.interrupted.target}`,
        });
    }
  }
}

/** Every rule over the facts; an empty list means the run kept every promise. */
export function checkFacts(facts: Facts): Violation[] {
  const expected = expectationsOf(facts.load.accepted);
  const v: Violation[] = [];
  lostItems(facts, expected, v);
  caseRules(facts, expected, v);
  statusRules(facts, v);
  demandRules(facts, expected, v);
  gkbRules(facts, v);
  cutOffRules(facts, v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Counts for the report

const tally = <T>(items: readonly T[], key: (t: T) => string | undefined): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const i of items) {
    const k = key(i) ?? '(none)';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

export function countFacts(facts: Facts) {
  const records = facts.gkb.packages.flatMap((p) => p.files.flatMap((f) => f.records));
  const absByOutcome: Record<string, number> = {};
  for (const byOutcome of Object.values(facts.abs.calls)) for (const [k, n] of Object.entries(byOutcome)) absByOutcome[k] = (absByOutcome[k] ?? 0) + (n ?? 0);
  return {
    load: {
      contracts: new Set(facts.load.accepted.map((a) => a.loan.contract_number)).size,
      acceptedItems: tally(facts.load.accepted, (a) => a.kind),
      requests: facts.load.requests.length,
      attempts: facts.load.requests.reduce((n, r) => n + r.attempts.length, 0),
      retriedRequests: facts.load.requests.filter((r) => r.attempts.length > 1).length,
      givenUp: facts.load.givenUp,
      cutOff: facts.load.requests.filter((r) => r.interrupted).length,
    },
    k2: {
      outboxRows: facts.k2.outbox.length,
      stale: tally(
        facts.k2.outbox.filter((r) => r.staleReason),
        (r) => r.staleReason,
      ),
      deadLetters: facts.k2.outbox.filter((r) => r.dead).length,
      notDispatched: facts.k2.outbox.filter((r) => !r.dispatched && !r.dead).length,
      demandsByStatus: tally(facts.k2.demands, (d) => d.status),
      gkbRecordsByState: tally(facts.k2.gkbRecords, (r) => r.state),
    },
    cases: {
      byTemporalStatus: tally(facts.cases, (c) => c.status),
      byStage: tally(facts.cases, (c) => c.caseStatus?.stage),
      byAttention: tally(
        facts.cases.filter((c) => c.caseStatus?.attention),
        (c) => c.caseStatus?.attention?.code,
      ),
      runs: facts.cases.reduce((n, c) => n + c.runs, 0),
      secondEpisodes: facts.cases.filter((c) => (c.caseStatus?.episode ?? 1) > 1).length,
    },
    eko: {
      demandPosts: tally(facts.eko.journal, (e) => e.outcome),
      demandsHeld: facts.eko.demands.length,
      statusRuns: tally(facts.eko.demands, (d) => d.state),
    },
    gkb: {
      uploads: tally(facts.gkb.uploads, (u) => u.outcome),
      packages: facts.gkb.packages.length,
      records: tally(records, (r) => r.outcome ?? 'processing'),
      inFlightConflicts: facts.gkb.inFlightConflicts.length,
      calls: facts.gkb.calls,
    },
    abs: { calls: facts.abs.total, byOutcome: absByOutcome },
  };
}

export type Counts = ReturnType<typeof countFacts>;

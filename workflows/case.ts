/**
 * The case workflow: one overdue loan, from receipt to closure (DOMAIN.md §2).
 *
 * Shape: a fixed sequence of stages. Each stage is retried by Temporal while trouble is transient
 * (up to the configured horizon) and otherwise *parks* the case in Needs attention with a readable
 * reason, until an operator acts, EKO re-sends the loan with new data, or a re-check timer fires.
 * Closing (debt repaid, or an operator) can happen at any point between stages or while parked.
 * Notices (GKB created a new contract, GKB's result is late) are attention that does not stop the case.
 *
 * Determinism: no clocks but workflow time, no I/O; everything external is an activity. The rules
 * (what a failure means, which item is newer, what an operator may ask) are in ./case-rules.ts.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  ContinueAsNew,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CaseActivities, AbsBusiness } from '../activities';
import type { GkbActivities, GkbRecordResult } from '../activities/gkb';
import {
  Attention,
  CaseInput,
  CaseStage,
  CASE_STAGES,
  CaseStatus,
  CarriedCaseState,
  DemandInfo,
  DemandStatusCode,
  DisbursementLine,
  findDisbursementLine,
  findLoanAccount,
  gkbDossierOf,
  GkbPending,
  kazakhstanDate,
  LoanMeta,
  OperatorAction,
} from '../domain/case';
import type { Loan } from '../domain/loan';
import { isZeroMoney } from '../domain/money';
import { SEARCH_ATTRIBUTES } from './search-attributes';
import { patchWouldApply } from './patch-peek';
import {
  acceptedText,
  afterApplying,
  attentionFor,
  CallFailed,
  CallGroup,
  caseKeyOf,
  gkbWaitLeftMs,
  isStaleItem,
  operatorActionProblem,
  Parking,
  parkingFor,
  shownAttention,
  stageSinceAtStart,
  withNotice,
  withoutNotice,
  withEarlyStatus,
  earlyStatusesFor,
  type EarlyDemandStatus,
} from './case-rules';

import { caseStatusQuery, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal, operatorUpdate } from './definitions';

export { caseStatusQuery, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal, operatorUpdate };

export { SEARCH_ATTRIBUTES };

/** Calls added in issue 12 by the activities' owners, declared here too so the case states what it needs of them. */
interface Issue12Calls {
  /** The statement's disbursement line at the agreement date in the loan's currency (null: none); only that line enters history. */
  fetchDisbursementLine(iban: string, date: string, currency: string): Promise<AbsBusiness<DisbursementLine | null>>;
  /** Tells the outbox the episode is over, so it ignores items not newer than what the case applied (activities/episodes.ts). */
  closeEpisode(input: { contractNumber: string; workflowId: string; appliedSeq?: number; lastOverdueSeq?: number }): Promise<void>;
}

/** Everything the case calls: K2's own database, ABS, EKO, the GKB queue. */
type Calls = CaseActivities & GkbActivities & Issue12Calls;

type Outcome<T> = { value: T } | { park: Parking & { recheckMs?: number } };

/**
 * Patch 'case-right-on-every-path' (issue 12), decided once at the start of a run: runs started
 * before it (and replays of their histories) never take any of its paths; new runs, and runs
 * that continue as new after the deploy, take all of them:
 * - every wait checks continue-as-new (the re-report path and the wait for a GKB result too);
 *   a record queued at GKB, its results, attention and seqs are carried across;
 * - outbox items older than the newest applied are ignored; the closed episode is reported
 *   (closeEpisode) and a newer overdue item that came while closing starts the next episode;
 * - GKB notices (gkb-new-contract, gkb-waiting), skipped records shown as accepted;
 * - local attempts time out after settings.localAttemptMs; only the disbursement line enters history.
 */
export const RULES_PATCH = 'case-right-on-every-path';
/**
 * Patch 'case-stage-since' (issue 16), decided once at the start of a run: the case also publishes
 * K2StageSince (when it entered its current stage) and K2AbsSystem (the loan's ABS system) with its
 * stage, for `k2 case list --stuck-for` and `--abs-system`. Runs started before it publish neither
 * (a continued run of theirs does not know its stage's moment either: it publishes K2StageSince at
 * its next stage).
 */
export const STAGE_SINCE_PATCH = 'case-stage-since';
/**
 * Patch 'case-early-demand-status', decided once at the start of a run: a demand status that arrives
 * before the case knows its demand is kept and applied once issueDemand names that reference. It
 * happens when a worker dies after EKO accepted the demand but before its workflow task completed:
 * EKO's statuses are in history before the next worker's repeat of issueDemand (same reference),
 * and its sendDemand is then only a repeat at EKO, which sends no statuses again. Runs started
 * before the patch drop such statuses, as they did.
 */
export const EARLY_DEMAND_STATUS_PATCH = 'case-early-demand-status';
/**
 * Patch 'case-baseline-2026-12', decided first at the start of a run: a run since it takes every
 * patch of the case workflow before it ('case-local-first', the three above, and
 * 'gkb-report-on-update') and records this one marker instead of theirs. Each patch a run takes
 * costs its history a marker and the TemporalChangeVersion upsert the SDK adds to it, and every
 * upsert is a visibility write (bench/README.md, "topology"). A run started before it finds no
 * such marker in its history and asks each older patch as it did.
 */
export const BASELINE_PATCH = 'case-baseline-2026-12';

/** The paths a run takes, decided once at its start (older cases replay as they ran). */
interface CasePatches {
  /** Whether the run started on or after the baseline, which takes every older patch. */
  baseline: boolean;
  localFirst: boolean;
  rules: boolean;
  stageSince: boolean;
  earlyStatuses: boolean;
}

function patchesOfRun(): CasePatches {
  if (patched(BASELINE_PATCH)) return { baseline: true, localFirst: true, rules: true, stageSince: true, earlyStatuses: true };
  return {
    baseline: false,
    localFirst: patched('case-local-first'),
    rules: patched(RULES_PATCH),
    stageSince: patched(STAGE_SINCE_PATCH),
    earlyStatuses: patched(EARLY_DEMAND_STATUS_PATCH),
  };
}
const DEFAULT_LOCAL_ATTEMPT_MS = 3000;
const DEFAULT_GKB_RESULT_HORIZON_MS = 3 * 24 * 3600_000;
/** Events one workflow task may add after the history length it started with (signals' handling, markers, upserts, the continue-as-new). */
const CONTINUE_AS_NEW_MARGIN = 20;

export async function caseWorkflow(input: CaseInput): Promise<CaseStatus> {
  const { settings } = input;
  const carried: CarriedCaseState = input.carried ?? { stage: 'received', gkb: { state: 'not-reported' }, gkbReports: 0, updates: 0 };
  const episode = input.episode ?? 1;
  const state = {
    stage: carried.stage,
    client: carried.client,
    disbursement: carried.disbursement,
    scan: carried.scan,
    demand: carried.demand,
    gkb: carried.gkb,
    gkbReports: carried.gkbReports,
    gkbReported: carried.gkbReported,
    updates: carried.updates,
    gkbPending: carried.gkbPending,
    loan: input.loan,
    /** The attention of the stage parked right now. */
    attention: undefined as Attention | undefined,
    /** The attention of the stage that parked last, until it succeeds: a re-park for the same reason keeps its `since`. */
    lastParked: carried.attention,
    notices: carried.notices ?? [],
    closeRequested: undefined as undefined | 'repaid' | 'operator',
    /** Bumped by anything that may unblock a parked stage (new loan data, an operator's retry). */
    resumeToken: 0,
    /** GKB results received, by record id (a batch may deliver one twice). */
    gkbResults: new Map<string, GkbRecordResult>((carried.gkbResults ?? []).map((r) => [r.recordId, r])),
    appliedSeq: carried.appliedSeq ?? input.meta?.acceptedSeq,
    lastOverdueSeq: carried.lastOverdueSeq ?? (input.meta && !isZeroMoney(input.loan.debt) ? input.meta.acceptedSeq : undefined),
    /** A newer overdue item that arrived after the case decided to close: the contract's next episode. */
    nextEpisode: undefined as undefined | { loan: Loan; meta: LoanMeta },
    /** Demand statuses that came before the demand was known (patch 'case-early-demand-status'). */
    earlyStatuses: (carried.earlyDemandStatuses ?? []) as EarlyDemandStatus[],
  };
  const info = workflowInfo();
  /** The key of this episode's demand and GKB reports in K2's database. */
  const caseId = caseKeyOf(info.workflowId, info.firstExecutionRunId, episode);

  const abs = proxyActivities<Calls>({
    startToCloseTimeout: '2 minutes',
    // Transient ABS trouble is retried with backoff for as long as the horizon allows, then parks.
    // The interval stops growing at a minute: a flaky ABS should not hold a case for long after it recovers.
    scheduleToCloseTimeout: settings.absHorizonMs,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  const k2 = proxyActivities<Calls>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  const eko = proxyActivities<Calls>({
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: settings.absHorizonMs,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
  });
  /** The options of each integration; the GKB queue is K2's database, with its options. */
  const regular: Record<CallGroup, Calls> = { abs, eko, k2, 'gkb-queue': k2 };

  /**
   * Since the patch 'case-local-first' (older cases replay as they ran): every call is short, so
   * it runs first as a local activity, inside the workflow task. A case then normally reaches its
   * demand and its GKB queue in one workflow task, where each regular activity costs Temporal a
   * task to schedule, dispatch and record and one more workflow task; in a burst of 50,000 cases
   * that work is what slows their start (bench/README.md). Only when the quick attempts fail
   * transiently does the call go to its regular activity above, with the full retry horizon,
   * which the Web UI shows as a pending activity with its attempts and last error, the place an
   * operator looks when a case hangs. A local call's result is in history as a marker.
   */
  const patches = patchesOfRun();
  const { localFirst, rules, stageSince: stageSincePublished, earlyStatuses: keepsEarlyStatuses } = patches;
  const quick = proxyLocalActivities<Calls>({
    // Below the HTTP timeouts: a slow ABS moves on to the regular activity instead of holding a workflow-task slot.
    startToCloseTimeout: rules ? (settings.localAttemptMs ?? DEFAULT_LOCAL_ATTEMPT_MS) : '10 seconds',
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
  });
  /** One call to an integration; its failure carries the integration (CallFailed) for parkingFor. */
  async function call<K extends keyof Calls>(via: CallGroup, name: K, ...args: Parameters<Calls[K]>): Promise<Awaited<ReturnType<Calls[K]>>> {
    type Fn = (...a: Parameters<Calls[K]>) => Promise<Awaited<ReturnType<Calls[K]>>>;
    if (localFirst) {
      try {
        return await (quick[name] as Fn)(...args);
      } catch (err) {
        if (!failedTransiently(err)) throw new CallFailed(via, err);
        log.info('quick attempts failed transiently; the call goes on as a regular activity', { activity: name });
      }
    }
    flushSearchAttributes();
    try {
      return await (regular[via][name] as Fn)(...args);
    } catch (err) {
      throw new CallFailed(via, err);
    }
  }

  const reached = (stage: CaseStage) => CASE_STAGES.indexOf(state.stage) >= CASE_STAGES.indexOf(stage);
  const moveTo = (stage: CaseStage) => {
    state.stage = stage;
    if (stageSincePublished) stageSince = new Date();
    publish();
  };
  const nowIso = () => new Date().toISOString();
  const shown = () => shownAttention(state.attention, state.notices);

  /**
   * What the Web UI shows as the case's current details: what it is, where it is and why, for the
   * operator (no personal data). The first line repeats the start's static summary, which a
   * continue-as-new cannot carry (this SDK's continueAsNew has no summary option).
   */
  function refreshDetails() {
    const lines = [
      `**Overdue loan** ${state.loan.contract_number} (${state.loan.system})${episode > 1 ? `, episode ${episode}` : ''}`,
      `**Stage:** ${state.stage}`,
    ];
    const attention = shown();
    if (attention) lines.push(`**Needs attention** (${attention.code}, since ${attention.since}): ${attention.reason}`);
    for (const notice of state.notices) if (notice !== attention) lines.push(`**Notice** (${notice.code}, since ${notice.since}): ${notice.reason}`);
    if (state.demand) lines.push(`**Demand:** ${state.demand.reference}, ${state.demand.status}`);
    const gkb = state.gkb;
    lines.push(
      `**GKB:** ${gkb.state}${'recordId' in gkb ? ` (record ${gkb.recordId})` : ''}${'message' in gkb ? `: ${gkb.message}` : ''}${'reason' in gkb ? `: ${gkb.reason}` : ''}`,
    );
    if (state.closeRequested) lines.push(`**Closing:** ${state.closeRequested}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  // A case the dispatcher started carries K2Stage 'received' from its start; a continued run carries its predecessor's.
  const startedWith = info.typedSearchAttributes;
  /** When the case entered its stage (only with the patch 'case-stage-since'; undefined: not known). */
  let stageSince = stageSincePublished
    ? stageSinceAtStart(
        { stage: startedWith.get(SEARCH_ATTRIBUTES.stage), since: startedWith.get(SEARCH_ATTRIBUTES.stageSince) },
        state.stage,
        input.carried !== undefined,
        new Date(),
      )
    : undefined;
  /** What the case shows in visibility, to upsert only what changed; the patch adds the stage's moment and the ABS system. */
  const visibleKey = (stage: unknown, reason: unknown, since: Date | undefined, absSystem: unknown) =>
    JSON.stringify(stageSincePublished ? [stage, reason, since?.toISOString(), absSystem] : [stage, reason]);
  let published = localFirst
    ? visibleKey(
        startedWith.get(SEARCH_ATTRIBUTES.stage),
        startedWith.get(SEARCH_ATTRIBUTES.attentionReason),
        startedWith.get(SEARCH_ATTRIBUTES.stageSince),
        startedWith.get(SEARCH_ATTRIBUTES.absSystem),
      )
    : '';
  let unpublished = false;
  /**
   * Shows the case's stage and attention. With local-first calls the search attributes are
   * upserted only before the case waits (flushSearchAttributes), so the several stages one
   * workflow task passes through cost one visibility update, not one each.
   */
  function publish() {
    refreshDetails();
    if (localFirst) unpublished = true;
    else upsertIfChanged();
  }
  function flushSearchAttributes() {
    if (!unpublished) return;
    unpublished = false;
    upsertIfChanged();
  }
  function upsertIfChanged() {
    const attention = shown();
    const key = visibleKey(state.stage, attention?.code, stageSince, state.loan.system);
    if (key === published) return;
    published = key;
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.stage, value: state.stage },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: attention !== undefined },
      { key: SEARCH_ATTRIBUTES.attentionReason, value: attention?.code ?? null },
      ...(stageSincePublished ? [{ key: SEARCH_ATTRIBUTES.absSystem, value: state.loan.system }] : []),
      ...(stageSince ? [{ key: SEARCH_ATTRIBUTES.stageSince, value: stageSince }] : []),
    ]);
  }

  const status = (): CaseStatus => ({
    contractNumber: state.loan.contract_number,
    stage: state.stage,
    attention: shown(),
    debt: state.loan.debt,
    currency: state.loan.cur,
    overdueDays: state.loan.overdue_days,
    dbzDate: state.loan.dbz_date,
    demand: state.demand,
    scan: state.scan,
    gkb: state.gkb,
    closedReason: state.closeRequested,
    updates: state.updates,
    ...(state.notices.length ? { notices: state.notices } : {}),
    ...(episode > 1 ? { episode } : {}),
    ...(state.nextEpisode ? { nextEpisode: { debt: state.nextEpisode.loan.debt, overdueDays: state.nextEpisode.loan.overdue_days } } : {}),
  });

  setHandler(caseStatusQuery, status, { description: 'Where the case is, why it waits, its demand and GKB record (no personal data).' });

  /** Before the patch 'case-right-on-every-path': every item applied in arrival order; a closed case ignores all. */
  function applyItemAsBefore(loan: Loan) {
    if (state.stage === 'closed') return;
    const changed = JSON.stringify(loan) !== JSON.stringify(state.loan);
    if (!changed) return; // the same item re-sent (or replayed by the outbox) changes nothing
    state.loan = loan;
    state.updates += 1;
    state.resumeToken += 1;
    if (isZeroMoney(loan.debt)) state.closeRequested = 'repaid';
  }

  /**
   * One demand per overdue episode; no stale update applied. An item not newer (by acceptedSeq,
   * K2's acceptance order) than the newest applied is ignored. Once the case decided to close, a
   * newer item with positive debt becomes the next episode (started when this one's closure is
   * reported); other items only advance the seq.
   */
  function applyItem(loan: Loan, meta: LoanMeta | undefined) {
    if (isStaleItem(state.appliedSeq, meta)) {
      // The applied item itself comes again with every start (signalWithStart carries it twice) and on a re-dispatch: no news.
      if (meta && meta.acceptedSeq !== state.appliedSeq) {
        log.info('outbox item older than the applied one ignored', { acceptedSeq: meta.acceptedSeq, appliedSeq: state.appliedSeq });
      }
      return;
    }
    const overdue = !isZeroMoney(loan.debt);
    if (state.closeRequested || state.stage === 'closed') {
      if (!meta) return;
      Object.assign(state, afterApplying(state, meta, overdue));
      if (overdue) state.nextEpisode = { loan, meta };
      return;
    }
    Object.assign(state, afterApplying(state, meta, overdue));
    applyItemAsBefore(loan);
  }

  setHandler(
    loanUpdatedSignal,
    (loan, meta) => {
      if (loan.contract_number !== state.loan.contract_number) return;
      if (rules) applyItem(loan, meta);
      else applyItemAsBefore(loan);
    },
    { description: 'The loan as EKO re-sent it (through the K2 API), with its outbox seq: new debt, overdue_days, dbz_date; debt 0 closes the case.' },
  );

  function applyDemandStatus(demand: DemandInfo, status: DemandStatusCode) {
    // PC3 (in the card index) implies the debtor's bank accepted the demand, even if PC1 comes later or never.
    if (status === 'PC1') demand.acceptedByBank = true;
    if (status === 'PC3') {
      demand.acceptedByBank = true;
      demand.inCardIndex = true;
    }
    demand.status = demand.inCardIndex ? 'PC3' : 'PC1';
  }

  setHandler(
    demandStatusSignal,
    ({ reference, status }) => {
      const demand = state.demand;
      if (!demand && keepsEarlyStatuses) {
        state.earlyStatuses = withEarlyStatus(state.earlyStatuses, { reference, status });
        log.info('demand status before the demand is known: kept until it is', { reference, status });
        return;
      }
      if (!demand || demand.reference !== reference) {
        log.warn('demand status for another reference ignored', { reference, status });
        return;
      }
      applyDemandStatus(demand, status);
      refreshDetails();
    },
    { description: 'A payment-demand status from EKO: {"reference":"PTP…","status":"PC1"|"PC3"}.' },
  );

  setHandler(
    gkbResultSignal,
    (result) => {
      state.gkbResults.set(result.recordId, result);
      refreshDetails();
    },
    { description: "The import result of one of the case's GKB records, from a GKB batch." },
  );

  function applyOperatorAction(action: OperatorAction) {
    if (action.action === 'acknowledge') {
      state.notices = withoutNotice(state.notices, action.code);
      publish();
      flushSearchAttributes();
      return;
    }
    if (state.stage === 'closed') return;
    if (action.action === 'close') state.closeRequested = 'operator';
    if (action.action === 'supply-agreement-date') state.loan = { ...state.loan, dbz_date: action.dbzDate };
    state.resumeToken += 1;
  }

  setHandler(operatorActionSignal, applyOperatorAction, {
    description:
      'Operator (unvalidated; prefer the "operator" update): {"action":"retry"} re-runs the stage that needs attention; {"action":"supply-agreement-date","dbzDate":"YYYY-MM-DD"}; {"action":"close"}; {"action":"acknowledge","code":"gkb-new-contract"}. An optional "note" is kept in history.',
  });

  setHandler(
    operatorUpdate,
    (action) => {
      applyOperatorAction(action);
      return status();
    },
    {
      validator: (action) => {
        const problem = operatorActionProblem(
          action,
          kazakhstanDate(Date.now()),
          state.notices.map((n) => n.code),
        );
        if (problem) throw new Error(problem);
      },
      description:
        'Operator action, validated first and answered with the case status: {"action":"retry"}; {"action":"supply-agreement-date","dbzDate":"YYYY-MM-DD"} (a real date, not in the future); {"action":"close"}; {"action":"acknowledge","code":"gkb-new-contract"|"gkb-waiting"}. An optional "note" (≤ 500 characters) is kept in history.',
    },
  );

  /**
   * True when the run should continue as new (asked by the server, or the history near its bound)
   * and may (not closing). Since the patch the margin keeps a whole run below the bound: the
   * workflow task that decides adds its own events.
   */
  const historyBound = settings.maxHistoryEvents - (rules ? CONTINUE_AS_NEW_MARGIN : 0);
  const dueForContinueAsNew = () => {
    const i = workflowInfo();
    return !state.closeRequested && (i.continueAsNewSuggested || i.historyLength >= historyBound);
  };

  /** The statuses EKO sent before the case knew its demand: those of this demand apply now, the others are dropped as ever. */
  function applyEarlyStatuses(demand: DemandInfo) {
    const { matching, others } = earlyStatusesFor(state.earlyStatuses, demand.reference);
    for (const status of matching) applyDemandStatus(demand, status);
    for (const other of others) log.warn('demand status for another reference ignored', { reference: other.reference, status: other.status });
    state.earlyStatuses = [];
  }

  /** What the next run starts from: nothing the case knows or waits for is lost. */
  function carriedState(): CarriedCaseState {
    const base: CarriedCaseState = {
      stage: state.stage,
      client: state.client,
      disbursement: state.disbursement,
      scan: state.scan,
      demand: state.demand,
      gkb: state.gkb,
      gkbReports: state.gkbReports,
      gkbReported: state.gkbReported,
      updates: state.updates,
    };
    if (!rules) return base;
    const pending = state.gkbPending;
    return {
      ...base,
      attention: state.lastParked,
      notices: state.notices,
      gkbPending: pending,
      gkbResults: pending && state.gkbResults.has(pending.recordId) ? [state.gkbResults.get(pending.recordId)!] : [],
      appliedSeq: state.appliedSeq,
      lastOverdueSeq: state.lastOverdueSeq,
      ...(state.earlyStatuses.length ? { earlyDemandStatuses: state.earlyStatuses } : {}),
    };
  }

  /** Keeps history bounded: a case can wait for months with daily re-checks and re-sends. */
  async function continueAsNewIfLong(): Promise<void> {
    if (!dueForContinueAsNew()) return;
    flushSearchAttributes();
    await continueAsNew<typeof caseWorkflow>({ loan: state.loan, settings, carried: carriedState(), ...(rules && episode > 1 ? { episode } : {}) });
  }

  async function park(stage: CaseStage, parking: Parking, recheckMs?: number, closing = false): Promise<void> {
    state.attention = attentionFor(state.lastParked, parking, stage, nowIso());
    state.lastParked = state.attention;
    publish();
    log.info('case needs attention', { code: parking.code, stage });
    flushSearchAttributes();
    const seen = state.resumeToken;
    // While the case is closing, only an operator's action (or a timer) unblocks it.
    const unblocked = () => state.resumeToken !== seen || (!closing && state.closeRequested !== undefined) || (rules && dueForContinueAsNew());
    if (recheckMs === undefined) await condition(unblocked);
    else await condition(unblocked, recheckMs);
    state.attention = undefined;
    publish();
    await continueAsNewIfLong();
  }

  /** Runs one stage until it yields a value; parks in between. Undefined when the case is closing (unless the stage is part of closing). */
  async function untilDone<T>(stage: CaseStage, attempt: () => Promise<Outcome<T>>, closing = false): Promise<T | undefined> {
    for (;;) {
      if (state.closeRequested && !closing) return undefined;
      let outcome: Outcome<T>;
      try {
        outcome = await attempt();
      } catch (err) {
        if (err instanceof ContinueAsNew) throw err;
        outcome = { park: parkingFor(err) };
      }
      if ('value' in outcome) {
        state.lastParked = undefined;
        return outcome.value;
      }
      await park(stage, outcome.park, outcome.park.recheckMs, closing);
    }
  }

  /** Queues the case's GKB record; a pending record (queued before a continue-as-new) is not queued again. */
  async function queueGkbRecord(kind: 'overdue' | 'closure'): Promise<Outcome<boolean> | GkbPending> {
    if (rules && state.gkbPending?.kind === kind) return state.gkbPending;
    const dossier = gkbDossierOf(state, kind, kazakhstanDate(Date.now()));
    if ('missing' in dossier) return { park: { code: 'gkb-record-incomplete', reason: `the GKB record lacks ${dossier.missing}` } };
    state.gkbReports += 1;
    const queued = await call('gkb-queue', 'enqueueGkbReport', {
      reportKey: `${caseId}/${kind}/${state.gkbReports}`,
      caseId,
      workflowId: info.workflowId,
      dossier,
    });
    if (queued.state === 'not-applicable') {
      state.gkb = { state: 'not-applicable', reason: queued.reason };
      refreshDetails();
      return { value: true };
    }
    if (queued.state === 'incomplete') return { park: { code: 'gkb-record-incomplete', reason: `no GKB record can be built: ${queued.reason}` } };
    const pending: GkbPending = { recordId: queued.recordId, kind, debt: dossier.debt, overdueDays: dossier.overdueDays, queuedAt: nowIso() };
    if (rules) state.gkbPending = pending;
    state.gkb = { state: 'queued', recordId: pending.recordId };
    refreshDetails();
    flushSearchAttributes();
    return pending;
  }

  /**
   * Waits for the record's result (undefined: the case started closing meanwhile). Since the
   * patch: a result late beyond the horizon shows the notice gkb-waiting (the wait goes on), and
   * the wait continues as new when the history is long.
   */
  async function gkbResultOf(pending: GkbPending, closing: boolean): Promise<GkbRecordResult | undefined> {
    const arrived = () => state.gkbResults.has(pending.recordId) || (!closing && state.closeRequested !== undefined);
    if (!rules) {
      await condition(arrived);
      return state.gkbResults.get(pending.recordId);
    }
    const horizonMs = settings.gkbResultHorizonMs ?? DEFAULT_GKB_RESULT_HORIZON_MS;
    for (;;) {
      const left = gkbWaitLeftMs(pending.queuedAt, horizonMs, Date.now());
      const woken = () => arrived() || (!closing && dueForContinueAsNew());
      if (left > 0 && !state.notices.some((n) => n.code === 'gkb-waiting')) await condition(woken, left);
      else await condition(woken);
      if (arrived()) break;
      if (!closing && dueForContinueAsNew()) await continueAsNewIfLong();
      else if (gkbWaitLeftMs(pending.queuedAt, horizonMs, Date.now()) === 0) {
        state.notices = withNotice(
          state.notices,
          'gkb-waiting',
          `GKB has not answered record ${pending.recordId} since ${pending.queuedAt}; the case keeps waiting`,
          state.stage,
          nowIso(),
        );
        publish();
        flushSearchAttributes();
      }
    }
    const result = state.gkbResults.get(pending.recordId);
    if (result && state.notices.some((n) => n.code === 'gkb-waiting')) {
      state.notices = withoutNotice(state.notices, 'gkb-waiting');
      publish();
    }
    return result;
  }

  /**
   * Stage 6: queue the case's GKB record and wait for its own import result. A rejection parks the
   * case with GKB's text; an operator's retry queues a new report. Returns false when the case
   * started closing meanwhile (the closing report then follows).
   */
  async function reportToGkb(kind: 'overdue' | 'closure'): Promise<boolean> {
    const closing = kind === 'closure';
    const stage: CaseStage = closing ? 'closed' : 'demand-issued';
    const done = await untilDone(
      stage,
      async () => {
        const pending = await queueGkbRecord(kind);
        if (!('recordId' in pending)) return pending;
        const result = await gkbResultOf(pending, closing);
        if (!result) return { value: false };
        const recordId = pending.recordId;
        state.gkbPending = undefined;
        if (result.outcome === 'accepted') {
          state.gkb = { state: 'accepted', recordId, result: rules ? acceptedText(result) : result.text };
          state.gkbReported = { debt: pending.debt, overdueDays: pending.overdueDays };
          if (rules && result.newContract) {
            state.notices = withNotice(
              state.notices,
              'gkb-new-contract',
              `GKB did not know the contract and created it from K2's update: ${result.text}`,
              state.stage,
              nowIso(),
            );
            publish();
          }
          refreshDetails();
          return { value: true };
        }
        state.gkb = { state: 'rejected', recordId, message: result.text };
        refreshDetails();
        return { park: { code: 'gkb-rejected', reason: `GKB rejected the record: ${result.text}` } };
      },
      closing,
    );
    return done === true;
  }

  const absBusiness = (errorCode: number, errorText: string) => `ABS answered error_code ${errorCode}: ${errorText}`;

  /** Stage 4's first half: the statement line proving the disbursement (since the patch, only that line enters history). */
  async function disbursementAt(dbzDate: string): Promise<Outcome<DisbursementLine>> {
    const noLine = {
      park: { code: 'no-disbursement-line' as const, reason: `the statement at ${dbzDate} has no debit line in ${state.loan.cur} proving the disbursement` },
    };
    if (rules) {
      const answer = await call('abs', 'fetchDisbursementLine', state.loan.iban, dbzDate, state.loan.cur);
      if (!answer.ok) return { park: { code: 'no-disbursement-line', reason: absBusiness(answer.errorCode, answer.errorText) } };
      return answer.value ? { value: answer.value } : noLine;
    }
    const answer = await call('abs', 'fetchStatement', state.loan.iban, dbzDate);
    if (!answer.ok) return { park: { code: 'no-disbursement-line', reason: absBusiness(answer.errorCode, answer.errorText) } };
    const line = findDisbursementLine(answer.value, state.loan.cur);
    return line ? { value: line } : noLine;
  }

  publish();

  // Stage 2: client checked.
  if (!reached('client-checked')) {
    const client = await untilDone('received', async () => {
      const answer = await call('abs', 'checkClient', state.loan.iinbin);
      if (!answer.ok) return { park: { code: 'client-unknown', reason: absBusiness(answer.errorCode, answer.errorText) } };
      return { value: answer.value };
    });
    if (client) {
      state.client = client;
      moveTo('client-checked');
    }
  }

  // Stage 3: account checked (the loan's IBAN among the client's accounts, same currency).
  if (!reached('account-checked') && !state.closeRequested) {
    const ok = await untilDone('client-checked', async () => {
      const answer = await call('abs', 'listAccounts', state.loan.iinbin);
      if (!answer.ok) return { park: { code: 'iban-not-found', reason: absBusiness(answer.errorCode, answer.errorText) } };
      const check = findLoanAccount(state.loan, answer.value);
      return check.ok ? { value: true } : { park: { code: check.code, reason: check.reason } };
    });
    if (ok) moveTo('account-checked');
  }

  // Stage 4: evidence collected (disbursement line at the agreement date, then the agreement scan).
  if (!reached('evidence-collected') && !state.closeRequested) {
    const ok = await untilDone('account-checked', async () => {
      const dbzDate = state.loan.dbz_date;
      if (!dbzDate)
        return {
          park: { code: 'agreement-date-missing', reason: 'the loan carries no agreement date (dbz_date); EKO must re-send it or an operator must supply it' },
        };
      if (!state.disbursement) {
        const line = await disbursementAt(dbzDate);
        if (!('value' in line)) return line;
        state.disbursement = line.value;
      }
      const scan = await call('abs', 'fetchScan', { caseId, dbzNum: state.loan.dbz_contract_number, dbzDate, iinbin: state.loan.iinbin });
      if (!scan.found) {
        return {
          park: {
            code: 'scan-missing',
            reason: `ABS has no scan of agreement ${state.loan.dbz_contract_number} dated ${dbzDate} (404); re-checked automatically`,
            recheckMs: settings.scanRecheckMs,
          },
        };
      }
      state.scan = scan.ref;
      return { value: true };
    });
    if (ok) moveTo('evidence-collected');
  }

  // Stage 5: payment demand issued and handed to EKO. Since the patch a failure of K2's database
  // parks like any other; before it, the failure failed the workflow (old runs keep that).
  if (!reached('demand-issued') && !state.closeRequested) {
    const issue = () =>
      call('k2', 'issueDemand', {
        caseId,
        workflowId: info.workflowId,
        contractNumber: state.loan.contract_number,
        amount: state.loan.debt,
        currency: state.loan.cur,
        iban: state.loan.iban,
        iinbin: state.loan.iinbin,
        evidence: state.scan ? [state.scan] : [],
      });
    const reference = rules ? await untilDone('evidence-collected', async () => ({ value: await issue() })) : await issue().catch(asBefore);
    if (reference) {
      state.demand = { reference, status: 'issued', acceptedByBank: false, inCardIndex: false };
      applyEarlyStatuses(state.demand);
      moveTo('demand-issued');
    }
  }
  if (state.demand && state.demand.status === 'issued' && !state.closeRequested) {
    const demand = state.demand;
    const sent = await untilDone('demand-issued', async () => {
      await call('eko', 'sendDemand', demand.reference);
      return { value: true };
    });
    if (sent && demand.status === 'issued') demand.status = 'sent';
    refreshDetails();
  }

  // Stage 6: reported to GKB (stage 7, the demand's statuses, arrives through signals meanwhile).
  if (!reached('reported-to-gkb') && !state.closeRequested) {
    if (await reportToGkb('overdue')) moveTo('reported-to-gkb');
  }

  // The case now waits until it is closed; when EKO re-sends the loan with a new overdue state,
  // GKB hears of it (one report at a time, after GKB accepted the previous one).
  const reportedStale = () =>
    state.gkb.state === 'accepted' &&
    state.gkbReported !== undefined &&
    (state.gkbReported.debt !== state.loan.debt || state.gkbReported.overdueDays !== state.loan.overdue_days);
  /**
   * Patch 'gkb-report-on-update' gates the wait's wake-up as well as the report, decided before
   * the wait wakes: a run of the code before the patch (no marker) keeps the old wait (close or
   * timer only) instead of waking on every activation without ever yielding. Runs with
   * 'case-local-first' (and newer) were started by code that had the patch. An older run is
   * decided when the wait first sees a stale report (patchWouldApply: live, or the marker is in
   * the task being replayed); patched() itself is called after the wake, where the patch's code
   * recorded its marker (after the wait's timer was cancelled). A run since the baseline takes it
   * without asking, so without its marker.
   */
  let reportsOnUpdate: boolean | undefined = localFirst ? true : undefined;
  const wakesOnStale = () => reportedStale() && (reportsOnUpdate ?? patchWouldApply('gkb-report-on-update'));
  for (;;) {
    if (rules && state.closeRequested) break;
    if (rules && state.gkbPending?.kind === 'overdue') {
      // A re-report queued before the continue-as-new: wait for its result.
      await reportToGkb('overdue');
      await continueAsNewIfLong();
      continue;
    }
    flushSearchAttributes();
    await condition(() => state.closeRequested !== undefined || wakesOnStale() || (rules && dueForContinueAsNew()), '30 days');
    if (state.closeRequested) break;
    if (wakesOnStale()) {
      if (!patches.baseline) reportsOnUpdate = patched('gkb-report-on-update');
      if (reportsOnUpdate) {
        await reportToGkb('overdue');
        if (rules) await continueAsNewIfLong();
        continue;
      }
    }
    await continueAsNewIfLong();
  }

  moveTo('closed');
  // Stage 8: a contract GKB has heard about as overdue is reported as no longer overdue.
  if (state.gkb.state === 'accepted' || state.gkb.state === 'queued' || state.gkb.state === 'rejected') {
    await reportToGkb('closure');
  }
  if (rules) {
    const closed = {
      contractNumber: state.loan.contract_number,
      workflowId: info.workflowId,
      appliedSeq: state.appliedSeq,
      lastOverdueSeq: state.lastOverdueSeq,
    };
    await untilDone(
      'closed',
      async () => {
        await call('k2', 'closeEpisode', closed);
        return { value: true };
      },
      true,
    );
  }
  flushSearchAttributes();
  log.info('case closed', { reason: state.closeRequested, episode });
  const next = state.nextEpisode;
  if (rules && next) {
    // The contract came back overdue while this episode was closing: the next episode starts fresh, with its own demand.
    log.info('next overdue episode starts', { episode: episode + 1, acceptedSeq: next.meta.acceptedSeq });
    await continueAsNew<typeof caseWorkflow>({ loan: next.loan, settings, meta: next.meta, episode: episode + 1 });
  }
  return status();
}

/** Before the patch a call outside a stage's retries failed the workflow with the activity's own failure. */
function asBefore(err: unknown): never {
  throw err instanceof CallFailed ? err.failure : err;
}

/** The call ran out of quick attempts or time while its failure was retryable (a non-retryable one is final). */
function failedTransiently(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof TimeoutFailure || (cause instanceof ApplicationFailure && !cause.nonRetryable);
}

/**
 * The case workflow: one overdue loan, from receipt to closure (DOMAIN.md §2).
 *
 * Shape: a fixed sequence of stages. Each stage is retried by Temporal while trouble is transient
 * (up to the configured horizon) and otherwise *parks* the case in Needs attention with a readable
 * reason, until an operator acts, EKO re-sends the loan with new data, or a re-check timer fires.
 * Closing (debt repaid, or an operator) can happen at any point between stages or while parked.
 *
 * Determinism: no clocks but workflow time, no I/O; everything external is an activity.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
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
import { RetryState } from '@temporalio/common';
import type { CaseActivities } from '../activities';
import type { GkbActivities, GkbRecordResult } from '../activities/gkb';
import {
  Attention,
  AttentionCode,
  CaseInput,
  CaseStage,
  CASE_STAGES,
  CaseStatus,
  CarriedCaseState,
  findDisbursementLine,
  findLoanAccount,
  gkbDossierOf,
  kazakhstanDate,
} from '../domain/case';
import { isZeroMoney } from '../domain/money';
import { SEARCH_ATTRIBUTES } from './search-attributes';

import { caseStatusQuery, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal } from './definitions';

export { caseStatusQuery, demandStatusSignal, gkbResultSignal, loanUpdatedSignal, operatorActionSignal };

export { SEARCH_ATTRIBUTES };

/** Everything the case calls: K2's own database, ABS, EKO, the GKB queue. */
type Calls = CaseActivities & GkbActivities;

type Outcome<T> = { value: T } | { park: { code: AttentionCode; reason: string; recheckMs?: number } };


export async function caseWorkflow(input: CaseInput): Promise<CaseStatus> {
  const { settings } = input;
  const carried: CarriedCaseState = input.carried ?? { stage: 'received', gkb: { state: 'not-reported' }, gkbReports: 0, updates: 0 };
  const state = {
    ...carried,
    loan: input.loan,
    attention: undefined as Attention | undefined,
    closeRequested: undefined as undefined | 'repaid' | 'operator',
    /** Bumped by anything that may unblock a parked stage (new loan data, an operator's retry). */
    resumeToken: 0,
    /** GKB results received, by record id (a batch may deliver one twice). */
    gkbResults: new Map<string, GkbRecordResult>(),
  };
  const info = workflowInfo();
  const caseId = `${info.workflowId}/${info.firstExecutionRunId}`;

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
  const localFirst = patched('case-local-first');
  const quick = proxyLocalActivities<Calls>({
    startToCloseTimeout: '10 seconds',
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
  });
  async function call<K extends keyof Calls>(regular: Calls, name: K, ...args: Parameters<Calls[K]>): Promise<Awaited<ReturnType<Calls[K]>>> {
    type Fn = (...a: Parameters<Calls[K]>) => Promise<Awaited<ReturnType<Calls[K]>>>;
    if (localFirst) {
      try {
        return await (quick[name] as Fn)(...args);
      } catch (err) {
        if (!failedTransiently(err)) throw asActivityFailure(err, name);
        log.info('quick attempts failed transiently; the call goes on as a regular activity', { activity: name });
      }
    }
    flushSearchAttributes();
    return await (regular[name] as Fn)(...args);
  }

  const reached = (stage: CaseStage) => CASE_STAGES.indexOf(state.stage) >= CASE_STAGES.indexOf(stage);
  const moveTo = (stage: CaseStage) => {
    state.stage = stage;
    publish();
  };
  /** What the Web UI shows as the case's current details: where it is and why, for the operator (no personal data). */
  function refreshDetails() {
    const lines = [`**Stage:** ${state.stage}`];
    if (state.attention) lines.push(`**Needs attention** (${state.attention.code}, since ${state.attention.since}): ${state.attention.reason}`);
    if (state.demand) lines.push(`**Demand:** ${state.demand.reference}, ${state.demand.status}`);
    const gkb = state.gkb;
    lines.push(`**GKB:** ${gkb.state}${'recordId' in gkb ? ` (record ${gkb.recordId})` : ''}${'message' in gkb ? `: ${gkb.message}` : ''}${'reason' in gkb ? `: ${gkb.reason}` : ''}`);
    if (state.closeRequested) lines.push(`**Closing:** ${state.closeRequested}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  // A case the dispatcher started carries K2Stage 'received' from its start; a continued run carries its predecessor's.
  const startedWith = info.typedSearchAttributes;
  let published = localFirst ? JSON.stringify([startedWith.get(SEARCH_ATTRIBUTES.stage), startedWith.get(SEARCH_ATTRIBUTES.attentionReason)]) : '';
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
    const key = JSON.stringify([state.stage, state.attention?.code]);
    if (key === published) return;
    published = key;
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.stage, value: state.stage },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: state.attention !== undefined },
      { key: SEARCH_ATTRIBUTES.attentionReason, value: state.attention?.code ?? null },
    ]);
  }

  const status = (): CaseStatus => ({
    contractNumber: state.loan.contract_number,
    stage: state.stage,
    attention: state.attention,
    debt: state.loan.debt,
    currency: state.loan.cur,
    overdueDays: state.loan.overdue_days,
    dbzDate: state.loan.dbz_date,
    demand: state.demand,
    scan: state.scan,
    gkb: state.gkb,
    closedReason: state.closeRequested,
    updates: state.updates,
  });

  setHandler(caseStatusQuery, status, { description: 'Where the case is, why it waits, its demand and GKB record (no personal data).' });

  setHandler(loanUpdatedSignal, (loan) => {
    if (state.stage === 'closed' || loan.contract_number !== state.loan.contract_number) return;
    const changed = JSON.stringify(loan) !== JSON.stringify(state.loan);
    if (!changed) return; // the same item re-sent (or replayed by the outbox) changes nothing
    state.loan = loan;
    state.updates += 1;
    state.resumeToken += 1;
    if (isZeroMoney(loan.debt)) state.closeRequested = 'repaid';
  }, { description: 'The loan as EKO re-sent it (through the K2 API): new debt, overdue_days, dbz_date; debt 0 closes the case.' });

  setHandler(demandStatusSignal, ({ reference, status }) => {
    const demand = state.demand;
    if (!demand || demand.reference !== reference) {
      log.warn('demand status for another reference ignored', { reference, status });
      return;
    }
    // PC3 (in the card index) implies the debtor's bank accepted the demand, even if PC1 comes later or never.
    if (status === 'PC1') demand.acceptedByBank = true;
    if (status === 'PC3') {
      demand.acceptedByBank = true;
      demand.inCardIndex = true;
    }
    demand.status = demand.inCardIndex ? 'PC3' : 'PC1';
    refreshDetails();
  }, { description: 'A payment-demand status from EKO: {"reference":"PTP…","status":"PC1"|"PC3"}.' });

  setHandler(gkbResultSignal, (result) => {
    state.gkbResults.set(result.recordId, result);
    refreshDetails();
  }, { description: 'The import result of one of the case\'s GKB records, from a GKB batch.' });

  setHandler(operatorActionSignal, (action) => {
    if (state.stage === 'closed') return;
    if (action.action === 'close') state.closeRequested = 'operator';
    if (action.action === 'supply-agreement-date') state.loan = { ...state.loan, dbz_date: action.dbzDate };
    state.resumeToken += 1;
  }, {
    description:
      'Operator: {"action":"retry"} re-runs the stage that needs attention; {"action":"supply-agreement-date","dbzDate":"YYYY-MM-DD"}; {"action":"close"}. An optional "note" is kept in history.',
  });

  /** Keeps history bounded: a case can wait for months with daily re-checks. */
  async function continueAsNewIfLong(): Promise<void> {
    const i = workflowInfo();
    if (state.closeRequested || (!i.continueAsNewSuggested && i.historyLength < settings.maxHistoryEvents)) return;
    flushSearchAttributes();
    const { loan, attention: _a, closeRequested: _c, resumeToken: _r, gkbResults: _g, ...rest } = state;
    await continueAsNew<typeof caseWorkflow>({ loan, settings, carried: rest });
  }

  async function park(stage: CaseStage, code: AttentionCode, reason: string, recheckMs?: number, closing = false): Promise<void> {
    state.attention = { code, reason, stage, since: new Date().toISOString() };
    publish();
    log.info('case needs attention', { code, stage });
    flushSearchAttributes();
    const seen = state.resumeToken;
    // While the case is closing, only an operator's action (or a timer) unblocks it.
    const unblocked = () => state.resumeToken !== seen || (!closing && state.closeRequested !== undefined);
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
        outcome = { park: parkingFor(err) };
      }
      if ('value' in outcome) return outcome.value;
      await park(stage, outcome.park.code, outcome.park.reason, outcome.park.recheckMs, closing);
    }
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
        const dossier = gkbDossierOf(state, kind, kazakhstanDate(Date.now()));
        if ('missing' in dossier) return { park: { code: 'gkb-record-incomplete', reason: `the GKB record lacks ${dossier.missing}` } };
        state.gkbReports += 1;
        const queued = await call(k2, 'enqueueGkbReport', { reportKey: `${caseId}/${kind}/${state.gkbReports}`, caseId, workflowId: info.workflowId, dossier });
        if (queued.state === 'not-applicable') {
          state.gkb = { state: 'not-applicable', reason: queued.reason };
          refreshDetails();
          return { value: true };
        }
        if (queued.state === 'incomplete') return { park: { code: 'gkb-record-incomplete', reason: `no GKB record can be built: ${queued.reason}` } };
        const recordId = queued.recordId;
        state.gkb = { state: 'queued', recordId };
        refreshDetails();
        flushSearchAttributes();
        await condition(() => state.gkbResults.has(recordId) || (!closing && state.closeRequested !== undefined));
        const result = state.gkbResults.get(recordId);
        if (!result) return { value: false };
        if (result.outcome === 'accepted') {
          state.gkb = { state: 'accepted', recordId, result: result.text };
          refreshDetails();
          state.gkbReported = { debt: dossier.debt, overdueDays: dossier.overdueDays };
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

  publish();

  // Stage 2: client checked.
  if (!reached('client-checked')) {
    const client = await untilDone('received', async () => {
      const answer = await call(abs, 'checkClient', state.loan.iinbin);
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
      const answer = await call(abs, 'listAccounts', state.loan.iinbin);
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
      if (!dbzDate) return { park: { code: 'agreement-date-missing', reason: 'the loan carries no agreement date (dbz_date); EKO must re-send it or an operator must supply it' } };
      if (!state.disbursement) {
        const answer = await call(abs, 'fetchStatement', state.loan.iban, dbzDate);
        if (!answer.ok) return { park: { code: 'no-disbursement-line', reason: absBusiness(answer.errorCode, answer.errorText) } };
        const line = findDisbursementLine(answer.value, state.loan.cur);
        if (!line) return { park: { code: 'no-disbursement-line', reason: `the statement at ${dbzDate} has no debit line in ${state.loan.cur} proving the disbursement` } };
        state.disbursement = line;
      }
      const scan = await call(abs, 'fetchScan', { caseId, dbzNum: state.loan.dbz_contract_number, dbzDate, iinbin: state.loan.iinbin });
      if (!scan.found) {
        return { park: { code: 'scan-missing', reason: `ABS has no scan of agreement ${state.loan.dbz_contract_number} dated ${dbzDate} (404); re-checked automatically`, recheckMs: settings.scanRecheckMs } };
      }
      state.scan = scan.ref;
      return { value: true };
    });
    if (ok) moveTo('evidence-collected');
  }

  // Stage 5: payment demand issued and handed to EKO.
  if (!reached('demand-issued') && !state.closeRequested) {
    const reference = await call(k2, 'issueDemand', {
      caseId,
      workflowId: info.workflowId,
      contractNumber: state.loan.contract_number,
      amount: state.loan.debt,
      currency: state.loan.cur,
      iban: state.loan.iban,
      iinbin: state.loan.iinbin,
      evidence: state.scan ? [state.scan] : [],
    });
    state.demand = { reference, status: 'issued', acceptedByBank: false, inCardIndex: false };
    moveTo('demand-issued');
  }
  if (state.demand && state.demand.status === 'issued' && !state.closeRequested) {
    const demand = state.demand;
    const sent = await untilDone('demand-issued', async () => {
      await call(eko, 'sendDemand', demand.reference);
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
  for (;;) {
    flushSearchAttributes();
    await condition(() => state.closeRequested !== undefined || reportedStale(), '30 days');
    if (state.closeRequested) break;
    if (reportedStale() && patched('gkb-report-on-update')) {
      await reportToGkb('overdue');
      continue;
    }
    await continueAsNewIfLong();
  }

  state.stage = 'closed';
  publish();
  // Stage 8: a contract GKB has heard about as overdue is reported as no longer overdue.
  if (state.gkb.state === 'accepted' || state.gkb.state === 'queued' || state.gkb.state === 'rejected') {
    await reportToGkb('closure');
  }
  flushSearchAttributes();
  log.info('case closed', { reason: state.closeRequested });
  return status();
}

/** The call ran out of quick attempts or time while its failure was retryable (a non-retryable one is final). */
function failedTransiently(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof TimeoutFailure || (cause instanceof ApplicationFailure && !cause.nonRetryable);
}

/**
 * This SDK hands a local activity's failure to the workflow unwrapped (the ApplicationFailure the
 * activity threw); wrapped like a regular activity's, it reaches parkingFor with the call's name.
 */
function asActivityFailure(err: unknown, activityType: string): unknown {
  if (!(err instanceof ApplicationFailure)) return err;
  return new ActivityFailure('Local activity task failed', activityType, undefined, RetryState.NON_RETRYABLE_FAILURE, undefined, err);
}

/** What an activity failure means for the operator. */
function parkingFor(err: unknown): { code: AttentionCode; reason: string } {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    const call = err.activityType;
    if (cause instanceof TimeoutFailure) {
      const code: AttentionCode = call === 'sendDemand' ? 'eko-unavailable' : 'abs-unavailable';
      return { code, reason: `${call} kept failing transiently beyond the retry horizon; the last error is in the activity's failure` };
    }
    if (cause instanceof ApplicationFailure) {
      const code: AttentionCode = call === 'sendDemand' ? 'eko-rejected' : 'abs-protocol';
      return { code, reason: cause.message };
    }
  }
  throw err; // a bug: fail the workflow task so it is visible and fixable by a deploy
}

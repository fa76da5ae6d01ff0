/**
 * The case: one overdue loan worked end to end (DOMAIN.md §2). Types shared by the case workflow,
 * the API and the tests. Pure: no I/O, no Temporal imports.
 */
import type { Loan } from './loan';
import type { GkbDossier } from './gkb/dossier';
import type { DemandStatusCode } from './demand-status';

/** The stages of DOMAIN.md §2, in order. */
export const CASE_STAGES = ['received', 'client-checked', 'account-checked', 'evidence-collected', 'demand-issued', 'reported-to-gkb', 'closed'] as const;
export type CaseStage = (typeof CASE_STAGES)[number];

/**
 * Why a case needs an operator. Codes are stable (they are a search attribute, K2AttentionReason);
 * the readable text travels beside them in the case status.
 */
export const ATTENTION_CODES = [
  'client-unknown',
  'iban-not-found',
  'currency-mismatch',
  'agreement-date-missing',
  'no-disbursement-line',
  'scan-missing',
  'abs-unavailable',
  'abs-protocol',
  'eko-rejected',
  'eko-unavailable',
  'gkb-rejected',
  'gkb-record-incomplete',
  'k2-database-unavailable',
  'k2-database-error',
  'gkb-queue-unavailable',
  'gkb-queue-error',
  /** GKB answered an update (operation 2) with «Создан новый контракт.»: it did not know the contract (DOMAIN.md G6). Does not stop the case. */
  'gkb-new-contract',
  /** The case's GKB record has waited for GKB's result beyond the configured horizon. Does not stop the case. */
  'gkb-waiting',
  /** A call failed in a way no failure type of domain/failures.ts names (a defect): parked until an operator retries. */
  'unclassified-failure',
] as const;
export type AttentionCode = (typeof ATTENTION_CODES)[number];

/** Attention that does not stop the case (a notice): shown while no parked stage needs attention. */
export const NOTICE_CODES = ['gkb-new-contract', 'gkb-waiting'] as const satisfies readonly AttentionCode[];
export type NoticeCode = (typeof NOTICE_CODES)[number];

export interface Attention {
  code: AttentionCode;
  reason: string;
  stage: CaseStage;
  since: string;
}

export interface ClientInfo {
  fullname: string;
  sectecon: number;
  residfl: number;
}

export interface DisbursementLine {
  purpose: string;
  amount: string;
  cur: string;
  DC: 'D' | 'C';
  out_bal: string;
}

/** A document held in the document store; only this reference ever enters workflow history. */
export interface DocumentRef {
  sha256: string;
  size: number;
  mediaType: string;
  fileName: string;
}

export type { DemandStatusCode };

export interface DemandInfo {
  reference: string;
  status: 'issued' | 'sent' | DemandStatusCode;
  /** PC1 seen, or implied by a PC3 that arrived first. */
  acceptedByBank: boolean;
  inCardIndex: boolean;
}

export type GkbOutcome =
  | { state: 'not-reported' }
  | { state: 'not-applicable'; reason: string }
  | { state: 'queued'; recordId: string }
  | { state: 'accepted'; recordId: string; result: string }
  | { state: 'rejected'; recordId: string; message: string };

/** What the case workflow answers to the `caseStatus` query. */
export interface CaseStatus {
  contractNumber: string;
  stage: CaseStage;
  attention?: Attention;
  debt: string;
  currency: string;
  overdueDays: number;
  dbzDate?: string;
  demand?: DemandInfo;
  scan?: DocumentRef;
  gkb: GkbOutcome;
  closedReason?: 'repaid' | 'operator';
  updates: number;
  /** Notices besides the attention shown (attention that does not stop the case). */
  notices?: Attention[];
  /** The overdue episode of the contract this run works (1 unless the contract came back overdue while its case was closing). */
  episode?: number; /** The contract came back overdue while the case was closing: this item opens the next episode once the closure is reported. */
  nextEpisode?: { debt: string; overdueDays: number };
}

/** Operator actions, sent as the `operatorAction` signal (from the Web UI or the CLI). */
export type OperatorAction =
  | { action: 'retry'; note?: string }
  | { action: 'supply-agreement-date'; dbzDate: string; note?: string }
  | { action: 'close'; note?: string }
  /** Clears a notice (attention that does not stop the case), e.g. gkb-new-contract once the contract is fixed at GKB. */
  | { action: 'acknowledge'; code: AttentionCode; note?: string };

/** Tuning the case receives with its input, so that every decision is in its history. */
export interface CaseSettings {
  absHorizonMs: number;
  scanRecheckMs: number;
  /** How long an idle, open case waits before it continues as new to keep its history small. */
  maxHistoryEvents: number;
  /** Timeout of one quick local attempt of a call (CASE_LOCAL_ATTEMPT_TIMEOUT), below the HTTP timeouts; absent in older inputs. */
  localAttemptMs?: number;
  /** How long a GKB record may wait for GKB's result before the case needs attention (GKB_RESULT_HORIZON); absent in older inputs. */
  gkbResultHorizonMs?: number;
}

export interface CaseInput {
  loan: Loan;
  settings: CaseSettings;
  /** The outbox item that started the case (absent in older inputs). */
  meta?: LoanMeta;
  /** The overdue episode this run starts (absent: 1). A new episode starts with fresh state and its own demand and report keys. */
  episode?: number;
  /** Set when the case continues as new: the state it had. */
  carried?: CarriedCaseState;
}

export interface CarriedCaseState {
  stage: CaseStage;
  client?: ClientInfo;
  disbursement?: DisbursementLine;
  scan?: DocumentRef;
  demand?: DemandInfo;
  gkb: GkbOutcome;
  /** How many GKB reports the case has queued (each gets its own report key). */
  gkbReports: number;
  /** The overdue state GKB last accepted for this contract, to report again when it changes. */
  gkbReported?: { debt: string; overdueDays: number };
  updates: number;
  /** The attention of the stage that last parked (its `since` is kept while the same reason lasts); absent in older runs. */
  attention?: Attention;
  notices?: Attention[];
  /** The GKB record queued and not yet answered, with the state it reports; its result is awaited after a continue-as-new. */
  gkbPending?: GkbPending;
  /** Results that arrived for records of the case (e.g. for the pending record, before the continue-as-new). */
  gkbResults?: Array<{ recordId: string; outcome: 'accepted' | 'rejected'; text: string; newContract?: boolean; skipped?: boolean }>;
  /** acceptedSeq of the newest outbox item applied, and of the newest with positive debt. */
  appliedSeq?: number;
  lastOverdueSeq?: number;
  /** Demand statuses that arrived before the case knew its demand (patch 'case-early-demand-status'); absent when none. */
  earlyDemandStatuses?: Array<{ reference: string; status: DemandStatusCode }>;
}

export interface GkbPending {
  recordId: string;
  kind: 'overdue' | 'closure';
  debt: string;
  overdueDays: number;
  /** ISO time the record was queued: the GKB result horizon counts from here. */
  queuedAt: string;
}

/**
 * What travels with a loan from the outbox to its case (second argument of the loanUpdated
 * signal, and in the case's input): K2's acceptance order of the item, the outbox row id, which
 * survives restarts. A case ignores an item older than the newest it applied.
 */
export interface LoanMeta {
  acceptedSeq: number;
}

/** Workflow ID of a contract's case. The contract number is a bank reference, not personal data. */
export function caseWorkflowId(contractNumber: string): string {
  return `case-${contractNumber}`;
}

/** True when the loan's account is among the client's accounts with the same currency. */
export function findLoanAccount(
  loan: Pick<Loan, 'iban' | 'cur'>,
  accounts: ReadonlyArray<{ iban: string; cur: string }>,
): { ok: true } | { ok: false; code: 'iban-not-found' | 'currency-mismatch'; reason: string } {
  const account = accounts.find((a) => a.iban.toUpperCase() === loan.iban.toUpperCase());
  if (!account) return { ok: false, code: 'iban-not-found', reason: `the loan's account is not among the client's ${accounts.length} accounts in ABS` };
  if (account.cur !== loan.cur)
    return { ok: false, code: 'currency-mismatch', reason: `the loan is in ${loan.cur} but its account in ABS is in ${account.cur}` };
  return { ok: true };
}

/** The statement line that proves the disbursement: a debit to the loan account in the loan's currency. */
export function findDisbursementLine(lines: readonly DisbursementLine[], currency: string): DisbursementLine | undefined {
  return lines.find((l) => l.DC === 'D' && l.cur === currency);
}

/** Kazakhstan has one time zone, UTC+5, since 2024: GKB's accounting date is the local date. */
export function kazakhstanDate(epochMs: number): string {
  return new Date(epochMs + 5 * 3600_000).toISOString().slice(0, 10);
}

/**
 * The case's GKB dossier (DOMAIN.md §7) for its overdue report, or for the final report that says
 * the contract is no longer overdue (the contract itself stays active: `debt` is the overdue debt).
 */
export function gkbDossierOf(
  c: { loan: Loan; client?: ClientInfo; disbursement?: DisbursementLine },
  kind: 'overdue' | 'closure',
  reportDate: string,
): GkbDossier | { missing: string } {
  if (!c.client) return { missing: 'the client check from ABS' };
  if (!c.disbursement) return { missing: 'the disbursement line from ABS' };
  return {
    contractNumber: c.loan.contract_number,
    dbzContractNumber: c.loan.dbz_contract_number,
    agreementStartDate: c.loan.dbz_date,
    phase: 'active',
    overdueDays: kind === 'closure' ? 0 : c.loan.overdue_days,
    debt: kind === 'closure' ? '0.00' : c.loan.debt,
    creditLimit: c.disbursement.amount,
    currency: c.loan.cur,
    iinbin: c.loan.iinbin,
    fullname: c.client.fullname,
    residfl: c.client.residfl,
    reportDate,
  };
}

/**
 * The case workflow's messages, defined once: the API, the dispatcher, the GKB batch's
 * activities and the tests send them by these definitions, never by a name string, so a rename
 * fails at compile time. Only definitions here: importing this file runs no workflow code.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GkbRecordResult } from '../activities/gkb';
import type { CaseStatus, DemandStatusCode, LoanMeta, OperatorAction } from '../domain/case';
import type { Loan } from '../domain/loan';

/** The loan as EKO (re-)sent it; the meta is absent in histories recorded before it existed. */
export const loanUpdatedSignal = defineSignal<[Loan, LoanMeta?]>('loanUpdated');
export const demandStatusSignal = defineSignal<[{ reference: string; status: DemandStatusCode }]>('demandStatus');
/** Kept for running cases and old histories; operators use operatorUpdate, which validates the action first. */
export const operatorActionSignal = defineSignal<[OperatorAction]>('operatorAction');
/** An operator action, validated before it is accepted (a wrong date, an unknown action, an over-long note is refused at once); returns the case status. */
export const operatorUpdate = defineUpdate<CaseStatus, [OperatorAction]>('operator');
export const gkbResultSignal = defineSignal<[GkbRecordResult]>('gkbResult');
export const caseStatusQuery = defineQuery<CaseStatus>('caseStatus');

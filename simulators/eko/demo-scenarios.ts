/**
 * Demo loans that meet the ABS simulator's named scenarios, so the demo shows operators the
 * Needs-attention side too: an unknown client, a currency mismatch, a scan that never comes,
 * a scan that comes after a few re-checks, and a loan EKO sent without its agreement date (gap G1).
 */
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import type { AttentionCode, CaseStage } from '../../domain/case';
import { ABS_SCENARIO_IINS, deriveLoanAccount } from '../abs/server';

export function demoScenarioLoans(seed: number): EkoLoanItem[] {
  const rand = mulberry32(seed ^ 0x5eed);
  const loanFor = (iin: string, contract: string): EkoLoanItem => {
    const account = deriveLoanAccount(iin);
    return generateLoan(rand, { iinbin: iin, iban: account.iban, cur: account.cur, contract_number: contract });
  };
  const suffix = String(seed).padStart(6, '0');
  const { dbz_date: _none, ...undated } = loanFor(ABS_SCENARIO_IINS.ordinary, `DEMO-G1-${suffix}`);
  return [
    loanFor(ABS_SCENARIO_IINS.clientUnknown, `DEMO-CLIENT-${suffix}`),
    loanFor(ABS_SCENARIO_IINS.currencyMismatch, `DEMO-CUR-${suffix}`),
    loanFor(ABS_SCENARIO_IINS.scanMissing, `DEMO-SCAN-${suffix}`),
    loanFor(ABS_SCENARIO_IINS.scanAfterRequests, `DEMO-SCANLATER-${suffix}`),
    undated,
  ];
}

/**
 * What each demo scenario loan's case should come to, for checks that judge a run (the chaos suite):
 * the stage it stops at and why, or `demand` when it reaches its demand like any loan (the scan that
 * comes after re-checks; CASE_SCAN_RECHECK must be short for that within a run).
 */
export type DemoScenarioOutcome = { parksAt: CaseStage; attention: AttentionCode } | 'demand';

const OUTCOME_BY_PREFIX: ReadonlyArray<[string, DemoScenarioOutcome]> = [
  ['DEMO-CLIENT-', { parksAt: 'received', attention: 'client-unknown' }],
  ['DEMO-CUR-', { parksAt: 'client-checked', attention: 'currency-mismatch' }],
  ['DEMO-SCANLATER-', 'demand'],
  ['DEMO-SCAN-', { parksAt: 'account-checked', attention: 'scan-missing' }],
  ['DEMO-G1-', { parksAt: 'account-checked', attention: 'agreement-date-missing' }],
];

/** The expected outcome of a demo scenario loan (demoScenarioLoans), undefined for any other contract. */
export function demoScenarioOutcome(contractNumber: string): DemoScenarioOutcome | undefined {
  return OUTCOME_BY_PREFIX.find(([prefix]) => contractNumber.startsWith(prefix))?.[1];
}

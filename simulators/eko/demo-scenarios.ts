/**
 * Demo loans that meet the ABS simulator's named scenarios, so the demo shows operators the
 * Needs-attention side too: an unknown client, a currency mismatch, a scan that never comes,
 * a scan that comes after a few re-checks, and a loan EKO sent without its agreement date (gap G1).
 */
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
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

/**
 * The judges of the e2e run (test/helpers/e2e-witnesses.ts) see what they must: a row that reached
 * its case twice or never, a contract EKO took two demands for, a reference taken twice.
 */
import type { CaseStatus } from '../../domain/case';
import type { DemandJournalEntry } from '../../simulators/eko/journal';
import { judgeDemands, judgeItems, standing, type OutboxRowSeen } from '../helpers/e2e-witnesses';

const row = (id: number, contract: string, extra: Partial<OutboxRowSeen> = {}): OutboxRowSeen => ({
  id,
  contract,
  dispatched: true,
  stale: false,
  dead: false,
  ...extra,
});
const entry = (reference: string, contract_number: string, outcome: DemandJournalEntry['outcome']): DemandJournalEntry => ({
  reference,
  contract_number,
  outcome,
  received_at: '2026-12-01T00:00:00.000Z',
});

describe('judgeItems', () => {
  it('passes each handed-over row that reached its case once', () => {
    const signalled = new Map([
      ['A', [1, 3]],
      ['B', [2]],
    ]);
    expect(judgeItems([row(1, 'A'), row(2, 'B'), row(3, 'A')], signalled)).toEqual({ notDispatched: [], never: [], twice: {} });
  });

  it('names rows that reached their case twice or never, and rows not handed over', () => {
    const signalled = new Map([
      ['A', [1, 1, 1]],
      ['B', [9]],
    ]);
    const rows = [row(1, 'A'), row(2, 'B'), row(3, 'B', { dispatched: false }), row(4, 'B', { dead: true })];
    expect(judgeItems(rows, signalled)).toEqual({ notDispatched: [3, 4], never: [2], twice: { 1: 3 } });
  });

  it('does not look for a stale row in the case (it was never handed over)', () => {
    expect(judgeItems([row(5, 'A', { stale: true })], new Map())).toEqual({ notDispatched: [], never: [], twice: {} });
  });
});

describe('judgeDemands', () => {
  it('counts only what EKO took as new: repeats and refusals are not demands', () => {
    const judged = judgeDemands([
      entry('PTP1', 'A', 'accepted'),
      entry('PTP1', 'A', 'repeat'),
      entry('PTP2', 'B', '5xx'),
      entry('PTP2', 'B', 'accepted-then-5xx'),
    ]);
    expect(judged).toEqual({
      newDemands: new Map([
        ['A', ['PTP1']],
        ['B', ['PTP2']],
      ]),
      contractsWithSeveral: {},
      referencesTakenTwice: [],
    });
  });

  it('names a contract with two demands and a reference taken twice', () => {
    const judged = judgeDemands([
      entry('PTP1', 'A', 'accepted'),
      entry('PTP3', 'A', 'accepted'),
      entry('PTP2', 'B', 'accepted'),
      entry('PTP2', 'B', 'accepted'),
    ]);
    expect(judged.contractsWithSeveral).toEqual({ A: ['PTP1', 'PTP3'], B: ['PTP2', 'PTP2'] });
    expect(judged.referencesTakenTwice).toEqual(['PTP2']);
  });
});

describe('standing', () => {
  it('counts cases by stage, attention and demand status, with what EKO did with the statuses', () => {
    const sent = { stage: 'demand-issued', demand: { reference: 'PTP1', status: 'sent' } } as CaseStatus;
    const parked = { stage: 'received', attention: { code: 'client-unknown' } } as CaseStatus;
    const statuses = new Map([
      ['case-A', sent],
      ['case-B', sent],
      ['case-C', parked],
    ]);
    const eko = [{ reference: 'PTP1', contract_number: 'A', state: 'done', sent: ['PC1:delivered', 'PC3:delivered'] }];
    expect(standing(['case-A', 'case-C', 'case-D'], statuses, eko)).toEqual({
      'demand-issued/-/sent (EKO: done, PC1:delivered PC3:delivered)': 1,
      'received/client-unknown/-': 1,
      'no answer': 1,
    });
  });
});

/**
 * The chaos checks over hand-made facts: a run that kept every promise has no violation, and each
 * rule, broken on its own, is found and names the case (and contract) that broke it.
 */
import { checkFacts, expectationsOf, normalized, waitingReason, type CaseFact, type Facts, type Rule, type Violation } from '../../chaos/checks';
import type { AcceptedItem, ItemKind, LoadPlan } from '../../chaos/load';
import { loanDigest } from '../../db/outbox';
import type { CaseStatus } from '../../domain/case';
import { generateLoans } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import { demoScenarioLoans } from '../../simulators/eko/demo-scenarios';
import type { GkbJournalPackage } from '../../simulators/gkb/sandbox';

const [A, B, C, D, E] = generateLoans(31, 5);
const SCENARIO = demoScenarioLoans(31).find((l) => l.contract_number.startsWith('DEMO-CLIENT-'))!;
const repaid = (l: EkoLoanItem): EkoLoanItem => ({ ...l, debt: 0 });
const resent = (l: EkoLoanItem): EkoLoanItem => ({ ...l, overdue_days: l.overdue_days + 3, debt: Number(l.debt) + 10 });
const C2 = { ...resent(C), overdue_days: 4 };
const id = (l: EkoLoanItem) => `case-${l.contract_number}`;
const ref = (n: number) => `PTP${String(12_000_000_000 + n)}`;

function status(loan: EkoLoanItem, over: Partial<CaseStatus> = {}): CaseStatus {
  const l = normalized(loan);
  return {
    contractNumber: l.contract_number,
    stage: 'reported-to-gkb',
    debt: l.debt,
    currency: l.cur,
    overdueDays: l.overdue_days,
    gkb: { state: 'accepted', recordId: '1', result: 'ok' },
    updates: 0,
    ...over,
  };
}
const running = (loan: EkoLoanItem, s: CaseStatus): CaseFact => ({
  workflowId: id(loan),
  contract: loan.contract_number,
  status: 'RUNNING',
  runs: 1,
  caseStatus: s,
  pendingActivities: [],
});

/** A run that kept every promise: A overdue with a re-send, B repaid, C repaid and overdue again (episode 2), D and E sent in the POST that was cut off, one scenario loan. */
function goodFacts(): Facts {
  const plan: LoadPlan = {
    book: [A, B, C, D, E],
    steps: [
      { at: 0, items: [A, B, C].map((loan) => ({ kind: 'new' as ItemKind, loan })).concat([{ kind: 'scenario', loan: SCENARIO }]) },
      { at: 10, items: [D, E].map((loan) => ({ kind: 'new' as ItemKind, loan })), killApi: { target: 'api', downMs: 1000 } },
      {
        at: 20,
        items: [
          { kind: 'resend', loan: resent(A) },
          { kind: 'repay', loan: repaid(B) },
          { kind: 'repay', loan: repaid(C) },
        ],
      },
      { at: 30, items: [{ kind: 'reopen', loan: C2 }] },
    ],
  };
  const accepted: AcceptedItem[] = plan.steps.flatMap((s) => s.items.map((i) => ({ at: s.at, kind: i.kind, loan: i.loan })));
  const row = (n: number, loan: EkoLoanItem, requestId: string) => ({
    id: n,
    contract: loan.contract_number,
    requestId,
    sha256: loanDigest(normalized(loan)),
    dispatched: true,
    dead: false,
  });
  const pkg = (packageId: string, contracts: string[]): GkbJournalPackage => ({
    packageId,
    packageName: `K2_b${packageId}_1.zip`,
    uploadedAt: '2026-03-02T06:00:00.000Z',
    final: true,
    files: [
      {
        fileId: `f${packageId}`,
        fileName: 'part.xml',
        status: 'Файл обработан.',
        records: contracts.map((c, i) => ({
          contract: `${c}|2020-01-01`,
          operation: '2',
          recordHash: `${packageId}${i}`.padEnd(16, '0'),
          outcome: 'created' as const,
        })),
      },
    ],
  });
  const sentAll = ['PC1:delivered', 'PC3:delivered'];
  const demandOf = (n: number, loan: EkoLoanItem, caseId: string) => ({ reference: ref(n), caseId, contract: loan.contract_number, status: 'PC3' });
  const demands = [
    demandOf(1, A, `${id(A)}/r1`),
    demandOf(2, B, `${id(B)}/r1`),
    demandOf(3, C, `${id(C)}/r1`),
    demandOf(4, C, `${id(C)}/r1/episode-2`),
    demandOf(5, D, `${id(D)}/r1`),
    demandOf(6, E, `${id(E)}/r1`),
  ];
  const pc3 = (n: number) => ({ reference: ref(n), status: 'PC3' as const, acceptedByBank: true, inCardIndex: true });
  return {
    plan,
    load: {
      requests: [
        { step: 0, at: 0, items: 4, kinds: { new: 3, scenario: 1 }, attempts: [{ at: 0, outcome: '0' }], acceptedAt: 0 },
        {
          step: 1,
          at: 10,
          items: 2,
          kinds: { new: 2 },
          attempts: [
            { at: 10, outcome: 'interrupted: ECONNRESET' },
            { at: 12, outcome: '0' },
          ],
          acceptedAt: 12,
          interrupted: { at: 10, target: 'api', outcome: 'interrupted: ECONNRESET' },
        },
        { step: 2, at: 20, items: 3, kinds: { resend: 1, repay: 2 }, attempts: [{ at: 20, outcome: '0' }], acceptedAt: 20 },
        { step: 3, at: 30, items: 1, kinds: { reopen: 1 }, attempts: [{ at: 30, outcome: '0' }], acceptedAt: 30 },
      ],
      accepted,
      givenUp: 0,
    },
    k2: {
      outbox: [
        row(1, A, 'r0'),
        row(2, B, 'r0'),
        row(3, C, 'r0'),
        row(4, SCENARIO, 'r0'),
        row(5, D, 'r1'),
        row(6, E, 'r1'),
        row(7, resent(A), 'r2'),
        row(8, repaid(B), 'r2'),
        row(9, repaid(C), 'r2'),
        row(10, C2, 'r3'),
      ],
      demands,
      gkbRecords: [],
    },
    eko: {
      journal: demands.map((d) => ({
        reference: d.reference,
        contract_number: d.contract,
        received_at: '2026-03-02T06:00:00.000Z',
        outcome: 'accepted' as const,
      })),
      demands: demands.map((d) => ({ reference: d.reference, contract_number: d.contract, state: 'done', sent: sentAll })),
    },
    gkb: {
      uploads: [],
      calls: {},
      packages: [
        pkg(
          '1',
          [A, B, C, D, E].map((l) => l.contract_number),
        ),
      ],
      inFlightConflicts: [],
    },
    abs: { since: '2026-03-02T06:00:00.000Z', total: 0, calls: {} },
    cases: [
      running(
        A,
        status(resent(A), { demand: pc3(1), attention: { code: 'gkb-new-contract', reason: 'GKB created it', stage: 'reported-to-gkb', since: 'x' } }),
      ),
      // Closed before its statuses came: K2 recorded them in its database only.
      {
        workflowId: id(B),
        contract: B.contract_number,
        status: 'COMPLETED',
        runs: 1,
        caseStatus: status(repaid(B), {
          stage: 'closed',
          closedReason: 'repaid',
          demand: { ...pc3(2), status: 'sent', inCardIndex: false, acceptedByBank: false },
        }),
        pendingActivities: [],
      },
      { ...running(C, status(C2, { demand: pc3(4), episode: 2 })), runs: 2 },
      running(D, status(D, { demand: pc3(5) })),
      running(E, status(E, { demand: pc3(6) })),
      running(
        SCENARIO,
        status(SCENARIO, { stage: 'received', attention: { code: 'client-unknown', reason: 'ABS answered error_code 1', stage: 'received', since: 'x' } }),
      ),
    ],
  };
}

const pc3Of = (n: number) => ({ reference: ref(n), status: 'PC3' as const, acceptedByBank: true, inCardIndex: true });
const only = (violations: Violation[]) => violations.map((v) => [v.rule, v.workflowId]);
const caseOf = (f: Facts, loan: EkoLoanItem) => f.cases.find((c) => c.contract === loan.contract_number)!;

test('a run that kept every promise has no violation', () => {
  expect(checkFacts(goodFacts())).toEqual([]);
});

test('a demand withdrawn because its case closed before sending it, which EKO never took, is no violation', () => {
  // B was repaid before its demand went to EKO.
  const f = goodFacts();
  f.eko.journal = f.eko.journal.filter((e) => e.reference !== ref(2));
  f.eko.demands = f.eko.demands.filter((d) => d.reference !== ref(2));
  caseOf(f, B).caseStatus!.demand = { reference: ref(2), status: 'issued', acceptedByBank: false, inCardIndex: false };
  f.k2.demands[1].status = 'withdrawn';
  expect(checkFacts(f)).toEqual([]);
  f.k2.demands[1].status = 'sent';
  expect(only(checkFacts(f))).toEqual([['lost', id(B)]]);
});

test('expectations: the last accepted data, one more episode per return to overdue after a repayment', () => {
  const e = expectationsOf(goodFacts().load.accepted);
  expect(e.get(C.contract_number)).toMatchObject({ episodes: 2, lastKind: 'reopen', last: normalized(C2) });
  expect(e.get(B.contract_number)).toMatchObject({ episodes: 1, last: { debt: '0.00' } });
  expect(e.get(A.contract_number)?.digests).toHaveLength(2);
});

test.each<[string, (f: Facts) => void, Rule, EkoLoanItem | undefined]>([
  ['an accepted item missing from the outbox', (f) => void (f.k2.outbox = f.k2.outbox.filter((r) => r.id !== 7)), 'lost', A],
  ['a dead letter', (f) => void (f.k2.outbox[1].dead = true), 'lost', B],
  ['an outbox row never dispatched', (f) => void (f.k2.outbox[3].dispatched = false), 'lost', SCENARIO],
  ['no case for an accepted loan', (f) => void (caseOf(f, E).status = 'NOT_FOUND'), 'lost', E],
  ['a case that failed', (f) => void (caseOf(f, D).status = 'FAILED'), 'lost', D],
  ['a case holding older data than the last accepted', (f) => void (caseOf(f, A).caseStatus!.overdueDays = A.overdue_days), 'lost', A],
  ['a status EKO delivered that the open case does not show', (f) => void (caseOf(f, D).caseStatus!.demand!.status = 'PC1'), 'lost', D],
  ['a status EKO delivered that K2 did not record', (f) => void (f.k2.demands[1].status = 'sent'), 'lost', B],
  ['EKO giving up on a status', (f) => void (f.eko.demands[4].state = 'gave_up'), 'lost', D],
  ['a demand K2 marked sent that EKO never took', (f) => void (f.eko.journal = f.eko.journal.filter((e) => e.reference !== ref(6))), 'lost', E],
  [
    'an overdue case before its demand',
    (f) => void Object.assign(caseOf(f, D).caseStatus!, { stage: 'evidence-collected', demand: undefined }),
    'unexpected-stage',
    D,
  ],
  ['a repaid case still open', (f) => void Object.assign(caseOf(f, B), { status: 'RUNNING' }), 'unexpected-stage', B],
  [
    'K2 issuing more demands than episodes',
    (f) => void f.k2.demands.push({ reference: ref(8), caseId: `${id(A)}/r2`, contract: A.contract_number, status: 'issued' }),
    'double-demand',
    A,
  ],
  [
    'an overdue case parked for a reason its data does not give',
    (f) => void (caseOf(f, E).caseStatus!.attention = { code: 'eko-unavailable', reason: 'EKO away', stage: 'demand-issued', since: 'x' }),
    'unexpected-stage',
    E,
  ],
  [
    'gkb-rejected without a rejection at GKB',
    (f) => void (caseOf(f, E).caseStatus!.attention = { code: 'gkb-rejected', reason: 'rejected', stage: 'demand-issued', since: 'x' }),
    'unexpected-stage',
    E,
  ],
  [
    'a scenario loan that did not park where its scenario does',
    (f) => void (caseOf(f, SCENARIO).caseStatus!.attention = undefined),
    'unexpected-stage',
    SCENARIO,
  ],
  [
    'a second demand for one episode',
    (f) => void f.eko.journal.push({ reference: ref(7), contract_number: A.contract_number, received_at: 'x', outcome: 'accepted' }),
    'double-demand',
    A,
  ],
  ['a reference taken as new twice', (f) => void f.eko.journal.push({ ...f.eko.journal[3], outcome: 'accepted-then-5xx' }), 'double-demand', C],
  [
    'two references for one episode key EKO received',
    (f) => void f.eko.journal.forEach((e) => e.contract_number === C.contract_number && (e.episode = 'same')),
    'double-demand',
    C,
  ],
  [
    'one report accepted in two packages',
    (f) => void f.gkb.packages.push({ ...f.gkb.packages[0], packageId: '2', packageName: 'K2_b1_1.zip' }),
    'gkb-double-accepted',
    A,
  ],
  [
    'a contract in two packages in flight at once',
    (f) =>
      void f.gkb.inFlightConflicts.push({
        at: 'x',
        contract: `${B.contract_number}|2020-01-01`,
        packageId: '3',
        packageName: 'p3',
        otherPackageId: '1',
        otherPackageName: 'p1',
      }),
    'gkb-in-flight',
    B,
  ],
  [
    'an open case waiting for nothing it names',
    (f) => void Object.assign(caseOf(f, D).caseStatus!, { stage: 'demand-issued', gkb: { state: 'not-reported' } }),
    'waiting-without-reason',
    D,
  ],
  ['the POST cut off mid-flight accepted in part', (f) => void (f.k2.outbox.find((r) => r.id === 6)!.requestId = 'r-half'), 'partly-accepted', undefined],
])('%s is found and names the case', (_what, breakIt, rule, loan) => {
  const facts = goodFacts();
  breakIt(facts);
  const found = checkFacts(facts);
  expect(only(found)).toContainEqual([rule, loan ? id(loan) : undefined]);
  for (const v of found) expect(v.detail.length).toBeGreaterThan(10);
});

test('gkb-rejected is where a repaid or overdue case may rightly park when GKB rejected its last record', () => {
  const facts = goodFacts();
  caseOf(facts, E).caseStatus!.attention = { code: 'gkb-rejected', reason: 'GKB rejected the record', stage: 'demand-issued', since: 'x' };
  const record = facts.gkb.packages[0].files[0].records.find((r) => r.contract.startsWith(E.contract_number))!;
  Object.assign(record, { outcome: 'rejected', message: 'Запись отклонена' });
  expect(checkFacts(facts)).toEqual([]);
});

describe('waitingReason', () => {
  const base = status(A, { stage: 'demand-issued', gkb: { state: 'not-reported' } });
  test("attention, a running activity, GKB's answer or EKO's are reasons an operator sees", () => {
    expect(waitingReason({ ...base, attention: { code: 'scan-missing', reason: 'ABS has no scan', stage: 'account-checked', since: 'x' } }, [])).toBe(
      'needs attention (scan-missing): ABS has no scan',
    );
    expect(waitingReason(base, [{ type: 'sendDemand', attempt: 4, lastFailure: 'EKO answered HTTP 503' }])).toBe(
      'runs sendDemand (attempt 4, last failure: EKO answered HTTP 503)',
    );
    expect(waitingReason({ ...base, gkb: { state: 'queued', recordId: '17' } }, [])).toBe("waits for GKB's result of record 17");
    expect(waitingReason({ ...base, stage: 'closed', gkb: { state: 'queued', recordId: '18' } }, [])).toBe("waits for GKB's result of record 18");
    expect(
      waitingReason({ ...base, stage: 'reported-to-gkb', demand: { reference: ref(1), status: 'PC1', acceptedByBank: true, inCardIndex: false } }, []),
    ).toContain("EKO's statuses");
    expect(
      waitingReason({ ...base, stage: 'reported-to-gkb', demand: { reference: ref(1), status: 'PC3', acceptedByBank: true, inCardIndex: true } }, []),
    ).toContain('re-sent or repaid');
  });
  test('nothing named: undefined', () => {
    expect(waitingReason(base, [])).toBeUndefined();
    expect(waitingReason({ ...base, stage: 'evidence-collected' }, [])).toBeUndefined();
    expect(
      waitingReason({ ...base, stage: 'reported-to-gkb', demand: { reference: ref(1), status: 'issued', acceptedByBank: false, inCardIndex: false } }, []),
    ).toBeUndefined();
    expect(waitingReason({ ...base, stage: 'closed', gkb: { state: 'accepted', recordId: '1', result: 'ok' } }, [])).toBeUndefined();
  });
});

test('back overdue while closing: the item waits in the case as its next episode, rightly only behind a closure GKB rejected', () => {
  const facts = goodFacts();
  const c = caseOf(facts, C);
  // The closing run still holds the repaid data; the reopen waits as its next episode.
  Object.assign(c, { runs: 1 });
  c.caseStatus = status(repaid(C), {
    stage: 'closed',
    demand: pc3Of(3),
    attention: { code: 'gkb-rejected', reason: 'GKB rejected the record', stage: 'closed', since: 'x' },
    nextEpisode: { debt: normalized(C2).debt, overdueDays: normalized(C2).overdue_days },
  });
  expect(only(checkFacts(facts))).toContainEqual(['unexpected-stage', id(C)]);
  const record = facts.gkb.packages[0].files[0].records.find((r) => r.contract.startsWith(C.contract_number))!;
  Object.assign(record, { outcome: 'rejected', message: 'Запись отклонена' });
  expect(only(checkFacts(facts)).filter(([, w]) => w === id(C))).toEqual([]);
});

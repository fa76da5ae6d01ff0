/**
 * The bare floor (bench/topology.ts): a workflow with the Temporal shape of a happy-path case up to
 * "demand issued and GKB record queued", doing nothing. A real happy-path case's first workflow
 * task (bench/README.md, "topology") holds the dispatcher's loanUpdated signal, the markers of its
 * seven local activities (ABS: client, accounts, disbursement line, scan; K2's database: the demand;
 * EKO: sending it; the GKB queue), one upsert of its stage, and the timer of its wait for EKO's
 * statuses. This does the same, with activities that return at once (bench/floor-worker.ts).
 * K2's own extras (its patch markers and their TemporalChangeVersion upserts) are not mirrored:
 * they are K2's cost, which the ratio is meant to show.
 */
import { condition, proxyLocalActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { loanUpdatedSignal } from '../workflows/definitions';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

/** The case's calls up to its GKB queue, in its order (workflows/case.ts). */
export const FLOOR_CALLS = ['checkClient', 'listAccounts', 'fetchDisbursementLine', 'fetchScan', 'issueDemand', 'sendDemand', 'enqueueGkbReport'] as const;
export type FloorActivities = Record<(typeof FLOOR_CALLS)[number], () => Promise<{ ok: true }>>;

export async function benchFloor(_input: unknown): Promise<void> {
  setHandler(loanUpdatedSignal, () => undefined);
  // The case's quick attempts' options (workflows/case.ts `quick`).
  const calls = proxyLocalActivities<FloorActivities>({
    startToCloseTimeout: '3 seconds',
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
  });
  for (const name of FLOOR_CALLS) await calls[name]();
  // The case's one upsert before it waits (workflows/case.ts upsertIfChanged): the same keys, the stage it reached.
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.stage, value: 'demand-issued' },
    { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
    { key: SEARCH_ATTRIBUTES.attentionReason, value: null },
  ]);
  // Waits as a case waits for its statuses (a timer, like the case's 30-day condition).
  await condition(() => false, '30 days');
}

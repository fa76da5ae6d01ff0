/**
 * What the CLI's acting commands share: the cases a command acts on (contracts named, or every
 * running case of a visibility query, read into a list first so that acting on them cannot move
 * the query's pages under it), and running one call per item a bounded number at a time with a
 * progress line. Temporal's batch operations cannot send an Update (server 1.32's
 * StartBatchOperation does signal, terminate, cancel, delete, reset and options only), and a signal
 * would skip the operator Update's validator: so bulk actions are Updates from this client.
 */
import { isGrpcServiceError, ServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { caseWorkflowId } from '../domain/case';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { UsageError } from './command';

/** A case an action goes to, with what visibility says of it (absent for a contract named but not looked up). */
export interface CaseTarget {
  contract: string;
  workflowId: string;
  stage?: string;
  reason?: string;
  /** The workflow's status (Running, Completed, ...) when it was looked up. */
  status?: string;
}

const CASE_PREFIX = caseWorkflowId('');
/** How long listing a query's cases may take in all (visibility pages of 1000), and one describe. */
const LIST_TIMEOUT_MS = 120_000;
const DESCRIBE_TIMEOUT_MS = 10_000;

/** The contract of a case's workflow id (domain/case.ts caseWorkflowId), undefined for another workflow. */
export function contractOfWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith(CASE_PREFIX) && workflowId.length > CASE_PREFIX.length ? workflowId.slice(CASE_PREFIX.length) : undefined;
}

/** The operator's query narrowed to running cases (a closed case takes no action). */
export function runningCasesQuery(query: string): string {
  return `WorkflowType = "caseWorkflow" AND ExecutionStatus = "Running" AND (${query})`;
}

/** Every running case the query matches, in visibility's order. A query Temporal refuses is a usage error with Temporal's reason. */
export async function casesOfQuery(client: Client, query: string): Promise<CaseTarget[]> {
  const found: CaseTarget[] = [];
  const seen = new Set<string>();
  const list = async () => {
    for await (const w of client.workflow.list({ query: runningCasesQuery(query) })) {
      const contract = contractOfWorkflowId(w.workflowId);
      // A case continuing as new while the pages are read may be listed by both runs: once is enough.
      if (!contract || seen.has(w.workflowId)) continue;
      seen.add(w.workflowId);
      found.push({
        contract,
        workflowId: w.workflowId,
        stage: w.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stage),
        reason: w.typedSearchAttributes.get(SEARCH_ATTRIBUTES.attentionReason),
        status: w.status.name,
      });
    }
  };
  try {
    await client.withDeadline(Date.now() + LIST_TIMEOUT_MS, list);
  } catch (err) {
    const refusal = queryRefusal(err);
    if (refusal) throw new UsageError(`--query ${JSON.stringify(query)}: Temporal refused it: ${refusal}`);
    throw err;
  }
  return found;
}

/** Temporal's text when it refused a query as invalid (gRPC INVALID_ARGUMENT), else undefined. */
function queryRefusal(err: unknown): string | undefined {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(grpc) && grpc.code === 3 ? grpc.details || grpc.message : undefined;
}

/** A named contract's case as visibility describes it; status 'not found' when there is none. */
export async function describeCase(client: Client, contract: string): Promise<CaseTarget> {
  const workflowId = caseWorkflowId(contract);
  try {
    const d = await client.withDeadline(Date.now() + DESCRIBE_TIMEOUT_MS, () => client.workflow.getHandle(workflowId).describe());
    return {
      contract,
      workflowId,
      stage: d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stage),
      reason: d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.attentionReason),
      status: d.status.name,
    };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { contract, workflowId, status: 'not found' };
    throw err;
  }
}

/** Counts of a bulk run by outcome. */
export type Tally = Record<string, number>;

/** The progress line of a bulk run: `close: 120/300 (done 118, refused 2, failed 0)`. */
export function progressLine(verb: string, finished: number, total: number, tally: Tally): string {
  const parts = Object.entries(tally).map(([outcome, n]) => `${outcome} ${n}`);
  return `${verb}: ${finished}/${total}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** After how many finished items a progress line is due: about every tenth of the run, at least every 10 items. */
export function progressStep(total: number): number {
  return Math.max(10, Math.ceil(total / 10));
}

/**
 * Runs `fn` on every item, at most `concurrency` at a time, and returns the results in the items'
 * order. `fn` must not throw (it reports its own failure as a result); `onFinished` is told after
 * each item how many have finished.
 */
export async function runBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<R>,
  onFinished?: (finished: number, result: R) => void,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let finished = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) {
      results[i] = await fn(items[i]);
      onFinished?.(++finished, results[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  return results;
}

/** A --concurrency value: a whole number from 1 to 64. */
export function parseConcurrency(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 64) throw new UsageError(`--concurrency: "${text}" is not a whole number from 1 to 64`);
  return Number(text);
}

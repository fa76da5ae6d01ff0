/**
 * An outbox row reaches its case once, even when it is handed over twice. A replica killed between
 * Temporal's answer and marking the row leaves it claimed; after the lease another replica sends it
 * again (api/dispatcher.ts). Temporal deduplicates SignalWithStart and Signal by their request id:
 * the history service keeps the request ids of a run's signals and answers a repeat without a second
 * WorkflowExecutionSignaled event (and SignalWithStart of a run it started itself without a second
 * run). The TypeScript client (SDK 1.24) draws a random request id for each of these calls and has
 * no option for it, so the dispatcher runs each hand-over inside withRequestId(outboxRequestId(id)),
 * and the connection's WorkflowService, wrapped once (stampRequestIds), puts that id on those two
 * requests. Every other call, and every call outside withRequestId, keeps the client's random id.
 *
 * The deduplication lasts as long as the run: an item re-sent after the case continued as new is a
 * new signal, which the case ignores by its acceptedSeq (workflows/case-rules.ts isStaleItem).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The request id of an outbox row's hand-over: the row id, which survives restarts and is the same on every replica. */
export function outboxRequestId(outboxId: number): string {
  return `k2-outbox-${outboxId}`;
}

const current = new AsyncLocalStorage<string>();

/** Runs `call` so that the SignalWithStart or Signal it makes carries `requestId` (once stampRequestIds wrapped the client's connection). */
export function withRequestId<T>(requestId: string, call: () => Promise<T>): Promise<T> {
  return current.run(requestId, call);
}

/** The requests Temporal deduplicates by request id that the dispatcher makes. */
const STAMPED_METHODS = ['signalWithStartWorkflowExecution', 'signalWorkflowExecution'] as const;
const STAMPED = Symbol.for('k2.outboxRequestIds');

type Service = Record<string | symbol, unknown>;
type Rpc = (request: { requestId?: string | null }, ...rest: unknown[]) => unknown;

/**
 * Wraps the two methods of the client's WorkflowService (once per connection; a client without one,
 * e.g. a test's fake, is left as it is) so that inside withRequestId they send its request id.
 */
export function stampRequestIds(client: { connection?: unknown }): void {
  const service = (client.connection as { workflowService?: Service } | undefined)?.workflowService;
  if (!service || service[STAMPED]) return;
  for (const method of STAMPED_METHODS) {
    const rpc = service[method];
    if (typeof rpc !== 'function') continue;
    service[method] = (request: { requestId?: string | null }, ...rest: unknown[]) => {
      const requestId = current.getStore();
      return (rpc as Rpc).call(service, requestId ? { ...request, requestId } : request, ...rest);
    };
  }
  service[STAMPED] = true;
}

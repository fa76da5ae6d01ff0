/**
 * Drains the loan outbox into Temporal. Why an outbox rather than starting workflows in the request:
 * EKO sends up to 50,000 loans at once and must get its answer in seconds, and "error_code 0" must
 * mean durably accepted even if Temporal is briefly unreachable. The API commits the items in one
 * database transaction and answers; this loop then signals-with-start each case, at its own pace,
 * retrying until Temporal has it. Re-dispatching a row after a crash is harmless: the case ignores
 * an update identical to what it already has.
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';
import { markDispatched, markDispatchFailed, pendingLoans, countPending, OutboxRow } from '../db/outbox';
import { caseWorkflowId, CaseSettings } from '../domain/case';
import type { Loan } from '../domain/loan';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';

export function caseSettingsFrom(config: Config): CaseSettings {
  return { absHorizonMs: config.abs.transientHorizonMs, scanRecheckMs: config.abs.scanRecheckMs, maxHistoryEvents: 2000 };
}

const ZERO = /^0+(\.0+)?$/;

export class OutboxDispatcher {
  private running = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private readonly dispatched;
  private readonly failures;
  private readonly pending;

  constructor(
    private readonly db: Db,
    private readonly client: Client,
    private readonly config: Config,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.dispatched = metrics.counter('k2_outbox_dispatched_total', 'Outbox items handed to Temporal.');
    this.failures = metrics.counter('k2_outbox_dispatch_failures_total', 'Failed attempts to hand an outbox item to Temporal.');
    this.pending = metrics.gauge('k2_outbox_pending', 'Accepted loan items not yet handed to Temporal.');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Called after a commit so new items go out at once instead of at the next poll. */
  nudge(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.nudge();
    await this.loop;
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.running) {
      try {
        const rows = await pendingLoans(this.db, this.config.api.dispatchBatch);
        this.pending.set(rows.length < this.config.api.dispatchBatch ? rows.length : await countPending(this.db));
        if (rows.length === 0) {
          await this.idle(1000);
          continue;
        }
        const failed = await this.dispatchRound(rows);
        backoffMs = failed ? Math.min(Math.max(backoffMs * 2, 500), 30_000) : 0;
        if (backoffMs) await this.idle(backoffMs);
      } catch (err) {
        this.logger.error('outbox round failed', { err });
        await this.idle(2000);
      }
    }
  }

  /** Rows of one contract go in order; different contracts go in parallel. Returns true when any row failed. */
  private async dispatchRound(rows: OutboxRow[]): Promise<boolean> {
    const byContract = new Map<string, OutboxRow[]>();
    for (const row of rows) byContract.set(row.contract_number, [...(byContract.get(row.contract_number) ?? []), row]);
    const queues = [...byContract.values()];
    const done: number[] = [];
    let failed = false;
    const worker = async () => {
      for (let queue = queues.shift(); queue; queue = queues.shift()) {
        for (const row of queue) {
          try {
            await this.dispatchLoan(row.loan);
            done.push(row.id);
          } catch (err) {
            failed = true;
            this.failures.inc();
            await markDispatchFailed(this.db, row.id, String((err as Error).message ?? err));
            this.logger.warn('outbox item not yet dispatched', { outboxId: row.id, attempts: row.attempts + 1, err });
            break; // keep this contract's later rows behind the failed one
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.api.dispatchConcurrency, queues.length) }, worker));
    await markDispatched(this.db, done);
    this.dispatched.inc(undefined, done.length);
    return failed;
  }

  async dispatchLoan(loan: Loan): Promise<void> {
    const workflowId = caseWorkflowId(loan.contract_number);
    if (ZERO.test(loan.debt)) {
      // A repaid loan closes its open case; with no open case there is nothing to start.
      try {
        await this.client.workflow.getHandle(workflowId).signal('loanUpdated', loan);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        this.logger.info('repaid loan has no open case', { workflowId });
      }
      return;
    }
    await this.client.workflow.signalWithStart('caseWorkflow', {
      workflowId,
      taskQueue: this.config.temporal.taskQueue,
      args: [{ loan, settings: caseSettingsFrom(this.config) }],
      signal: 'loanUpdated',
      signalArgs: [loan],
    });
  }
}

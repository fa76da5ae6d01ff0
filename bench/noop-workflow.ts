/**
 * The benchmark's trivial workflow: started for the bare Temporal rate, it accepts the dispatcher's
 * signal and returns at once. Used only by bench/noop-worker.ts.
 */
import { defineSignal, setHandler } from '@temporalio/workflow';

export async function benchNoop(_input: unknown): Promise<void> {
  setHandler(defineSignal<[unknown]>('loanUpdated'), () => undefined);
}

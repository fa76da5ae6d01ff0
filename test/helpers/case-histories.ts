/**
 * What reached a case, read from its history rather than from K2's own records: the outbox items
 * (LoanMeta.acceptedSeq, the outbox row id) of its loanUpdated signals, decoded with the client's
 * data converter (K2's payload codec: a bare client cannot read them).
 */
import type { Client } from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { LoanMeta } from '../../domain/case';
import { loanUpdatedSignal } from '../../workflows/definitions';

export interface CaseItems {
  /** acceptedSeq of the item the case was started with (its input), when it has one. */
  startedWith?: number;
  /** acceptedSeq of each loanUpdated signal, in history order (a signal-with-start's own signal included). */
  signalled: number[];
}

/** The outbox items that reached the case's current run. */
export async function caseItems(client: Client, workflowId: string): Promise<CaseItems> {
  const converter = client.options.loadedDataConverter;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const items: CaseItems = { signalled: [] };
  for (const event of history.events ?? []) {
    const started = event.workflowExecutionStartedEventAttributes;
    if (started) {
      const [input] = (await decodeArrayFromPayloads(converter, started.input?.payloads)) as Array<{ meta?: LoanMeta } | undefined>;
      if (input?.meta) items.startedWith = input.meta.acceptedSeq;
    }
    const signalled = event.workflowExecutionSignaledEventAttributes;
    if (signalled?.signalName === loanUpdatedSignal.name) {
      const [, meta] = (await decodeArrayFromPayloads(converter, signalled.input?.payloads)) as [unknown, LoanMeta | undefined];
      if (meta) items.signalled.push(meta.acceptedSeq);
    }
  }
  return items;
}

/**
 * A small workflow for test/integration/codec-failures.test.ts: personal data in its input, in a
 * local activity's result (a marker), in an activity's input and in the activity's failure message.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';

export interface CodecBorrower {
  iin: string;
  name: string;
}

export interface CodecTestActivities {
  readBorrower(iin: string): Promise<CodecBorrower>;
  askAbs(borrower: CodecBorrower): Promise<string>;
}

const { readBorrower } = proxyLocalActivities<CodecTestActivities>({ startToCloseTimeout: '10s' });
const { askAbs } = proxyActivities<CodecTestActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });

export async function codecTestWorkflow(iin: string): Promise<string> {
  const borrower = await readBorrower(iin);
  return askAbs(borrower);
}

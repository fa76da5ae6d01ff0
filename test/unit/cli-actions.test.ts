/** The pure parts of the CLI's acting commands (cli/actions.ts, cli/bulk.ts). */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { actionOf, failureOf } from '../../cli/actions';
import { contractOfWorkflowId, parseConcurrency, progressLine, progressStep, runBounded, runningCasesQuery } from '../../cli/bulk';
import { UsageError } from '../../cli/command';
import { caseWorkflowId } from '../../domain/case';
import { MAX_NOTE_LENGTH } from '../../workflows/case-rules';

const TODAY = '2026-03-10';

describe("actionOf: the action from the options, checked by the workflow validator's rules before anything is sent", () => {
  test('each action with its value and an optional note', () => {
    expect(actionOf('retry', {}, TODAY)).toEqual({ action: 'retry' });
    expect(actionOf('close', { note: 'written off' }, TODAY)).toEqual({ action: 'close', note: 'written off' });
    expect(actionOf('supply-agreement-date', { date: '2020-01-01' }, TODAY)).toEqual({ action: 'supply-agreement-date', dbzDate: '2020-01-01' });
    expect(actionOf('acknowledge', { notice: 'gkb-new-contract', note: 'fixed at GKB' }, TODAY)).toEqual({
      action: 'acknowledge',
      code: 'gkb-new-contract',
      note: 'fixed at GKB',
    });
    // Whether the case shows the notice only the case knows: its validator decides.
    expect(actionOf('acknowledge', { notice: 'gkb-waiting' }, TODAY)).toEqual({ action: 'acknowledge', code: 'gkb-waiting' });
  });

  test('a missing value names the option', () => {
    expect(() => actionOf('supply-agreement-date', {}, TODAY)).toThrow(
      new UsageError('--date YYYY-MM-DD is required: the agreement date (dbz_date) the loan came without'),
    );
    expect(() => actionOf('acknowledge', {}, TODAY)).toThrow(/--notice is required: the notice to acknowledge, one of gkb-new-contract, gkb-waiting/);
  });

  test("a wrong value is refused with the validator's own message", () => {
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('not refused');
    };
    expect(refused(() => actionOf('supply-agreement-date', { date: '2020-02-30' }, TODAY))).toBe(
      'not sent: dbzDate "2020-02-30" is not a calendar date YYYY-MM-DD',
    );
    expect(refused(() => actionOf('supply-agreement-date', { date: '01.02.2020' }, TODAY))).toBe(
      'not sent: dbzDate "01.02.2020" is not a calendar date YYYY-MM-DD',
    );
    expect(refused(() => actionOf('supply-agreement-date', { date: '2026-03-11' }, TODAY))).toBe(
      'not sent: dbzDate 2026-03-11 is in the future (today is 2026-03-10)',
    );
    expect(refused(() => actionOf('retry', { note: 'x'.repeat(MAX_NOTE_LENGTH + 1) }, TODAY))).toBe(
      `not sent: note is ${MAX_NOTE_LENGTH + 1} characters long; at most ${MAX_NOTE_LENGTH}`,
    );
    expect(refused(() => actionOf('acknowledge', { notice: 'abs-unavailable' }, TODAY))).toBe(
      'not sent: only a notice can be acknowledged (gkb-new-contract, gkb-waiting), not "abs-unavailable"',
    );
    // The longest note allowed passes; today itself passes.
    expect(actionOf('retry', { note: 'x'.repeat(MAX_NOTE_LENGTH) }, TODAY).note).toHaveLength(MAX_NOTE_LENGTH);
    expect(actionOf('supply-agreement-date', { date: TODAY }, TODAY)).toMatchObject({ dbzDate: TODAY });
  });
});

describe('failureOf: how a failed Update reads', () => {
  test("the validator's refusal carries its message", () => {
    const err = new WorkflowUpdateFailedError(
      'Workflow Update failed',
      ApplicationFailure.create({ message: 'the case has no notice gkb-new-contract to acknowledge', type: 'Error' }),
    );
    expect(failureOf(err)).toEqual({ outcome: 'refused', message: 'the case has no notice gkb-new-contract to acknowledge' });
  });

  test('a case that does not run, no answer in time, anything else: failed and why', () => {
    expect(failureOf(new WorkflowNotFoundError('workflow execution already completed', 'case-KD1', undefined))).toEqual({
      outcome: 'failed',
      message: 'no running case (closed, or never started): workflow execution already completed',
    });
    expect(failureOf(new WorkflowUpdateRPCTimeoutOrCancelledError('timeout'), 30_000)).toEqual({
      outcome: 'failed',
      message: expect.stringMatching(/^no answer within 30s \(is a worker running\?\)/),
    });
    const wrapped = Object.assign(new Error('Workflow Update failed'), { cause: new Error('8 RESOURCE_EXHAUSTED: limit') });
    expect(failureOf(wrapped)).toEqual({ outcome: 'failed', message: 'Workflow Update failed: 8 RESOURCE_EXHAUSTED: limit' });
  });
});

describe('bulk helpers', () => {
  test("a case's contract from its workflow id, and only a case's", () => {
    expect(contractOfWorkflowId(caseWorkflowId('KD0000000001'))).toBe('KD0000000001');
    expect(contractOfWorkflowId('gkb-batch-2026-03-10T00:00:00Z')).toBeUndefined();
    expect(contractOfWorkflowId('case-')).toBeUndefined();
  });

  test("the operator's query is narrowed to running cases, kept whole in parentheses", () => {
    expect(runningCasesQuery('K2AttentionReason="abs-unavailable" OR K2Stage="received"')).toBe(
      'WorkflowType = "caseWorkflow" AND ExecutionStatus = "Running" AND (K2AttentionReason="abs-unavailable" OR K2Stage="received")',
    );
  });

  test('progress lines, about every tenth of the run', () => {
    expect(progressLine('close', 120, 300, { done: 118, refused: 2, failed: 0 })).toBe('close: 120/300 (done 118, refused 2, failed 0)');
    expect(progressStep(300)).toBe(30);
    expect(progressStep(5)).toBe(10);
  });

  test('runBounded keeps the order, never runs more than asked at once, and reports each finished item', async () => {
    let running = 0;
    let most = 0;
    const finished: number[] = [];
    const items = Array.from({ length: 25 }, (_, i) => i);
    const results = await runBounded(
      items,
      4,
      async (i) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setImmediate(r));
        running -= 1;
        return i * 2;
      },
      (n) => finished.push(n),
    );
    expect(results).toEqual(items.map((i) => i * 2));
    expect(most).toBe(4);
    expect(finished).toEqual(items.map((i) => i + 1));
    expect(await runBounded([], 4, async () => 1)).toEqual([]);
  });

  test('--concurrency: a whole number from 1 to 64', () => {
    expect(parseConcurrency(undefined, 8)).toBe(8);
    expect(parseConcurrency('16', 8)).toBe(16);
    for (const bad of ['0', '65', '2.5', 'many', '']) expect(() => parseConcurrency(bad, 8)).toThrow(UsageError);
  });
});

/** Temporal test environments on the project-local binaries (never downloaded at run time). */
import { Client } from '@temporalio/client';
import type { Workflow, WorkflowResultType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { temporalCliPath, testServerPath, SEARCH_ATTRIBUTES } from '../../scripts/system';

const INDEXED_TYPES: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Datetime: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
};

/** Worker logs at WARN in tests, so a failure's output is readable. Once per test file (jest isolates modules per file). */
function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed for this test file
  }
}

/** The time-skipping server, with K2's search attributes registered as the dev server has them. */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerPath() } },
  });
  const searchAttributes = Object.fromEntries(SEARCH_ATTRIBUTES.map((sa) => sa.split('=')).map(([name, type]) => [name, INDEXED_TYPES[type]]));
  await env.connection.operatorService.addSearchAttributes({ namespace: env.namespace ?? 'default', searchAttributes });
  return env;
}

/** A real Temporal dev server (in-memory), with K2's search attributes. */
export function localEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      extraArgs: SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', sa]),
    },
  });
}

/**
 * A workflow's result once it ends, time passed an hour at a time with env.sleep. Not result():
 * while a client waits on result() the test server skips straight to the next timer of any
 * workflow, and a case parked without a timer has only its 10-year execution timeout left.
 * Time is skipped only while the workflow has no activity in flight: an hour skipped over a
 * running upload times it out, which on a loaded machine made a batch test fail at random.
 */
export async function resultOnSkippedHours<T extends Workflow>(
  env: TestWorkflowEnvironment,
  workflowId: string,
  maxHours = Infinity,
): Promise<WorkflowResultType<T>> {
  const plain = new Client({ connection: env.connection }); // its result() does not unlock time skipping
  const handle = plain.workflow.getHandle<T>(workflowId);
  for (let hours = 0; ;) {
    const { status, raw } = await handle.describe();
    if (status.name !== 'RUNNING') return handle.result();
    if (raw.pendingActivities?.length) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    if (++hours > maxHours) throw new Error(`${workflowId} still running after ${maxHours} hours`);
    await env.sleep(3600_000);
  }
}

/**
 * Used by the recorders (*.recorder.ts), which scripts/record-history-at.sh runs inside an export of
 * an old commit: that tree has its own, older test/helpers/histories.ts, so the recorder writes its
 * history itself. Imports nothing of the repo, only Node and Temporal, so it compiles in any tree.
 *
 * Before writing, the history is replayed against the exported tree's own workflow code: a recorded
 * history that does not even replay against the code that made it proves nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

/** Writes `<name>.json` into K2_HISTORIES_DIR (when K2_RECORD_HISTORIES=1). A handle with a runId records that run of a chain (e.g. the first, up to its continue-as-new). */
export async function writeHistory(handle: WorkflowHandle, name: string, workflowsPath: string): Promise<void> {
  if (process.env.K2_RECORD_HISTORIES !== '1') return;
  const dir = process.env.K2_HISTORIES_DIR;
  if (!dir) throw new Error('K2_HISTORIES_DIR is not set: run recorders with scripts/record-history-at.sh');
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowsPath }, history, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.json`), historyToJSON(history));
}

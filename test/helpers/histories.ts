/**
 * Recording histories for the replay tests: run the workflow tests with K2_RECORD_HISTORIES=1 and
 * the histories of their scenarios are written to test/replay/histories/ as JSON, the same format
 * `temporal workflow show --output json` and the Web UI's download give. Commit them whenever a
 * workflow's behaviour changes on purpose (with patched() guarding the old path), so every later
 * change must keep replaying them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { WorkflowHandle } from '@temporalio/client';

export const HISTORIES_DIR = path.join(__dirname, '..', 'replay', 'histories');

export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.K2_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), historyToJSON(history));
}

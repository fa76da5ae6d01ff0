/**
 * Determinism guard: every recorded history (test/replay/histories/, written by the workflow tests
 * with K2_RECORD_HISTORIES=1, or a stuck case's history saved with `temporal workflow show --output json`) must replay against the current workflow code without a
 * non-determinism error. A change that breaks this needs patched() for running cases.
 */
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../worker';
import { HISTORIES_DIR } from '../helpers/histories';

const files = fs.existsSync(HISTORIES_DIR) ? fs.readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort() : [];

test('there are recorded histories of both workflows to replay', () => {
  expect(files.some((f) => f.startsWith('case-'))).toBe(true);
  expect(files.some((f) => f.startsWith('gkb-batch-'))).toBe(true);
});

test.each(files)('%s replays against the current workflow code', async (file) => {
  const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8')));
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, history, path.basename(file, '.json'));
});

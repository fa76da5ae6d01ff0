/**
 * Determinism guard: every recorded history (test/replay/histories/, written by the workflow tests
 * with K2_RECORD_HISTORIES=1, by recorders run at an old commit with scripts/record-history-at.sh,
 * or a stuck case's history saved with `temporal workflow show --output json`) must replay against
 * the current workflow code without a non-determinism error. A change that breaks this needs
 * patched() for running cases.
 *
 * Each history replays in a child process with a time limit (test/helpers/histories.ts): a history
 * that sends the code into a loop that never yields fails its own test with a clear message, and
 * the child is killed, instead of hanging the suite.
 *
 * They replay with K2's data converter (payload codec with a test key, encoded failures), as the
 * worker runs today: histories written before the codec existed hold plain payloads and must still
 * replay (the codec passes them through).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../../worker';
import { bundleOptions } from '../../worker/workflow-bundle';
import { newPayloadKey } from '../../temporal/keys';
import { HISTORIES_DIR, replayHistoryFile, runWithin } from '../helpers/histories';

/** Generous for a slow, shared machine: a replay takes a few seconds; one that hangs never ends. */
const REPLAY_LIMIT_MS = 60_000;

/** The key the replay's codec holds: none of the recorded (pre-codec) histories is encrypted with it. */
const PAYLOAD_KEYS = [newPayloadKey('replay-test')];

const files = fs.existsSync(HISTORIES_DIR)
  ? fs
      .readdirSync(HISTORIES_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort()
  : [];

let dir: string;
let bundlePath: string;

beforeAll(async () => {
  // Bundled once for all histories (each replay worker would otherwise bundle the same code again).
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-replay-'));
  bundlePath = path.join(dir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    ...bundleOptions(workflowsPath()),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} },
  });
  fs.writeFileSync(bundlePath, code);
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('there are recorded histories of both workflows to replay', () => {
  expect(files.some((f) => f.startsWith('case-'))).toBe(true);
  expect(files.some((f) => f.startsWith('gkb-batch-'))).toBe(true);
});

test('a run that does not end within its limit is killed and fails with the reason given', async () => {
  // A loop that never yields, as a replay that hangs does: only killing the process ends it.
  await expect(runWithin(process.execPath, ['-e', 'for (;;) {}'], 500, 'never yields')).rejects.toThrow('never yields');
});

test.each(files)(
  '%s replays against the current workflow code',
  async (file) => {
    await replayHistoryFile(bundlePath, path.join(HISTORIES_DIR, file), REPLAY_LIMIT_MS, PAYLOAD_KEYS);
  },
  REPLAY_LIMIT_MS + 30_000,
);

/**
 * Recording histories for the replay tests: run the workflow tests with K2_RECORD_HISTORIES=1 and
 * the histories of their scenarios are written to test/replay/histories/ as JSON, the same format
 * `temporal workflow show --output json` and the Web UI's download give. Commit them whenever a
 * workflow's behaviour changes on purpose (with patched() guarding the old path), so every later
 * change must keep replaying them. Histories of an OLD commit's code are recorded with
 * scripts/record-history-at.sh (recorders in test/replay/recorders/).
 *
 * Replaying runs in a child process with a time limit: the SDK's replay worker runs workflow code
 * on the main thread without a deadlock timeout, so a history that sends today's code into a loop
 * that never yields would block the test process itself; only a process can be stopped then.
 * The child replays with K2's data converter (temporal/connection.ts: payload codec, encoded
 * failures), as the worker runs: histories recorded before the codec hold plain payloads, which the
 * codec passes through; it loads the TypeScript sources through a small transpile-on-require hook.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { PayloadKey } from '../../config';
import { formatPayloadKeys } from '../../temporal/keys';

/** Where histories are read and written; K2_HISTORIES_DIR overrides it (the recording script points an old tree's recorders here). */
export const HISTORIES_DIR = process.env.K2_HISTORIES_DIR ?? path.join(__dirname, '..', 'replay', 'histories');

export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.K2_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), historyToJSON(history));
}

/**
 * The child: replays one history file against a workflow bundle with the data converter of the
 * given payload keys (K2_PAYLOAD_KEYS format; empty: none); exit 0 when it replays, 1 with the error as JSON on stderr.
 */
const REPLAY_CHILD = `
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');
require.extensions['.ts'] = (module, filename) => {
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true };
  module._compile(ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: options, fileName: filename }).outputText, filename);
};
const { DefaultLogger, Runtime, Worker } = require('@temporalio/worker');
const { historyFromJSON } = require('@temporalio/common/lib/proto-utils');
const { temporalDataConverter } = require(path.resolve('temporal', 'connection.ts'));
const [bundlePath, historyPath, workflowId, keysText] = process.argv.slice(1);
const payloadKeys = keysText ? keysText.split(',').map((k) => ({ id: k.split(':')[0], key: Buffer.from(k.split(':')[1], 'base64') })) : [];
Runtime.install({ logger: new DefaultLogger('ERROR') });
const history = historyFromJSON(JSON.parse(fs.readFileSync(historyPath, 'utf8')));
Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath }, dataConverter: temporalDataConverter({ payloadKeys }) }, history, workflowId).then(
  () => process.exit(0),
  (err) => { process.stderr.write(JSON.stringify({ name: err && err.name, message: String(err && err.message) })); process.exit(1); },
);
`;

export interface Finished {
  code: number | null;
  stderr: string;
}

/**
 * Runs a command and waits at most limitMs for it: past the limit it is killed (SIGKILL, nothing
 * of it is left running) and the promise rejects with `why`, so a hang fails one test, not the suite.
 */
export function runWithin(command: string, args: string[], limitMs: number, why: string, cwd = process.cwd()): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(why));
    }, limitMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/**
 * Replays one history file against a workflow bundle (bundleWorkflowCode's code written to a file),
 * in a child process, within limitMs, with the data converter of `payloadKeys` (bundle the code with
 * its failureConverterPath). Rejects with the replay's own error (e.g. a DeterminismViolationError),
 * or with a clear message when the replay does not finish in time.
 */
export async function replayHistoryFile(bundlePath: string, historyPath: string, limitMs: number, payloadKeys: readonly PayloadKey[] = []): Promise<void> {
  const name = path.basename(historyPath, '.json');
  const hung = `${name} did not replay within ${limitMs / 1000} s: the workflow code loops or waits without yielding on this history (a change not guarded by patched()?)`;
  const { code, stderr } = await runWithin(
    process.execPath,
    ['-e', REPLAY_CHILD, bundlePath, historyPath, name, formatPayloadKeys(payloadKeys)],
    limitMs,
    hung,
    path.join(__dirname, '..', '..'),
  );
  if (code === 0) return;
  let failure = stderr.trim();
  try {
    const { name: type, message } = JSON.parse(failure) as { name: string; message: string };
    failure = `${type}: ${message}`;
  } catch {
    // not the child's JSON: a crash; its stderr says why
  }
  throw new Error(`${name} does not replay against the current workflow code: ${failure}`);
}

/** The patches a history recorded: its patch markers' ids in order, and the TemporalChangeVersion upserts the SDK adds to them. */
export function patchesRecorded(history: temporal.api.history.v1.IHistory): { markers: string[]; changeVersionUpserts: number } {
  const events = history.events ?? [];
  const markers = events
    .map((e) => e.markerRecordedEventAttributes)
    .filter((m) => m?.markerName === 'core_patch')
    .map((m) => JSON.parse(Buffer.from(m!.details!['patch-data'].payloads![0].data!).toString('utf8')).id as string);
  const changeVersionUpserts = events.filter(
    (e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TemporalChangeVersion,
  ).length;
  return { markers, changeVersionUpserts };
}

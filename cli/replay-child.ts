/**
 * The replay child of `k2 case replay` (cli/replay.ts): replays the histories it reads from stdin
 * (one JSON line each: {name, workflowId, history}) against a workflow bundle, one at a time, and
 * writes one result line per history to stdout. A separate process because the SDK's replay runs
 * workflow code on its own thread without a deadlock timeout: a history that sends the code into a
 * loop that never yields can only be stopped by killing the process (the parent does, at its limit).
 *
 *   node dist/cli/replay-child.js <bundle.js>
 *
 * The first stdin line is {"payloadKeys": "<K2_PAYLOAD_KEYS format; empty: none>"}: key material
 * travels through the pipe, never through argv or the environment of the process.
 */
import readline from 'node:readline';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { parsePayloadKeys } from '../config';
import { temporalDataConverter } from '../temporal/connection';

/** The prefix of a result line (anything else on stdout is not the parent's business). */
export const RESULT_PREFIX = 'k2-replay-result ';

export interface ChildResult {
  name: string;
  ok: boolean;
  error?: { name: string; message: string };
}

async function main(): Promise<void> {
  const [bundlePath] = process.argv.slice(2);
  Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
  let options: Parameters<typeof Worker.runReplayHistory>[0] | undefined;
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    if (!options) {
      const keysText = String((JSON.parse(line) as { payloadKeys?: string }).payloadKeys ?? '');
      const { keys, problems } = keysText ? parsePayloadKeys(keysText, 'the payload keys') : { keys: [], problems: [] };
      if (problems.length) throw new Error(problems.join('; '));
      options = { workflowBundle: { codePath: bundlePath }, dataConverter: temporalDataConverter({ payloadKeys: keys }) };
      continue;
    }
    const { name, workflowId, history } = JSON.parse(line) as { name: string; workflowId: string; history: unknown };
    let result: ChildResult;
    try {
      await Worker.runReplayHistory(options, historyFromJSON(history), workflowId);
      result = { name, ok: true };
    } catch (e) {
      result = { name, ok: false, error: { name: (e as Error)?.name ?? 'Error', message: String((e as Error)?.message ?? e) } };
    }
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`replay child: ${(e as Error)?.message ?? e}\n`);
      process.exit(1);
    },
  );
}

/**
 * The payload codec end to end on the time-skipping server: a workflow whose input, local-activity
 * marker and activity input hold an IIN and a name, and whose activity fails with the IIN in its
 * message. Fetched without the codec, the history holds neither anywhere (payloads and failure
 * message and stack trace alike, temporal/failure-converter.ts); with the codec it reads back.
 * The same history replays with a rotated key set (new key first, the old one kept), not without the old key.
 */
import { Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type TemporalFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { PayloadKey } from '../../config';
import { temporalClient, temporalDataConverter } from '../../temporal/connection';
import { newPayloadKey } from '../../temporal/keys';
import { timeSkippingEnv } from '../helpers/temporal';
import { codecTestWorkflow, type CodecBorrower, type CodecTestActivities } from './codec-workflows';

jest.setTimeout(180_000);

const IIN = '870412300415';
const NAME = 'Сапарова Жанар Ерлановна';
const WORKFLOWS = require.resolve('./codec-workflows');
const oldKey = newPayloadKey('k2-2026-01');
const newKey = newPayloadKey('k2-2026-07');

const activities: CodecTestActivities = {
  async readBorrower(iin: string): Promise<CodecBorrower> {
    return { iin, name: NAME };
  },
  async askAbs(borrower: CodecBorrower): Promise<string> {
    throw ApplicationFailure.nonRetryable(`ABS does not know the client ${borrower.iin} (${borrower.name})`, 'AbsClientUnknown');
  },
};

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

/** Runs the workflow on a worker with `keys` (none: plain payloads); returns its id and the failure the codec client reads. */
async function runFailing(taskQueue: string, keys: PayloadKey[]): Promise<{ workflowId: string; failure: WorkflowFailedError }> {
  const settings = { temporal: { address: '', namespace: env.namespace ?? 'default' }, payloadKeys: keys };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: settings.temporal.namespace,
    taskQueue,
    workflowsPath: WORKFLOWS,
    activities,
    dataConverter: temporalDataConverter(settings),
  });
  const client = temporalClient(settings, env.connection);
  const workflowId = `codec-${taskQueue}`;
  const failure = await worker.runUntil(client.workflow.execute(codecTestWorkflow, { workflowId, taskQueue, args: [IIN] }).catch((e) => e));
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  return { workflowId, failure };
}

/** The history as Temporal stores and serves it, fetched by a client without the codec: protobuf bytes and the JSON export. */
async function historyWithoutCodec(workflowId: string): Promise<{ bytes: Buffer; json: string; history: temporal.api.history.v1.IHistory }> {
  const plain = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
  const history = await plain.workflow.getHandle(workflowId).fetchHistory();
  return { bytes: Buffer.from(temporal.api.history.v1.History.encode(history).finish()), json: historyToJSON(history), history };
}

const clearTexts = [IIN, NAME, 'does not know the client'];
const holds = (bytes: Buffer, json: string, clear: string) =>
  bytes.includes(Buffer.from(clear, 'utf8')) || json.includes(clear) || json.includes(Buffer.from(clear, 'utf8').toString('base64'));

test('without keys (the control): the history holds the IIN, the name and the failure text in clear', async () => {
  const { workflowId } = await runFailing('codec-plain', []);
  const { bytes, json } = await historyWithoutCodec(workflowId);
  for (const clear of clearTexts) expect(holds(bytes, json, clear)).toBe(true);
});

test('with the codec: no IIN, name or failure text anywhere in the history; through the codec the failure reads back', async () => {
  const { workflowId, failure } = await runFailing('codec-encrypted', [oldKey]);
  const cause = (failure.cause as TemporalFailure).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.type).toBe('AbsClientUnknown');
  expect(cause.message).toBe(`ABS does not know the client ${IIN} (${NAME})`);
  expect(cause.stack ?? '').toContain('askAbs');

  const { bytes, json, history } = await historyWithoutCodec(workflowId);
  for (const clear of clearTexts) expect(holds(bytes, json, clear)).toBe(false);
  expect(json).toContain(Buffer.from('binary/encrypted').toString('base64'));
  const failed = history.events?.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
  expect(failed?.message).toBe('Encoded failure');
  expect(failed?.stackTrace ?? '').toBe('');
  expect(failed?.encodedAttributes).toBeTruthy();
  // The workflow's own failure (written by the failure converter bundled into the workflow code) is encoded too, its cause included.
  const closed = history.events?.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure;
  expect([closed?.message, closed?.cause?.message]).toEqual(['Encoded failure', 'Encoded failure']);
});

test('the encrypted history replays with a rotated key set (new key first, the old one kept) and not without the old key', async () => {
  const { workflowId } = await runFailing('codec-rotation', [oldKey]);
  const { history } = await historyWithoutCodec(workflowId);
  const replay = (keys: PayloadKey[]) =>
    Worker.runReplayHistory({ workflowsPath: WORKFLOWS, dataConverter: temporalDataConverter({ payloadKeys: keys }) }, history, workflowId);
  await expect(replay([newKey, oldKey])).resolves.toBeUndefined();
  // Without the old key the activation does not decode: the workflow task fails (its failure text is encoded too, so no id to match here).
  await expect(replay([newKey])).rejects.toThrow(/workflow task failure/);
});

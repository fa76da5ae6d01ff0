/**
 * Patch 'case-stage-since' (issue 16): the case publishes K2StageSince (when it entered its
 * current stage) and K2AbsSystem with its stage, so `k2 case list --stuck-for` and `--abs-system`
 * find it in visibility. Time-skipping server, fakes (test/helpers/case-fakes.ts). Histories of the
 * code before the patch replay in test/replay (case-stage-since.*.before-patch.json).
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { caseWorkflowId, CaseInput } from '../../domain/case';
import { caseWorkflow, gkbResultSignal, operatorUpdate, SEARCH_ATTRIBUTES } from '../../workflows';
import { workflowsPath } from '../../worker';
import { timeSkippingEnv } from '../helpers/temporal';
import { recordHistory } from '../helpers/histories';
import { DAY, fakeCaseActivities, loan, settings, waitForCaseStatus as waitFor } from '../helpers/case-fakes';

let env: TestWorkflowEnvironment;
let taskQueue = 'test-stage-since';
let queues = 0;

beforeAll(async () => {
  env = await timeSkippingEnv();
});

afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(acts: object, fn: () => Promise<T>): Promise<T> {
  taskQueue = `test-stage-since-${++queues}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath: workflowsPath(), activities: acts });
  return worker.runUntil(fn);
}

/** As the dispatcher starts a case (api/dispatcher.ts): the stage, the moment and the ABS system among the start's attributes. */
function start(id: string, startedAt: Date, input: Partial<CaseInput> = {}) {
  return env.client.workflow.start(caseWorkflow, {
    workflowId: caseWorkflowId(id),
    taskQueue,
    args: [{ loan: { ...loan, contract_number: id, system: 'colvir' }, settings, meta: { acceptedSeq: 1 }, ...input }],
    typedSearchAttributes: [
      { key: SEARCH_ATTRIBUTES.stage, value: 'received' },
      { key: SEARCH_ATTRIBUTES.needsAttention, value: false },
      { key: SEARCH_ATTRIBUTES.stageSince, value: startedAt },
      { key: SEARCH_ATTRIBUTES.absSystem, value: 'colvir' },
    ],
  });
}

/** Runs the test's steps; the case is terminated whatever happens (a case left running would hold the time-skipping server's clock for the next test). */
async function terminatedAfter(workflowId: string, steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } finally {
    await env.client.workflow
      .getHandle(workflowId)
      .terminate('test done')
      .catch(() => undefined);
  }
}

type Upsert = { eventTime: number; stage?: string; attention?: string | null; stageSince?: string; absSystem?: string };

/** What each upsert of the run published (the fields it set). */
async function upserts(handle: { fetchHistory: () => Promise<temporal.api.history.v1.IHistory> }): Promise<Upsert[]> {
  const { events } = await handle.fetchHistory();
  const value = (p: temporal.api.common.v1.IPayload | null | undefined) => (p?.data && p.data.length ? JSON.parse(Buffer.from(p.data).toString('utf8')) : null);
  // K2's attributes only (the SDK upserts TemporalChangeVersion for each patch it records).
  return events!
    .filter((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}).some((k) => k.startsWith('K2')))
    .map((e) => {
      const f = e.upsertWorkflowSearchAttributesEventAttributes!.searchAttributes!.indexedFields!;
      const u: Upsert = { eventTime: Number(e.eventTime!.seconds) * 1000 };
      if (f.K2Stage) u.stage = value(f.K2Stage);
      if (f.K2AttentionReason) u.attention = value(f.K2AttentionReason);
      if (f.K2StageSince) u.stageSince = value(f.K2StageSince);
      if (f.K2AbsSystem) u.absSystem = value(f.K2AbsSystem);
      return u;
    });
}

test("the stage's moment is published with each new stage, kept while only the attention changes, and the ABS system with it", async () => {
  let scanThere = false;
  const { acts } = fakeCaseActivities({ gkb: 'queue', scanAvailableAfter: () => scanThere });
  const id = 'KD-SINCE-1';
  await withWorker(acts, () =>
    terminatedAfter(caseWorkflowId(id), async () => {
      const startedAt = new Date(Date.now() - 60_000);
      const handle = await start(id, startedAt);
      await waitFor(handle, (s) => s.attention?.code === 'scan-missing');
      const parked = await upserts(handle);
      // One upsert for the stages the first workflow task passed, with the moment the last of them began.
      expect(parked).toHaveLength(1);
      expect(parked[0]).toMatchObject({ stage: 'account-checked', attention: 'scan-missing', absSystem: 'colvir' });
      const accountChecked = Date.parse(parked[0].stageSince!);
      expect(accountChecked).toBeGreaterThan(startedAt.getTime());

      await env.sleep(3 * 3600_000);
      scanThere = true;
      await handle.executeUpdate(operatorUpdate, { args: [{ action: 'retry' }] });
      await waitFor(handle, (s) => s.gkb.state === 'queued');
      const moved = (await upserts(handle)).at(-1)!;
      expect(moved).toMatchObject({ stage: 'demand-issued', attention: null, absSystem: 'colvir' });
      // The new stage began after the three hours parked.
      expect(Date.parse(moved.stageSince!) - accountChecked).toBeGreaterThanOrEqual(3 * 3600_000);

      // Waiting for GKB beyond its horizon: a notice, same stage, the same moment.
      await env.sleep(4 * DAY);
      await waitFor(handle, (s) => s.attention?.code === 'gkb-waiting');
      const waiting = (await upserts(handle)).at(-1)!;
      expect(waiting).toMatchObject({ stage: 'demand-issued', attention: 'gkb-waiting', stageSince: moved.stageSince });

      await handle.signal(gkbResultSignal, { recordId: '1', outcome: 'accepted', text: 'Контракт обновлен.' });
      await waitFor(handle, (s) => s.stage === 'reported-to-gkb');
      const described = await handle.describe();
      expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stage)).toBe('reported-to-gkb');
      expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.absSystem)).toBe('colvir');
      expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stageSince)!.getTime()).toBeGreaterThan(Date.parse(moved.stageSince!));
      await handle.terminate('test done');
      await recordHistory(handle, 'case-stage-since');
    }),
  );
}, 300_000);

test("a case started with its stage's moment publishes nothing until something changes: no visibility update of its own at the start", async () => {
  // ABS fails transiently: the quick attempts fail, the call goes on as a regular activity, which flushes the search attributes first.
  const { acts, calls } = fakeCaseActivities({ clientTransientFailures: 1000 });
  await withWorker(acts, () =>
    terminatedAfter(caseWorkflowId('KD-SINCE-QUIET'), async () => {
      const handle = await start('KD-SINCE-QUIET', new Date());
      for (let i = 0; i < 200 && calls.filter((c) => c === 'checkClient').length < 4; i++) await new Promise((r) => setTimeout(r, 50));
      expect(calls.filter((c) => c === 'checkClient').length).toBeGreaterThanOrEqual(4);
      expect(await upserts(handle)).toEqual([]);
    }),
  );
}, 120_000);

test('the run after a continue-as-new keeps the moment its stage began (inherited with the search attributes)', async () => {
  const { acts } = fakeCaseActivities({ scanAvailableAfter: () => false });
  const id = 'KD-SINCE-CAN';
  await withWorker(acts, () =>
    terminatedAfter(caseWorkflowId(id), async () => {
      const handle = await start(id, new Date(), { settings: { ...settings, maxHistoryEvents: 40 } });
      await waitFor(handle, (s) => s.attention?.code === 'scan-missing');
      const [first] = await upserts(handle);
      for (let i = 0; i < 20; i++) await env.sleep(DAY);
      const latest = env.client.workflow.getHandle(caseWorkflowId(id));
      const described = await latest.describe();
      expect(described.runId).not.toBe(handle.firstExecutionRunId);
      expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.stageSince)?.toISOString()).toBe(first.stageSince);
      // The continued runs have published nothing of their own: the same stage, attention and moment.
      expect((await upserts(latest)).filter((u) => u.stageSince && u.stageSince !== first.stageSince)).toEqual([]);
    }),
  );
}, 300_000);

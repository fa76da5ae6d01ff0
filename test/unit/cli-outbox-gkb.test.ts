/** The pure parts of the CLI's outbox and GKB commands (cli/outbox.ts, cli/gkb.ts, db/gkb.ts packageOf). */
import { packageRows, reportOf, resultSignalOf } from '../../cli/gkb';
import { outboxIdProblem, statusLines } from '../../cli/outbox';
import { packageOf, type BatchOverview } from '../../db/gkb';

test('outbox ids are positive integers', () => {
  expect(outboxIdProblem('42')).toBeUndefined();
  for (const bad of ['0', '-1', 'x1', '4.2', '', '12345678901234567']) expect(outboxIdProblem(bad)).toBe(`"${bad}" is not an outbox id (a positive integer)`);
});

test('outbox status for people: counts, and the oldest items with their age', () => {
  const now = new Date('2026-03-10T12:00:00.000Z');
  const lines = statusLines(
    {
      pending: 12,
      oldestPendingAcceptedAt: new Date('2026-03-10T09:55:00.000Z'),
      waitingRetry: 1,
      claimed: 5,
      claimers: 2,
      dead: 1,
      oldestDeadAcceptedAt: new Date('2026-03-07T08:00:00.000Z'),
    },
    now,
  );
  expect(lines[0]).toMatch(/^outbox\s+count\s+detail$/);
  expect(lines[1]).toMatch(/^pending\s+12\s+oldest accepted 2026-03-10T09:55:00.000Z, 2h 05m ago$/);
  expect(lines[2]).toMatch(/^waiting to retry\s+1\s+Temporal refused them/);
  expect(lines[3]).toMatch(/^claimed \(in flight\)\s+5\s+held by 2 dispatcher\(s\) under a lease$/);
  expect(lines[4]).toMatch(/^dead letters\s+1\s+oldest accepted 2026-03-07T08:00:00.000Z, 3d 04h ago; k2 outbox dead-letters lists them$/);
  const quiet = statusLines({ pending: 0, waitingRetry: 0, claimed: 0, claimers: 0, dead: 0 }, now);
  expect(quiet.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
    ['pending', '0', '-'],
    ['waiting to retry', '0', '-'],
    ['claimed (in flight)', '0', '-'],
    ['dead letters', '0', '-'],
  ]);
});

test("a record's result travels as the batch's delivery sends it", () => {
  const row = { id: 7, state: 'accepted' as const, result_text: 'Создан новый контракт.', new_contract: true, skipped: false };
  expect(resultSignalOf(row)).toEqual({ recordId: '7', outcome: 'accepted', text: 'Создан новый контракт.', newContract: true });
  expect(resultSignalOf({ ...row, new_contract: false, skipped: true })).toEqual({
    recordId: '7',
    outcome: 'accepted',
    text: 'Создан новый контракт.',
    skipped: true,
  });
  expect(resultSignalOf({ ...row, state: 'rejected', new_contract: false, result_text: 'Запись не загружена.' })).toEqual({
    recordId: '7',
    outcome: 'rejected',
    text: 'Запись не загружена.',
  });
});

test('which report of its case a record is, from its report key', () => {
  expect(reportOf('case-KD1/0f3a-run/overdue/1')).toBe('overdue #1');
  expect(reportOf('case-KD1/0f3a-run/episode-2/closure/3')).toBe('closure #3');
  expect(reportOf('something-else')).toBe('-');
});

test("a file's package, and one row per package with its counts and GKB's status", () => {
  const files = [
    { fileName: 'b-1.zip', records: 3, packageId: '11', statusText: 'Файл обработан.', final: true },
    { fileName: 'b-2.zip', records: 2, failure: 'GKB refused the file' },
  ];
  expect(packageOf(files, 'b-1.zip')).toBe('11');
  expect(packageOf(files, 'b-2.zip')).toBeUndefined();
  expect(packageOf(files, null)).toBeUndefined();
  const batch: BatchOverview = {
    batchId: 'gkb-batch-1',
    state: 'done',
    createdAt: '2026-03-10T00:00:00.000Z',
    updatedAt: '2026-03-10T00:05:00.000Z',
    files,
    records: { claimed: 0, accepted: 2, rejected: 3, undelivered: 0 },
    byFile: { 'b-1.zip': { claimed: 0, accepted: 2, rejected: 1, undelivered: 0 }, 'b-2.zip': { claimed: 0, accepted: 0, rejected: 2, undelivered: 0 } },
  };
  expect(packageRows(batch, files)).toEqual([
    {
      batch: 'gkb-batch-1',
      file: 'b-1.zip',
      package: '11',
      records: 3,
      accepted: 2,
      rejected: 1,
      gkb_status: 'Файл обработан.',
      final: true,
      failure: undefined,
    },
    {
      batch: 'gkb-batch-1',
      file: 'b-2.zip',
      package: undefined,
      records: 2,
      accepted: 0,
      rejected: 2,
      gkb_status: undefined,
      final: false,
      failure: 'GKB refused the file',
    },
  ]);
});

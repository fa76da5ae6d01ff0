/**
 * The outbox's dead letters, stale marks and case episodes on every database the suite has
 * (SQLite always, PostgreSQL when K2_TEST_PG_URL is set), and the operators' `npm run outbox`
 * commands on them.
 */
import { closedEpisodeHad, closeEpisode } from '../../activities/episodes';
import type { Db } from '../../db';
import {
  countPending,
  deadLetters,
  deadLetterStats,
  enqueueLoans,
  hasPendingBacklog,
  loanDigest,
  markDispatchFailed,
  markStale,
  pendingLoans,
  requeueDeadLetter,
} from '../../db/outbox';
import { generateLoans } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { runOutboxCommand } from '../../scripts/outbox';
import { testDatabases, type TestDatabase } from '../helpers/databases';

function loans(seed: number, count: number): Loan[] {
  return generateLoans(seed, count).map((l) => ({ ...l, debt: Number(l.debt).toFixed(2) }));
}

describe.each(testDatabases())('outbox on $name', (tdb: TestDatabase) => {
  let db: Db;

  beforeAll(async () => {
    db = await tdb.open();
  });
  afterAll(async () => {
    await tdb.cleanup();
  });
  beforeEach(async () => {
    await db('loan_outbox').delete();
    await db('case_episodes').delete();
  });

  async function ids(): Promise<number[]> {
    return (await db('loan_outbox').orderBy('id').select('id')).map((r) => Number(r.id));
  }

  it('a refused row waits (next attempt time); a dead row leaves the pending list and the backlog count', async () => {
    await enqueueLoans(db, loans(11, 3), 'req-1');
    const [a, b] = await ids();
    const retryAt = new Date(Date.now() + 60_000);
    await markDispatchFailed(db, a, 'FAILED_PRECONDITION: no', { retryAt });
    let pending = await pendingLoans(db, 10);
    expect(pending.map((r) => r.id)).toEqual(await ids());
    expect(pending[0]).toMatchObject({ id: a, attempts: 1 });
    expect(pending[0].nextAttemptAt).toBe(retryAt.getTime());
    expect(pending[1].nextAttemptAt).toBeUndefined();

    await markDispatchFailed(db, b, 'INVALID_ARGUMENT: WorkflowId length exceeds limit.', { dead: true });
    pending = await pendingLoans(db, 10);
    expect(pending.map((r) => r.id)).not.toContain(b);
    expect(await countPending(db)).toBe(2);
    expect(await hasPendingBacklog(db, 2)).toBe(true);
    expect(await hasPendingBacklog(db, 3)).toBe(false);
  });

  it('lists dead letters without personal data, counts them with the oldest acceptance, and requeues one', async () => {
    const items = loans(12, 3);
    const acceptedAt = new Date('2026-01-02T03:04:05.000Z');
    await enqueueLoans(db, items, 'req-2', acceptedAt);
    const [a, , c] = await ids();
    expect(await deadLetterStats(db)).toEqual({ count: 0, oldestAcceptedAt: undefined });
    await markDispatchFailed(db, a, 'INVALID_ARGUMENT: one', { dead: true });
    await markDispatchFailed(db, c, 'INVALID_ARGUMENT: two');
    await markDispatchFailed(db, c, 'INVALID_ARGUMENT: three', { dead: true });

    const letters = await deadLetters(db);
    expect(letters).toEqual([
      {
        id: a,
        contractNumber: items[0].contract_number,
        attempts: 1,
        lastError: 'INVALID_ARGUMENT: one',
        acceptedAt: acceptedAt.toISOString(),
        deadAt: expect.any(String),
      },
      {
        id: c,
        contractNumber: items[2].contract_number,
        attempts: 2,
        lastError: 'INVALID_ARGUMENT: three',
        acceptedAt: acceptedAt.toISOString(),
        deadAt: expect.any(String),
      },
    ]);
    expect(await deadLetterStats(db)).toEqual({ count: 2, oldestAcceptedAt: acceptedAt });

    // The operators' command prints references and counts, never the loan's personal data.
    const out: string[] = [];
    const err: string[] = [];
    expect(
      await runOutboxCommand(
        ['dead-letters'],
        db,
        (l) => out.push(l),
        (l) => err.push(l),
      ),
    ).toBe(0);
    const printed = out.join('\n');
    expect(printed).toContain(`${a}\t${items[0].contract_number}\t1\t${acceptedAt.toISOString()}`);
    expect(printed).toContain('INVALID_ARGUMENT: three');
    expect(printed).toContain('2 dead letter(s)');
    for (const item of items) {
      expect(printed).not.toContain(item.iinbin);
      expect(printed).not.toContain(item.iban);
      expect(printed).not.toContain(item.fullname);
    }

    expect(
      await runOutboxCommand(
        ['requeue', String(a)],
        db,
        (l) => out.push(l),
        (l) => err.push(l),
      ),
    ).toBe(0);
    const row = await db('loan_outbox').where({ id: a }).first('attempts', 'dead_at', 'next_attempt_at', 'last_error');
    expect(row).toMatchObject({ attempts: 0, dead_at: null, next_attempt_at: null, last_error: 'INVALID_ARGUMENT: one' });
    expect((await pendingLoans(db, 10)).map((r) => r.id)).toContain(a);
    expect(await deadLetterStats(db)).toMatchObject({ count: 1 });

    // Not a dead letter (any more), or not a number: a clear answer and a non-zero exit code.
    expect(
      await runOutboxCommand(
        ['requeue', String(a)],
        db,
        (l) => out.push(l),
        (l) => err.push(l),
      ),
    ).toBe(1);
    expect(
      await runOutboxCommand(
        ['requeue', 'x1'],
        db,
        (l) => out.push(l),
        (l) => err.push(l),
      ),
    ).toBe(2);
    expect(
      await runOutboxCommand(
        ['what'],
        db,
        (l) => out.push(l),
        (l) => err.push(l),
      ),
    ).toBe(2);
    expect(err).toEqual([
      `requeue: no dead letter with id ${a}`,
      'requeue: "x1" is not an outbox id (a positive integer)',
      'usage: npm run outbox -- dead-letters | requeue <id>',
    ]);
    expect(await requeueDeadLetter(db, 999_999)).toBe(false);
  });

  it('a row marked stale leaves the pending list with its reason', async () => {
    await enqueueLoans(db, loans(13, 2), 'req-3');
    const [a, b] = await ids();
    await markStale(db, a, 'applied-before-close');
    expect((await pendingLoans(db, 10)).map((r) => r.id)).toEqual([b]);
    expect(await db('loan_outbox').where({ id: a }).first('stale_reason')).toEqual({ stale_reason: 'applied-before-close' });
  });

  it('closeEpisode records the closed case; pending rows carry it (one join); an older close changes nothing', async () => {
    const [item, other] = loans(14, 2);
    await enqueueLoans(db, [item, other], 'req-4');
    const repaid = { ...item, debt: '0.00' };
    await enqueueLoans(db, [repaid], 'req-5');
    const [overdueId, otherId, repaidId] = await ids();

    await closeEpisode(db, {
      contractNumber: item.contract_number,
      workflowId: `case-${item.contract_number}`,
      appliedSeq: repaidId,
      lastOverdueSeq: overdueId,
    });
    const episode = await db('case_episodes').where({ contract_number: item.contract_number }).first();
    expect(episode).toMatchObject({ workflow_id: `case-${item.contract_number}`, last_overdue_sha256: loanDigest(item) });
    expect(Number(episode.closed_seq)).toBe(repaidId);
    // Idempotent: the same close again writes the same.
    await closeEpisode(db, {
      contractNumber: item.contract_number,
      workflowId: `case-${item.contract_number}`,
      appliedSeq: repaidId,
      lastOverdueSeq: overdueId,
    });
    // An older run's late close does not move it back.
    await closeEpisode(db, { contractNumber: item.contract_number, workflowId: `case-${item.contract_number}`, appliedSeq: overdueId - 1 });
    expect(Number((await db('case_episodes').where({ contract_number: item.contract_number }).first('closed_seq')).closed_seq)).toBe(repaidId);
    expect(Number((await db('case_episodes').count({ n: '*' }))[0].n)).toBe(1);

    const pending = await pendingLoans(db, 10);
    expect(pending.map((r) => [r.id, r.episode])).toEqual([
      [overdueId, { closedSeq: repaidId, lastOverdueSha256: loanDigest(item) }],
      [otherId, undefined],
      [repaidId, { closedSeq: repaidId, lastOverdueSha256: loanDigest(item) }],
    ]);
    expect(pending[0].payload_sha256).toBe(loanDigest(item));
  });

  it('closedEpisodeHad answers for one item now, by the same rule as the dispatcher', async () => {
    const [item] = loans(15, 1);
    await enqueueLoans(db, [item], 'req-6');
    await enqueueLoans(db, [{ ...item, debt: '0.00' }], 'req-7');
    const [overdueId, repaidId] = await ids();
    const contractNumber = item.contract_number;
    expect(await closedEpisodeHad(db, { contractNumber, acceptedSeq: overdueId })).toBeUndefined();
    await closeEpisode(db, { contractNumber, workflowId: `case-${contractNumber}`, appliedSeq: repaidId, lastOverdueSeq: overdueId });
    expect(await closedEpisodeHad(db, { contractNumber, acceptedSeq: overdueId })).toBe('applied-before-close');
    await enqueueLoans(db, [item], 'req-8');
    await enqueueLoans(db, [{ ...item, overdue_days: item.overdue_days + 30 }], 'req-9');
    const [, , resentId, newEpisodeId] = await ids();
    expect(await closedEpisodeHad(db, { contractNumber, acceptedSeq: resentId })).toBe('resent-after-close');
    expect(await closedEpisodeHad(db, { contractNumber, acceptedSeq: newEpisodeId })).toBeUndefined();
    // Another contract's id, or an unknown one: nothing to say.
    expect(await closedEpisodeHad(db, { contractNumber: 'KD-OTHER', acceptedSeq: overdueId })).toBeUndefined();
    expect(await closedEpisodeHad(db, { contractNumber, acceptedSeq: 999_999 })).toBeUndefined();
  });

  it('a case that carried no meta closes without a sequence: only its absence is recorded', async () => {
    await closeEpisode(db, { contractNumber: 'KD-OLD', workflowId: 'case-KD-OLD' });
    expect(await db('case_episodes').where({ contract_number: 'KD-OLD' }).first('closed_seq', 'last_overdue_sha256')).toEqual({
      closed_seq: null,
      last_overdue_sha256: null,
    });
  });
});

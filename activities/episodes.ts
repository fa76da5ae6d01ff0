/**
 * Episodes: one overdue episode of a contract is one case run with one demand. When a case closes
 * it records here what it applied (closeEpisode), and the outbox dispatcher then starts no new run
 * for an item that closed case already had: an item at or below `closed_seq` (a re-dispatch after
 * a crash, a late item), or a late re-send of the last overdue item it applied. Only EKO re-sending
 * the contract overdue with new data after the closure starts a new episode (README "The outbox").
 *
 * Only outbox ids cross history: the digest is read here from the outbox row, so no loan data
 * (IIN, name, IBAN) enters the activity's input.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../db';
import { isTransientDbError } from '../db/errors';
import type { ClosedEpisode, StaleReason } from '../db/outbox';
import { FAILURE_TYPES } from '../domain/failures';
import { withdrawUnsentDemands } from '../db/demands';

/**
 * The episode rule, in one place (the dispatcher and closedEpisodeHad apply it): the contract's
 * closed case already had this item when it applied this id or a later one (a re-dispatch after a
 * crash, an item that arrived late), or when the item is a re-send of the last overdue item it
 * applied. Such an item must not start a new run (a second demand). Pure.
 */
export function staleReason(row: { id: number; payload_sha256: string; episode?: ClosedEpisode }): StaleReason | undefined {
  const episode = row.episode;
  if (!episode) return undefined;
  if (episode.closedSeq !== undefined && episode.closedSeq >= row.id) return 'applied-before-close';
  if (episode.lastOverdueSha256 !== undefined && episode.lastOverdueSha256 === row.payload_sha256) return 'resent-after-close';
  return undefined;
}

export interface EpisodeDeps {
  db: Db;
}

export interface CloseEpisodeInput {
  contractNumber: string;
  workflowId: string;
  /** The newest outbox id (LoanMeta.acceptedSeq) the closing case applied; absent for cases started before it existed. */
  appliedSeq?: number;
  /** The outbox id of the last overdue item (debt > 0) the closing case applied. */
  lastOverdueSeq?: number;
}

/** K2's database failed: retryable when the trouble passes by itself, otherwise an operator looks (domain/failures.ts). */
function asDbFailure(call: string, err: unknown): ApplicationFailure {
  // knex errors name the SQL with placeholders only (db/index.ts compileSqlOnError false): no values in the text.
  const message = `${call}: ${(err as Error)?.message ?? String(err)}`.slice(0, 500);
  return isTransientDbError(err)
    ? ApplicationFailure.retryable(message, FAILURE_TYPES.k2DatabaseUnavailable)
    : ApplicationFailure.nonRetryable(message, FAILURE_TYPES.k2DatabaseError);
}

/**
 * Records the closed case of a contract (idempotent upsert: a retry, or a replayed close, writes the
 * same row) and withdraws the case's demands that were never sent (db/demands.ts withdrawUnsentDemands).
 * A close that applied less than the recorded one (an older run's late retry) changes nothing.
 */
export async function closeEpisode(db: Db, input: CloseEpisodeInput, now = new Date()): Promise<void> {
  await db.transaction(async (trx) => {
    const existing = await trx('case_episodes').where({ contract_number: input.contractNumber }).first('closed_seq');
    const recorded = existing?.closed_seq === null || existing?.closed_seq === undefined ? undefined : Number(existing.closed_seq);
    if (recorded !== undefined && (input.appliedSeq === undefined || input.appliedSeq < recorded)) return;
    const lastOverdue = input.lastOverdueSeq === undefined ? undefined : await trx('loan_outbox').where({ id: input.lastOverdueSeq }).first('payload_sha256');
    const row = {
      contract_number: input.contractNumber,
      workflow_id: input.workflowId,
      closed_seq: input.appliedSeq ?? null,
      last_overdue_sha256: lastOverdue?.payload_sha256 ?? null,
      closed_at: now.toISOString(),
    };
    await trx('case_episodes').insert(row).onConflict('contract_number').merge();
    await withdrawUnsentDemands(trx, input.workflowId, now);
  });
}

/**
 * Whether the contract's closed case already had the outbox item `acceptedSeq` (staleReason), read
 * now. The dispatcher checks the same when it reads the item; a new run can ask again at its start,
 * for the item whose episode was recorded between that read and the start.
 */
export async function closedEpisodeHad(db: Db, input: { contractNumber: string; acceptedSeq: number }): Promise<StaleReason | undefined> {
  const row = await db('loan_outbox as o')
    .leftJoin('case_episodes as e', 'e.contract_number', 'o.contract_number')
    .where('o.id', input.acceptedSeq)
    .andWhere('o.contract_number', input.contractNumber)
    .first('o.payload_sha256', 'e.contract_number as episode_of', 'e.closed_seq', 'e.last_overdue_sha256');
  if (!row || !row.episode_of) return undefined;
  const episode: ClosedEpisode = {
    closedSeq: row.closed_seq === null ? undefined : Number(row.closed_seq),
    lastOverdueSha256: row.last_overdue_sha256 ?? undefined,
  };
  return staleReason({ id: input.acceptedSeq, payload_sha256: row.payload_sha256, episode });
}

export function createEpisodeActivities({ db }: EpisodeDeps) {
  return {
    /** Called by a case when it closes, before it completes. */
    async closeEpisode(input: CloseEpisodeInput): Promise<void> {
      try {
        await closeEpisode(db, input);
      } catch (err) {
        throw asDbFailure('K2 database: close episode', err);
      }
    },

    /** For a new run at its start: null when the item that started it begins a new episode, else why its closed case already had it. */
    async closedEpisodeHad(input: { contractNumber: string; acceptedSeq: number }): Promise<StaleReason | null> {
      try {
        return (await closedEpisodeHad(db, input)) ?? null;
      } catch (err) {
        throw asDbFailure('K2 database: read episode', err);
      }
    },
  };
}

export type EpisodeActivities = ReturnType<typeof createEpisodeActivities>;

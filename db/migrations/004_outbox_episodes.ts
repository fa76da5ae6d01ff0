import type { Knex } from 'knex';

/**
 * The outbox never stalls on one item, and one demand per overdue episode (README "The outbox").
 *
 * loan_outbox gains, per row: `next_attempt_at` (an item Temporal refused waits until then; only it
 * and the later rows of its contract wait), `dead_at` (set after K2_OUTBOX_MAX_ATTEMPTS refusals:
 * a dead letter, out of the flow until an operator requeues it) and `stale_reason` (the row was
 * done without being sent: its case had already applied it, see case_episodes). `attempts` and
 * `last_error` (gRPC status and a short message, no personal data) exist since 001.
 * The pending index becomes (dispatched_at, dead_at, id): the dispatcher's read and the dead-letter
 * count are each one index range, and an insert still maintains one index for it.
 *
 * case_episodes: per contract, the last closed case (episode): the newest outbox id it applied
 * (`closed_seq`) and the payload digest of the last overdue item it applied. The dispatcher reads it
 * with the pending rows (a join) and starts no new run for an item that episode already had.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.timestamp('next_attempt_at', { useTz: true }).nullable();
    t.timestamp('dead_at', { useTz: true }).nullable();
    t.string('stale_reason', 32).nullable();
  });
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.dropIndex(['dispatched_at', 'id'], 'loan_outbox_pending');
    t.index(['dispatched_at', 'dead_at', 'id'], 'loan_outbox_live');
  });
  await knex.schema.createTable('case_episodes', (t) => {
    t.string('contract_number', 64).primary();
    t.string('workflow_id', 128).notNullable();
    t.bigInteger('closed_seq').nullable();
    t.string('last_overdue_sha256', 64).nullable();
    t.timestamp('closed_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('case_episodes');
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.dropIndex(['dispatched_at', 'dead_at', 'id'], 'loan_outbox_live');
    t.index(['dispatched_at', 'id'], 'loan_outbox_pending');
  });
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.dropColumn('stale_reason');
    t.dropColumn('dead_at');
    t.dropColumn('next_attempt_at');
  });
}

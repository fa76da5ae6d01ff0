import type { Knex } from 'knex';

/**
 * Several API replicas dispatch one outbox, each row by exactly one of them at a time (README "The
 * outbox"; api/dispatcher.ts). A replica claims a batch of rows: `claimed_by` (the replica's
 * dispatcher id, no personal data) and `lease_until` (the claim holds until then; the replica renews
 * it while it holds the rows, and clears it when it marks them). A crashed replica's rows are taken
 * by another once their lease has passed.
 *
 * No index on the new columns: the claim walks the live index (dispatched_at, dead_at, id) as the
 * read before it did, and renewals go by id; so an insert on the intake path maintains no more
 * indexes than before, and a claim (changing only unindexed columns) can stay a HOT update on PostgreSQL.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.string('claimed_by', 64).nullable();
    t.timestamp('lease_until', { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('loan_outbox', (t) => {
    t.dropColumn('lease_until');
    t.dropColumn('claimed_by');
  });
}

import type { Knex } from 'knex';

/**
 * demand_reference_counter: one row (id 1) holding the last demand number issued. The next number
 * is max(last + 1, the demand clock) (domain/demand-status.ts, README "Demand references"), so a
 * database restored from a backup does not hand out the references issued after the backup again.
 * `last` starts at the highest row id, the number behind every reference of the old scheme (PTP +
 * payment_demands.id), so no new reference can repeat an old one even with the clock set far back.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('demand_reference_counter', (t) => {
    t.integer('id').primary();
    t.bigInteger('last').notNullable();
  });
  const row = await knex('payment_demands').max({ last: 'id' }).first();
  await knex('demand_reference_counter').insert({ id: 1, last: Number(row?.last ?? 0) });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('demand_reference_counter');
}

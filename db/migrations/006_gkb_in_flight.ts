import type { Knex } from 'knex';

/**
 * One GKB package per contract in flight (integrations/gkb/README.md): a batch claims no record of a
 * contract that already has a record `claimed` by an unfinished batch. The index makes that check
 * (and counting what waits for an early batch) cheap. The two flags keep what GKB answered besides
 * accepted/rejected, for delivery to the case: `new_contract` (an update answered «Создан новый
 * контракт.») and `skipped` (GKB already had this state: counted in skippedContracts, in no group).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('gkb_records', (t) => {
    t.boolean('new_contract').notNullable().defaultTo(false);
    t.boolean('skipped').notNullable().defaultTo(false);
    t.index(['contract_code', 'state'], 'gkb_records_contract_state');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('gkb_records', (t) => {
    t.dropIndex(['contract_code', 'state'], 'gkb_records_contract_state');
    t.dropColumn('skipped');
    t.dropColumn('new_contract');
  });
}

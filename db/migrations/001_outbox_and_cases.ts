import type { Knex } from 'knex';

/**
 * loan_outbox: every accepted EKO loan item, written in the same transaction that answers error_code 0,
 * and drained into Temporal by the dispatcher (so an answer of 0 never loses an item).
 * payment_demands: the demands cases have issued; the PTP reference comes from demand_reference_counter (migration 005; before it, from `id`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('loan_outbox', (t) => {
    t.bigIncrements('id').primary();
    t.string('contract_number', 64).notNullable();
    t.text('payload').notNullable();
    t.string('payload_sha256', 64).notNullable();
    t.string('request_id', 64).notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.timestamp('dispatched_at', { useTz: true }).nullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error').nullable();
    t.index(['dispatched_at', 'id'], 'loan_outbox_pending');
    t.index(['contract_number'], 'loan_outbox_contract');
  });
  await knex.schema.createTable('payment_demands', (t) => {
    t.bigIncrements('id').primary();
    // Set when the demand is issued (db/demands.ts; migration 005 explains the scheme).
    t.string('reference', 14).nullable().unique();
    t.string('case_id', 128).notNullable().unique();
    t.string('workflow_id', 128).notNullable();
    t.string('contract_number', 64).notNullable();
    t.string('amount', 32).notNullable();
    t.string('currency', 3).notNullable();
    t.string('iban', 34).notNullable();
    t.string('iinbin', 12).notNullable();
    t.text('evidence').notNullable();
    t.string('status', 16).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('sent_at', { useTz: true }).nullable();
    t.timestamp('status_at', { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('payment_demands');
  await knex.schema.dropTableIfExists('loan_outbox');
}

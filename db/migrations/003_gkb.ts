import type { Knex } from 'knex';

/**
 * gkb_records: the GKB reports cases queue (one row per report; report_key makes enqueueing
 * idempotent). A batch claims rows, files them, and writes each row's result back here before the
 * results are fanned out to the cases. gkb_batches: one row per batch workflow, for operators.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('gkb_records', (t) => {
    t.bigIncrements('id').primary();
    t.string('report_key', 255).notNullable().unique();
    t.string('case_id', 160).notNullable();
    t.string('workflow_id', 128).notNullable();
    t.string('contract_code', 64).notNullable();
    t.integer('operation').notNullable();
    t.text('record').notNullable();
    t.string('state', 16).notNullable();
    t.string('batch_id', 160).nullable();
    t.string('file_name', 128).nullable();
    t.text('result_text').nullable();
    t.timestamp('enqueued_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.timestamp('delivered_at', { useTz: true }).nullable();
    t.index(['state', 'id'], 'gkb_records_state');
    t.index(['batch_id', 'file_name'], 'gkb_records_batch');
  });
  await knex.schema.createTable('gkb_batches', (t) => {
    t.string('batch_id', 160).primary();
    t.string('state', 32).notNullable();
    t.text('files').notNullable();
    t.text('error').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('gkb_batches');
  await knex.schema.dropTableIfExists('gkb_records');
}

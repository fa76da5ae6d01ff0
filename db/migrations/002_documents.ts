import type { Knex } from 'knex';

/**
 * The document store's metadata (documents/store.ts); the bytes live in files named by their sha256.
 * document_contents: one row per distinct content (the file exists once, whoever stored it).
 * documents: which case holds which content as what (e.g. the dbz-scan of a case), with the media
 * type and original file name ABS sent; one row per (case, kind, content), so storing the same scan
 * again for the same case changes nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('document_contents', (t) => {
    t.string('sha256', 64).primary();
    t.bigInteger('size').notNullable();
    t.timestamp('stored_at', { useTz: true }).notNullable();
  });
  await knex.schema.createTable('documents', (t) => {
    t.bigIncrements('id').primary();
    t.string('case_id', 128).notNullable();
    t.string('kind', 32).notNullable();
    t.string('sha256', 64).notNullable().references('sha256').inTable('document_contents');
    t.string('media_type', 127).notNullable();
    // Original name as ABS sent it, UTF-8 (often Cyrillic).
    t.string('file_name', 255).notNullable();
    t.bigInteger('size').notNullable();
    t.timestamp('fetched_at', { useTz: true }).notNullable();
    t.unique(['case_id', 'kind', 'sha256'], { indexName: 'documents_case_kind_sha256' });
    t.index(['sha256'], 'documents_sha256');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('documents');
  await knex.schema.dropTableIfExists('document_contents');
}

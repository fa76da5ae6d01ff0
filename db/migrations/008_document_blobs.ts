import type { Knex } from 'knex';

/**
 * Documents and GKB files in K2's database, for K2_DOCUMENT_STORE=pg (documents/blobs.ts,
 * documents/README.md): every worker reaches them. The bytes are ciphertext (documents/encryption.ts).
 * document_blobs: one row per stored file, by (space, name): 'documents' + 'ab/cd/<sha256>', or
 * 'gkb' + '<batch>/<file>.zip'; it points at the blob holding the current bytes.
 * document_blob_chunks: a blob's bytes in chunks of about 1 MiB, numbered from 0. Chunks of a blob no
 * row points at were staged by a writer that has not committed (or crashed): never read.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('document_blob_chunks', (t) => {
    t.string('blob_id', 36).notNullable();
    t.integer('chunk').notNullable();
    t.binary('bytes').notNullable();
    t.timestamp('staged_at', { useTz: true }).notNullable();
    t.primary(['blob_id', 'chunk']);
  });
  await knex.schema.createTable('document_blobs', (t) => {
    t.string('space', 32).notNullable();
    t.string('name', 255).notNullable();
    t.string('blob_id', 36).notNullable();
    t.bigInteger('size').notNullable();
    t.integer('chunks').notNullable();
    t.timestamp('stored_at', { useTz: true }).notNullable();
    t.primary(['space', 'name']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('document_blobs');
  await knex.schema.dropTableIfExists('document_blob_chunks');
}

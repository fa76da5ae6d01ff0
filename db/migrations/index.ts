import type { Knex } from 'knex';
import * as m001 from './001_outbox_and_cases';

/** Every migration, by name; names sort in the order they run. Add new ones at the end. */
export const migrations: Record<string, { up: (k: Knex) => Promise<void>; down: (k: Knex) => Promise<void> }> = {
  '001_outbox_and_cases': m001,
  '002_documents': require('./002_documents') as typeof import('./002_documents'),
};

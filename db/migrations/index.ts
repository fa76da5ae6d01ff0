import type { Knex } from 'knex';
import * as m001 from './001_outbox_and_cases';

/** Every migration, by name; names sort in the order they run. Add new ones at the end. */
export const migrations: Record<string, { up: (k: Knex) => Promise<void>; down: (k: Knex) => Promise<void> }> = {
  '001_outbox_and_cases': m001,
};

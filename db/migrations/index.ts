import type { Knex } from 'knex';
import * as m001 from './001_outbox_and_cases';
import * as m002 from './002_documents';
import * as m003 from './003_gkb';
import * as m004 from './004_outbox_episodes';
import * as m005 from './005_demand_reference';
import * as m006 from './006_gkb_in_flight';
import * as m007 from './007_outbox_lease';
import * as m008 from './008_document_blobs';

/** Every migration, by name; names sort in the order they run. Add new ones at the end. */
export const migrations: Record<string, { up: (k: Knex) => Promise<void>; down: (k: Knex) => Promise<void> }> = {
  '001_outbox_and_cases': m001,
  '002_documents': m002,
  '003_gkb': m003,
  '004_outbox_episodes': m004,
  '005_demand_reference': m005,
  '006_gkb_in_flight': m006,
  '007_outbox_lease': m007,
  '008_document_blobs': m008,
};

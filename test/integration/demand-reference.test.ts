/**
 * Demand references never repeat, also after the K2 database is restored from a backup (README
 * "Demand references"): the number is max(last + 1, the demand clock), kept in one counter row.
 * On every database of the suite (test/helpers/databases.ts), with an injected clock.
 */
import type { Knex } from 'knex';
import type { Db } from '../../db';
import { migrations } from '../../db/migrations';
import { issueDemand, type NewDemand } from '../../db/demands';
import { demandClock, formatDemandReference } from '../../domain/demand-status';
import { testDatabases, type TestDatabase } from '../helpers/databases';

const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name],
};

function demand(caseId: string): NewDemand {
  return {
    caseId,
    workflowId: caseId.split('/')[0],
    contractNumber: 'KD0000000001',
    amount: '1500000.00',
    currency: 'KZT',
    iban: 'KZ86125KZT5004100100',
    iinbin: '900101300007',
    evidence: [],
  };
}

const T0 = Date.parse('2026-12-01T09:00:00Z');
const at = (ms: number) => new Date(T0 + ms);
const numberOf = (reference: string) => Number(reference.slice(3));

/**
 * Everything a backup holds of the demands: the rows, the counter, and the id sequence (a dump
 * restores that too), so the old scheme (reference = row id) is restored exactly as in production.
 */
interface Backup {
  demands: Record<string, unknown>[];
  counter: Record<string, unknown>[];
  sequence: number;
}

const isPg = (db: Db) => db.client.config.client === 'pg';

async function backup(db: Db): Promise<Backup> {
  const demands = await db('payment_demands').select('*').orderBy('id');
  const counter = await db('demand_reference_counter').select('*');
  const sequence = isPg(db)
    ? Number(
        (await db.raw(`SELECT last_value FROM ${(await db.raw(`SELECT pg_get_serial_sequence('payment_demands', 'id') AS s`)).rows[0].s}`)).rows[0].last_value,
      )
    : Number((await db('sqlite_sequence').where({ name: 'payment_demands' }).first('seq'))?.seq ?? 0);
  return { demands, counter, sequence };
}

async function restore(db: Db, copy: Backup): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('payment_demands').delete();
    await trx('demand_reference_counter').delete();
    if (copy.demands.length > 0) await trx('payment_demands').insert(copy.demands);
    await trx('demand_reference_counter').insert(copy.counter);
    if (isPg(db)) {
      const seq = (await trx.raw(`SELECT pg_get_serial_sequence('payment_demands', 'id') AS s`)).rows[0].s;
      await trx.raw('SELECT setval(?, ?, ?)', [seq, Math.max(copy.sequence, 1), copy.sequence > 0]);
    } else {
      await trx('sqlite_sequence').where({ name: 'payment_demands' }).update({ seq: copy.sequence });
    }
  });
}

async function counterLast(db: Db): Promise<number> {
  return Number((await db('demand_reference_counter').where({ id: 1 }).first('last')).last);
}

describe.each(testDatabases())('demand references: $name', (tdb: TestDatabase) => {
  afterAll(async () => {
    await tdb.cleanup();
  });

  it('follow max(last + 1, the clock): the clock when it is ahead, strictly increasing', async () => {
    const db = await tdb.open();
    const clock = demandClock(at(0));
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push(await issueDemand(db, demand(`case-mono-${i}/run`), at(0)));
    expect(burst).toEqual([clock, clock + 1, clock + 2].map(formatDemandReference));
    // One second later the clock (100 steps) is ahead of the counter again.
    expect(await issueDemand(db, demand('case-mono-3/run'), at(1000))).toBe(formatDemandReference(clock + 100));
    // A clock that goes back does not make the numbers go back.
    expect(await issueDemand(db, demand('case-mono-4/run'), at(-60_000))).toBe(formatDemandReference(clock + 101));
    expect(await counterLast(db)).toBe(clock + 101);
  });

  it('stay the same for a case on a retry (later, or racing), which does not move the counter', async () => {
    const db = await tdb.open();
    const first = await issueDemand(db, demand('case-retry/run'), at(0));
    expect(await issueDemand(db, demand('case-retry/run'), at(5000))).toBe(first);
    const racing = await Promise.all(Array.from({ length: 20 }, (_, i) => issueDemand(db, demand('case-race/run'), at(10_000 + i))));
    expect(new Set(racing).size).toBe(1);
    expect(await counterLast(db)).toBe(numberOf(racing[0]));
    expect(Number((await db('payment_demands').count({ n: '*' }))[0].n)).toBe(2);
  });

  it('are not handed out again after the database is restored from a backup', async () => {
    const db = await tdb.open();
    await issueDemand(db, demand('case-before/run'), at(0));
    const copy = await backup(db); // the backup, taken at T0
    const afterBackup: string[] = [];
    for (let i = 0; i < 5; i++) afterBackup.push(await issueDemand(db, demand(`case-after-${i}/run`), at(60_000 + i * 1000)));

    await restore(db, copy); // an hour later the database is restored: the five demands are lost to it
    const reissued: string[] = [];
    for (let i = 0; i < 5; i++) reissued.push(await issueDemand(db, demand(`case-again-${i}/run`), at(3_600_000 + i)));

    expect(reissued.filter((r) => afterBackup.includes(r))).toEqual([]);
    expect(numberOf(reissued[0])).toBe(demandClock(at(3_600_000)));
  });

  it('the limit: a burst faster than 100 per second runs the counter ahead of the clock, and a restore soon after repeats it', async () => {
    const db = await tdb.open();
    await issueDemand(db, demand('case-base/run'), at(0));
    const copy = await backup(db);
    // 300 demands within one 10 ms step: the counter ends 299 steps (~3 s) ahead of the clock.
    const burst: string[] = [];
    for (let i = 0; i < 300; i++) burst.push(await issueDemand(db, demand(`case-burst-${i}/run`), at(10)));
    expect(numberOf(burst[299]) - demandClock(at(10))).toBe(299);

    // Restored 1 s later: the clock has not caught up with the lost counter, so numbers repeat.
    await restore(db, copy);
    const tooSoon = await issueDemand(db, demand('case-soon/run'), at(1000));
    expect(burst).toContain(tooSoon);

    // Restored once the clock has passed the lost counter: no repeat.
    await restore(db, copy);
    const later = await issueDemand(db, demand('case-later/run'), at(3100));
    expect(burst).not.toContain(later);
    expect(numberOf(later)).toBeGreaterThan(numberOf(burst[299]));
  });

  it('start above every reference of the old scheme (PTP + row id), also with a clock set before 2026', async () => {
    const db = await tdb.open({ migrate: false });
    const names = Object.keys(migrations).sort();
    // Up to the migration before 005, then demands issued the old way.
    for (const name of names.slice(0, names.indexOf('005_demand_reference'))) await db.migrate.up({ migrationSource, name });
    const old: string[] = [];
    for (let i = 0; i < 3; i++) {
      const [row] = await db('payment_demands')
        .insert({ ...row0(`case-old-${i}/run`) })
        .returning('id');
      const id = Number(typeof row === 'object' ? row.id : row);
      old.push(formatDemandReference(id));
      await db('payment_demands').where({ id }).update({ reference: old[i] });
    }
    await db.migrate.latest({ migrationSource });
    expect(await counterLast(db)).toBe(3);

    const backwards = await issueDemand(db, demand('case-new-0/run'), new Date('2025-06-01T00:00:00Z'));
    expect(backwards).toBe(formatDemandReference(4));
    const now = await issueDemand(db, demand('case-new-1/run'), at(0));
    expect(now).toBe(formatDemandReference(demandClock(at(0))));
    expect(old).not.toContain(backwards);
    expect(old).not.toContain(now);
  });
});

/** A payment_demands row as the old code inserted it (no reference yet). */
function row0(caseId: string): Record<string, unknown> {
  const d = demand(caseId);
  return {
    case_id: d.caseId,
    workflow_id: d.workflowId,
    contract_number: d.contractNumber,
    amount: d.amount,
    currency: d.currency,
    iban: d.iban,
    iinbin: d.iinbin,
    evidence: '[]',
    status: 'issued',
    created_at: new Date(T0).toISOString(),
  };
}

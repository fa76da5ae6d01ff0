/**
 * The loans in K2's outbox sealed with the payload keys (db/sealed.ts), on SQLite and, with
 * K2_TEST_PG_URL, PostgreSQL: the table holds no personal data in clear, the dispatcher's claim
 * opens them to the loans as accepted, and loans written before sealing still read.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../../db';
import { claimLoans, enqueueLoans, loanDigest, pendingLoans } from '../../db/outbox';
import { createColumnSealer } from '../../db/sealed';
import { generateLoan, mulberry32 } from '../../domain/generate';
import type { Loan } from '../../domain/loan';
import { testDatabases } from '../helpers/databases';

const rand = mulberry32(2026_12_02);
let serial = 1;
function newLoan(): Loan {
  const l = generateLoan(rand, {}, { contractSerial: serial++ });
  return { ...l, debt: Number(l.debt).toFixed(2) } as Loan;
}
const key = { id: 'k-outbox', key: randomBytes(32) };
const sealer = createColumnSealer([key]);

describe.each(testDatabases())('on %s', (database) => {
  let db: Db;
  beforeEach(async () => {
    db = await database.open();
  });
  afterAll(() => database.cleanup());

  test('accepted loans are sealed in the table; a claim opens them as they were, their digest that of the plaintext', async () => {
    const loans = [newLoan(), newLoan(), newLoan()];
    await enqueueLoans(db, loans, 'req-sealed', new Date(), sealer);
    const raw: Array<{ payload: string; payload_sha256: string }> = await db('loan_outbox').orderBy('id').select('payload', 'payload_sha256');
    expect(raw).toHaveLength(3);
    raw.forEach((r, i) => {
      expect(r.payload).toMatch(/^k2s1:k-outbox:/);
      for (const clear of [loans[i].iinbin, loans[i].fullname, loans[i].iban]) expect(r.payload.includes(clear)).toBe(false);
      expect(r.payload_sha256).toBe(loanDigest(loans[i]));
    });
    const claim = await claimLoans(db, 'dispatcher-1', { limit: 10, leaseMs: 30_000 }, sealer);
    expect(claim.rows.map((r) => r.loan)).toEqual(loans);
    expect((await pendingLoans(db, 10, 0, sealer)).map((r) => r.loan)).toEqual(loans);
  });

  test('loans written before sealing (in clear) still read; a sealed loan without its key reads as unreadable, alone', async () => {
    const old = newLoan();
    await enqueueLoans(db, [old], 'req-clear');
    const sealed = newLoan();
    await enqueueLoans(db, [sealed], 'req-sealed', new Date(), sealer);
    expect((await claimLoans(db, 'dispatcher-1', { limit: 10, leaseMs: 30_000 }, sealer)).rows.map((r) => r.loan)).toEqual([old, sealed]);
    // Without its key a sealed row reads as unreadable (the dispatcher counts a refused attempt), the clear one as it was.
    const withoutKey = await pendingLoans(db, 10, 0, createColumnSealer([{ id: 'other', key: randomBytes(32) }]));
    expect(withoutKey.map((r) => r.loan)).toEqual([old, undefined]);
    expect(withoutKey[1].unreadable).toMatch(
      /^SealedKeyUnknownError: loan_outbox.payload is sealed with key "k-outbox", which is not among the configured payload keys/,
    );
  });
});

/**
 * A demand whose case closed before it was sent (repaid between issuing and sending) is withdrawn
 * when the case records its closure, so no demand stays `issued` for ever; on every database of the
 * suite (test/helpers/databases.ts).
 */
import { closeEpisode } from '../../activities/episodes';
import type { Db } from '../../db';
import { countDemandsByStatus, findDemand, issueDemand, markDemandSent, recordDemandStatus, type NewDemand } from '../../db/demands';
import { testDatabases, type TestDatabase } from '../helpers/databases';

const demand = (workflowId: string, episode = 1): NewDemand => ({
  caseId: episode === 1 ? workflowId : `${workflowId}/episode-${episode}`,
  workflowId,
  contractNumber: workflowId.replace('case-', ''),
  amount: '1500000.00',
  currency: 'KZT',
  iban: 'KZ86125KZT5004100100',
  iinbin: '900101300007',
  evidence: [],
});

describe.each(testDatabases())('withdrawn demands on $name', (tdb: TestDatabase) => {
  let db: Db;
  beforeAll(async () => {
    db = await tdb.open();
  });
  afterAll(async () => {
    await tdb.cleanup();
  });

  it("withdraws the closing case's unsent demand and leaves sent demands and other cases alone", async () => {
    const unsent = await issueDemand(db, demand('case-KD1000000001'));
    const sent = await issueDemand(db, demand('case-KD1000000002'));
    await markDemandSent(db, sent);
    const otherCase = await issueDemand(db, demand('case-KD1000000003'));

    await closeEpisode(db, { contractNumber: 'KD1000000001', workflowId: 'case-KD1000000001', appliedSeq: 1 });
    await closeEpisode(db, { contractNumber: 'KD1000000002', workflowId: 'case-KD1000000002', appliedSeq: 1 });

    expect((await findDemand(db, unsent))?.status).toBe('withdrawn');
    expect((await findDemand(db, sent))?.status).toBe('sent');
    expect((await findDemand(db, otherCase))?.status).toBe('issued');
    expect(await countDemandsByStatus(db)).toMatchObject({ withdrawn: 1, sent: 1, issued: 1 });
  });

  it('a withdrawn demand that EKO got after all still moves on: sent, then its statuses', async () => {
    const reference = await issueDemand(db, demand('case-KD1000000004'));
    await closeEpisode(db, { contractNumber: 'KD1000000004', workflowId: 'case-KD1000000004', appliedSeq: 1 });
    expect((await findDemand(db, reference))?.status).toBe('withdrawn');
    await markDemandSent(db, reference);
    expect((await findDemand(db, reference))?.status).toBe('sent');
    await recordDemandStatus(db, reference, 'PC1');
    expect((await findDemand(db, reference))?.status).toBe('PC1');
  });

  it("an older run's late close withdraws nothing (the newer episode's demand stays issued)", async () => {
    await closeEpisode(db, { contractNumber: 'KD1000000005', workflowId: 'case-KD1000000005', appliedSeq: 10 });
    const next = await issueDemand(db, demand('case-KD1000000005', 2));
    await closeEpisode(db, { contractNumber: 'KD1000000005', workflowId: 'case-KD1000000005', appliedSeq: 9 });
    expect((await findDemand(db, next))?.status).toBe('issued');
  });
});

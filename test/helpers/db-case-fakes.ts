/**
 * ABS and EKO faked for integration tests that run the real caseWorkflow against a real K2 database:
 * ABS answers at once and always the same, the demand references and episodes are the real ones
 * in `db`, GKB reporting is not applicable.
 */
import crypto from 'node:crypto';
import type { CaseActivities } from '../../activities';
import { createEpisodeActivities, type EpisodeActivities } from '../../activities/episodes';
import type { GkbActivities } from '../../activities/gkb';
import type { Db } from '../../db';
import { issueDemand, markDemandSent } from '../../db/demands';

export function dbBackedCaseActivities(
  db: Db,
  accountsOf: (iinbin: string) => Array<{ iban: string; cur: string }>,
  gkbReason: string,
): CaseActivities & Pick<GkbActivities, 'enqueueGkbReport'> & EpisodeActivities {
  const disbursement = { purpose: 'Предоставление кредита по договору', amount: '1000000.00', cur: 'KZT', DC: 'D' as const, out_bal: '1000000.00' };
  return {
    ...createEpisodeActivities({ db }),
    async checkClient() {
      return { ok: true, value: { fullname: 'Тестов Тест Тестович', sectecon: 9, residfl: 1 } };
    },
    async listAccounts(iinbin: string) {
      return { ok: true, value: accountsOf(iinbin) };
    },
    async fetchStatement() {
      return { ok: true, value: [disbursement] };
    },
    async fetchDisbursementLine() {
      return { ok: true, value: disbursement };
    },
    async fetchScan(input: { caseId: string; dbzNum: string; dbzDate: string; iinbin: string }) {
      const sha256 = crypto.createHash('sha256').update(`${input.dbzNum}|${input.dbzDate}`).digest('hex');
      return { found: true as const, ref: { sha256, size: 1024, mediaType: 'application/pdf', fileName: `${input.dbzNum}.pdf` } };
    },
    // The real reference sequence, in the test database.
    issueDemand: (demand) => issueDemand(db, demand),
    async sendDemand(reference: string) {
      await markDemandSent(db, reference);
    },
    async enqueueGkbReport() {
      return { state: 'not-applicable' as const, reason: gkbReason };
    },
  };
}

/**
 * What a case knows that its GKB record needs (DOMAIN.md §7), and the GKB dictionary values a
 * deployment uses (DOMAIN.md §5). Types and one constant only: no I/O.
 *
 * The dictionary ids below were seen in public GKB exports; they are not the official dictionary
 * (the document's "Справочники" tables were lost, gkb-batch-upload.txt §7). So they live in this one
 * config object, which a deployment overrides, and never as literals in the mapping code.
 */

/** The case's phase as GKB sees it: ContractPhase 4 / 5 / 6 (DOMAIN.md §5). */
export type GkbCasePhase = 'active' | 'closed' | 'closed-early';

/** A dictionary reference. Strings, because ids are codes: the document writes CreditObject id="03". */
export type GkbId = string;

/** A subject address, when a source supplies one (§3.4 "Блок информации по адресам субъекта"). */
export interface GkbAddressInput {
  katoId: string;
  locationId?: GkbId;
  typeId: GkbId;
  streetName?: string;
  streetNumber?: string;
  additionalInformation?: string;
}

/** A contact (§3.4 "Блок информации по контактным данным субъекта"), e.g. a phone number. */
export interface GkbCommunicationInput {
  typeId: GkbId;
  value: string;
}

/** A collateral (§3.3). Only the parts K2 could ever know; all optional beyond the two ids. */
export interface GkbCollateralInput {
  statusId: GkbId;
  typeId: GkbId;
  /** Russian name of the pledge. */
  pledgeName?: string;
  value?: { amount: string; currency: string; typeId: GkbId };
}

export interface GkbDossier {
  /** EKO `contract_number` → ContractCode. */
  contractNumber: string;
  /** EKO `dbz_contract_number` → AgreementNumber. */
  dbzContractNumber: string;
  /**
   * Loan agreement date → StartDate, `YYYY-MM-DD`. Gap G1: EKO may not send it; then it is absent
   * and no record is produced (GKB identifies a contract by code + start date, §4).
   */
  agreementStartDate?: string;
  /** Agreement end date → EndDate, when known. */
  agreementEndDate?: string;
  /** Date the contract was actually settled → RealPaymentDate, when known (closed phases). */
  realPaymentDate?: string;
  phase: GkbCasePhase;
  /** EKO `overdue_days` → ContractStatus bucket. */
  overdueDays: number;
  /** EKO `debt`: the overdue amount → OverdueAmount. Decimal string. */
  debt: string;
  /**
   * ABS statement `out_bal`. NOT sent to GKB: it is the balance right after disbursement, stale months
   * later at the record's accounting date (DOMAIN.md §7, G6). Not read by the mapping; optional until
   * gkbDossierOf stops filling it.
   */
  outBal?: string;
  /**
   * The residual amount as of `reportDate` → ResidualAmount, when a source knows it. No K2 source does
   * today, so type-1 records leave ResidualAmount out (an update keeps GKB's value, G6); the one-day
   * file (type 3) needs it and is refused without it.
   */
  residualAmount?: string;
  /** Disbursed amount from the ABS statement line → CreditLimit. Decimal string. */
  creditLimit: string;
  /** ISO 4217 code of the loan (all amounts of one contract are in it). */
  currency: string;
  /** EKO `iinbin` → Identification rank 1 typeId 14; DateOfBirth and Gender derive from it. */
  iinbin: string;
  /** ABS client `fullname`, "Фамилия Имя Отчество". */
  fullname: string;
  /** Operator-supplied split of a name `splitFullName` refuses (4+ words); wins over `fullname`. */
  nameParts?: { surname: string; firstName: string; fathersName?: string };
  /** ABS client `residfl`: 1 = resident (DOMAIN.md §4). */
  residfl: number | string;
  /** The report date → Record accountingDate, `YYYY-MM-DD`. */
  reportDate: string;
  /**
   * Citizenship dictionary id when a source knows it; otherwise Citizenship is left out. Never a default:
   * in an update it would overwrite the real value GKB has (G6). No K2 source knows it today.
   */
  citizenshipId?: GkbId;
  /**
   * Blocks the §3.1 note makes mandatory in file type 1. No K2 source provides them today; the bank's
   * lending system reported them when the loan was issued. Required for operation 1 (insert).
   * Optional for operation 2 (update): left out of the record when absent, so GKB keeps its values
   * (product decision, see domain/gkb/contract-record.ts).
   */
  addresses?: GkbAddressInput[];
  communications?: GkbCommunicationInput[];
  collaterals?: GkbCollateralInput[];
}

/** One ContractStatus bucket: overdue days in [minDays, maxDays] (maxDays undefined = no upper end). */
export interface GkbOverdueBucket {
  minDays: number;
  maxDays?: number;
  id: GkbId;
}

export interface GkbDictionary {
  contractPhase: { active: GkbId; closed: GkbId; closedEarly: GkbId };
  /** `notOverdue` for 0 days; `overdueBuckets` must cover 1..∞ without gaps or overlaps. */
  contractStatus: { notOverdue: GkbId; overdueBuckets: GkbOverdueBucket[] };
  /** Per-deployment (DOMAIN.md §7): what the bank's loans are. Values must come from GKB's dictionary. */
  fundingType: GkbId;
  creditPurpose2: GkbId;
  creditObject: GkbId;
  /** KATO code of the reporting branch, 9 digits. */
  branchLocationKatoId: string;
  subjectRole: { borrower: GkbId };
  /** `nonResident` is not in DOMAIN.md §5: undefined until a deployment configures it. */
  residency: { resident: GkbId; nonResident?: GkbId };
  identification: { iin: { rank: GkbId; typeId: GkbId } };
}

/** DOMAIN.md §5 values. Deployment-specific ids (funding type, purpose, object, branch) are examples from the document's §3.1 XML. */
export const DEFAULT_GKB_DICTIONARY: GkbDictionary = Object.freeze({
  contractPhase: { active: '4', closed: '5', closedEarly: '6' },
  contractStatus: {
    notOverdue: '1',
    overdueBuckets: [
      { minDays: 1, maxDays: 6, id: '10' },
      { minDays: 7, maxDays: 30, id: '11' },
      { minDays: 31, maxDays: 60, id: '12' },
      { minDays: 61, maxDays: 90, id: '13' },
      { minDays: 91, maxDays: 360, id: '15' },
      { minDays: 361, id: '16' },
    ],
  },
  fundingType: '2',
  creditPurpose2: '1',
  creditObject: '03',
  branchLocationKatoId: '710000000',
  subjectRole: { borrower: '1' },
  residency: { resident: '1' },
  identification: { iin: { rank: '1', typeId: '14' } },
}) as GkbDictionary;

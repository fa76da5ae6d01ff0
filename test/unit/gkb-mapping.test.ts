import { create } from 'xmlbuilder2';
import {
  contractStatusFor,
  escapeXml,
  LEGAL_ENTITY_REASON,
  mapDossierToContract,
  splitFullName,
  writeContractXml,
  type ContractRecord,
} from '../../domain/gkb/contract-record';
import { DEFAULT_GKB_DICTIONARY, type GkbDictionary, type GkbDossier } from '../../domain/gkb/dossier';
import { generateBin, generateIin, mulberry32 } from '../../domain/generate';
import { sampleDossier } from '../fixtures/gkb/sample-dossiers';

const dict = DEFAULT_GKB_DICTIONARY;

function mapOk(d: GkbDossier, fileType: 1 | 3 = 1, operation: 1 | 2 = 1): ContractRecord {
  const r = mapDossierToContract(d, dict, { operation, fileType });
  if (!r.ok) throw new Error(`expected a record, got: ${r.reason}`);
  return r.record;
}

function mapFail(d: GkbDossier, fileType: 1 | 3 = 1) {
  const r = mapDossierToContract(d, dict, { operation: 1, fileType });
  if (r.ok) throw new Error('expected no record');
  return r;
}

/** Parses the XML back (xmlbuilder2) so assertions see what a reader sees. */
function parse(xml: string): any {
  return create(`<Records>${xml}</Records>`).end({ format: 'object' }) as any;
}

/** DOM text of the n-th element named `tag`, after a real XML parse (entities resolved). */
function textOf(xml: string, tag: string, n = 0): string | null {
  const doc = create(`<Records>${xml}</Records>`).node as unknown as { getElementsByTagName(t: string): ArrayLike<{ textContent: string | null }> };
  return doc.getElementsByTagName(tag)[n]?.textContent ?? null;
}

describe('contractStatusFor (DOMAIN §5 buckets)', () => {
  test.each([
    [0, '1'],
    [1, '10'],
    [6, '10'],
    [7, '11'],
    [30, '11'],
    [31, '12'],
    [60, '12'],
    [61, '13'],
    [90, '13'],
    [91, '15'],
    [360, '15'],
    [361, '16'],
    [5000, '16'],
  ])('%i days → %s', (days, id) => {
    expect(contractStatusFor(days, dict)).toBe(id);
  });

  test('rejects negative and fractional days', () => {
    expect(() => contractStatusFor(-1, dict)).toThrow(RangeError);
    expect(() => contractStatusFor(1.5, dict)).toThrow(RangeError);
  });

  test('uses the configured buckets, not literals', () => {
    const custom: GkbDictionary = { ...dict, contractStatus: { notOverdue: '0', overdueBuckets: [{ minDays: 1, id: '99' }] } };
    expect(contractStatusFor(0, custom)).toBe('0');
    expect(contractStatusFor(400, custom)).toBe('99');
    const gap: GkbDictionary = { ...dict, contractStatus: { notOverdue: '1', overdueBuckets: [{ minDays: 1, maxDays: 5, id: '10' }] } };
    expect(() => contractStatusFor(6, gap)).toThrow(/no ContractStatus bucket/);
  });
});

describe('splitFullName ("Фамилия Имя Отчество")', () => {
  test('three words', () => {
    expect(splitFullName('Иванов Иван Иванович')).toEqual({ ok: true, surname: 'Иванов', firstName: 'Иван', fathersName: 'Иванович' });
  });
  test('no patronymic', () => {
    expect(splitFullName('Ким Анна')).toEqual({ ok: true, surname: 'Ким', firstName: 'Анна' });
  });
  test('extra whitespace is collapsed, hyphenated surnames stay whole', () => {
    expect(splitFullName('  Петрова-Водкина   Мария \t Ивановна ')).toEqual({
      ok: true,
      surname: 'Петрова-Водкина',
      firstName: 'Мария',
      fathersName: 'Ивановна',
    });
  });
  test('Turkic two-word patronymic', () => {
    expect(splitFullName('Алиев Рашид Ахмед оглы')).toEqual({ ok: true, surname: 'Алиев', firstName: 'Рашид', fathersName: 'Ахмед оглы' });
    expect(splitFullName('Сейтова Айгуль Нурлан қызы')).toMatchObject({ ok: true, fathersName: 'Нурлан қызы' });
  });
  test('four words without a particle are refused, not guessed', () => {
    const r = splitFullName('Ли Анна Мария Сергеевна');
    expect(r.ok).toBe(false);
    expect(r.ok === false && r.reason).toMatch(/4 words.*operator/);
  });
  test('one word or empty is refused', () => {
    expect(splitFullName('Мадонна').ok).toBe(false);
    expect(splitFullName('   ')).toEqual({ ok: false, reason: 'missing client full name' });
  });
});

describe('mapDossierToContract, file type 1', () => {
  test('maps every DOMAIN §7 field', () => {
    const rec = mapOk(sampleDossier({ contractNumber: 'C-1', dbzContractNumber: 'DBZ-1', overdueDays: 45, phase: 'active' }));
    expect(rec.operation).toBe(1);
    expect(rec.general).toMatchObject({
      contractCode: 'C-1',
      agreementNumber: 'DBZ-1',
      fundingTypeId: '2',
      creditPurpose2Id: '1',
      creditObjectId: '03',
      contractPhaseId: '4',
      contractStatusId: '12',
      startDate: '2023-03-15',
      endDate: '2026-03-15',
      branchLocationKatoId: '710000000',
    });
    const ind = rec.general.subjects[0].individual;
    expect(rec.general.subjects[0].roleId).toBe('1');
    expect(ind.residencyId).toBe('1');
    expect(ind.identifications).toEqual([{ rank: '1', typeId: '14', number: expect.stringMatching(/^\d{12}$/) }]);
    expect(rec.credit.creditLimit).toEqual({ value: '2000000.00', currency: 'KZT' });
    expect(rec.credit.records).toEqual([{ accountingDate: '2024-06-30', overdueAmount: { value: '125000.50', currency: 'KZT' } }]);
  });

  test('DateOfBirth and Gender come from the IIN', () => {
    const rand = mulberry32(7);
    const female = mapOk(sampleDossier({ iinbin: generateIin(rand, { birthDate: '1989-01-01', gender: 'F' }) }));
    expect(female.general.subjects[0].individual).toMatchObject({ dateOfBirth: '1989-01-01', gender: 'F' });
    const male = mapOk(sampleDossier({ iinbin: generateIin(rand, { birthDate: '2001-12-31', gender: 'M' }) }));
    expect(male.general.subjects[0].individual).toMatchObject({ dateOfBirth: '2001-12-31', gender: 'M' });
  });

  test('closed phases report ContractPhase 5 / 6 and not overdue', () => {
    const closed = mapOk(sampleDossier({ phase: 'closed', overdueDays: 0, debt: '0', realPaymentDate: '2024-06-29' }));
    expect(closed.general).toMatchObject({ contractPhaseId: '5', contractStatusId: '1', realPaymentDate: '2024-06-29' });
    expect(mapOk(sampleDossier({ phase: 'closed-early', overdueDays: 0, debt: '0.00' })).general.contractPhaseId).toBe('6');
    expect(mapFail(sampleDossier({ phase: 'closed', overdueDays: 3, debt: '0' })).reason).toMatch(/closed but still 3 days overdue/);
    expect(mapFail(sampleDossier({ phase: 'closed', overdueDays: 0, debt: '10' })).reason).toMatch(/closed but its overdue amount is 10.00/);
  });

  test('G3: a legal entity is not applicable', () => {
    const r = mapFail(sampleDossier({ iinbin: generateBin(mulberry32(3)) }));
    expect(r).toEqual({ ok: false, notApplicable: true, reason: LEGAL_ENTITY_REASON });
    expect(r.reason).toBe('legal entity: the pawnshop GKB format covers individuals only (G3)');
  });

  test('G1: no agreement date, no record', () => {
    const r = mapFail(sampleDossier({ agreementStartDate: undefined }));
    expect(r.notApplicable).toBeUndefined();
    expect(r.reason).toBe('missing agreement start date');
  });

  test('every missing or invalid item is named in one reason', () => {
    const r = mapFail(
      sampleDossier({
        agreementStartDate: undefined,
        dbzContractNumber: ' ',
        residualAmount: '1.005',
        debt: '-5',
        currency: 'tenge',
        fullname: 'Мадонна',
        residfl: 'X',
        addresses: [],
        communications: undefined,
        collaterals: undefined,
      }),
    );
    for (const part of [
      'agreement (DBZ) number',
      'agreement start date',
      'residual amount as of the report date "1.005" is not an amount',
      'overdue amount (debt) "-5" is not an amount',
      'currency "tenge"',
      'has one word',
      'residfl "X"',
      'collateral block',
      'subject address',
      'subject contact details',
    ]) {
      expect(r.reason).toContain(part);
    }
  });

  test('invalid IIN and invalid dates are explained', () => {
    expect(mapFail(sampleDossier({ iinbin: '123456789012' })).reason).toMatch(/^iinbin is not a valid IIN: check digit/);
    expect(mapFail(sampleDossier({ agreementStartDate: '15.03.2023' })).reason).toMatch(/agreement start date "15.03.2023" is not a YYYY-MM-DD date/);
    expect(mapFail(sampleDossier({ reportDate: '2024-02-30' })).reason).toMatch(/report date/);
  });

  test('non-residents need a configured Residency id', () => {
    expect(mapFail(sampleDossier({ residfl: 0 })).reason).toMatch(/non-resident and no GKB Residency id is configured/);
    const r = mapDossierToContract(sampleDossier({ residfl: '0' }), { ...dict, residency: { resident: '1', nonResident: '2' } }, { operation: 2, fileType: 1 });
    expect(r.ok && r.record.general.subjects[0].individual.residencyId).toBe('2');
  });

  test('an insert without a collateral is refused: no stand-in collateral is invented (G6)', () => {
    expect(mapFail(sampleDossier({ collaterals: undefined })).reason).toBe('missing collateral block (mandatory in file type 1, GKB document §3.1)');
  });

  test('an operator-supplied name split wins over fullname', () => {
    const d = sampleDossier({ fullname: 'Ли Анна Мария Сергеевна' });
    expect(mapFail(d).reason).toMatch(/operator must supply the split/);
    const rec = mapOk({ ...d, nameParts: { surname: 'Ли', firstName: 'Анна Мария', fathersName: 'Сергеевна' } });
    expect(rec.general.subjects[0].individual.firstName).toEqual([{ language: 'ru-RU', text: 'Анна Мария' }]);
  });

  test('characters XML cannot carry are refused with a reason', () => {
    expect(mapFail(sampleDossier({ fullname: 'Иванов Иван\u0007 Иванович' })).reason).toMatch(/first name contains a character not allowed in XML \(U\+0007\)/);
  });
});

describe('mapDossierToContract, file type 1: blocks K2 has no source for (product decision)', () => {
  const bare = (over: Partial<GkbDossier> = {}) => sampleDossier({ addresses: undefined, communications: undefined, collaterals: undefined, ...over });
  const BLOCKS = ['Collaterals', 'Collateral', 'Addresses', 'Address', 'Communications', 'Communication'];

  test('operation 2 without collaterals, addresses and contacts: a record, and the XML leaves the blocks out', () => {
    const rec = mapOk(bare(), 1, 2);
    expect(rec.operation).toBe(2);
    expect(rec.general.collaterals).toBeUndefined();
    const ind = rec.general.subjects[0].individual;
    expect(ind.addresses).toBeUndefined();
    expect(ind.communications).toBeUndefined();
    // Everything else of type 1 is still there.
    expect(rec.general).toMatchObject({ creditPurpose2Id: '1', creditObjectId: '03', branchLocationKatoId: '710000000' });
    expect(ind).toMatchObject({ gender: expect.stringMatching(/^[MF]$/) });
    expect(rec.credit.records[0].overdueAmount).toEqual({ value: '125000.50', currency: 'KZT' });

    const xml = writeContractXml(rec);
    expect(xml).toMatch(/^  <Contract operation="2">\n/);
    for (const el of BLOCKS) expect(xml).not.toMatch(new RegExp(`<${el}[\\s/>]`));
    for (const el of ['CreditPurpose2', 'BranchLocation', 'Gender', 'Identifications', 'OverdueAmount']) expect(xml).toContain(`<${el}`);
  });

  test('operation 2 with empty arrays is the same as without them', () => {
    const xml = writeContractXml(mapOk(bare({ addresses: [], communications: [], collaterals: [] }), 1, 2));
    for (const el of BLOCKS) expect(xml).not.toMatch(new RegExp(`<${el}[\\s/>]`));
  });

  test('operation 2 still sends the blocks the dossier has', () => {
    const rec = mapOk(bare({ communications: [{ typeId: '3', value: '87019303855' }] }), 1, 2);
    expect(rec.general.subjects[0].individual.communications).toEqual([{ typeId: '3', value: '87019303855' }]);
    const xml = writeContractXml(rec);
    expect(xml).toContain('<Communication typeId="3">87019303855</Communication>');
    expect(xml).not.toContain('<Collaterals');
    expect(xml).not.toContain('<Addresses');
    const full = writeContractXml(mapOk(sampleDossier(), 1, 2));
    for (const el of ['Collaterals', 'Addresses', 'Communications']) expect(full).toContain(`<${el}>`);
  });

  test('operation 1 without them is refused, naming each missing block', () => {
    const r = mapFail(bare());
    expect(r.notApplicable).toBeUndefined();
    expect(r.reason).toBe(
      'missing collateral block (mandatory in file type 1, GKB document §3.1), subject address (mandatory in file type 1, GKB document §3.1), subject contact details (mandatory in file type 1, GKB document §3.1)',
    );
    expect(mapFail(sampleDossier({ communications: [] })).reason).toBe('missing subject contact details (mandatory in file type 1, GKB document §3.1)');
    expect(mapFail(sampleDossier({ addresses: undefined })).reason).toBe('missing subject address (mandatory in file type 1, GKB document §3.1)');
    expect(mapFail(sampleDossier({ collaterals: [] })).reason).toBe('missing collateral block (mandatory in file type 1, GKB document §3.1)');
  });

  test('operation 2 is relaxed for these blocks only: other missing data is still refused', () => {
    const r = mapDossierToContract(bare({ agreementStartDate: undefined, debt: '' }), dict, { operation: 2, fileType: 1 });
    expect(r).toEqual({ ok: false, reason: 'missing agreement start date, overdue amount (debt)' });
  });
});

describe('never a value K2 does not know as of the accounting date (DOMAIN.md §7, G6)', () => {
  // What gkbDossierOf builds today: out_bal from the disbursement line, no citizenship, no residual amount.
  const today = () => sampleDossier({ outBal: '2000000.00', addresses: undefined, communications: undefined, collaterals: undefined });

  test("the statement's out_bal (the balance right after disbursement) is not sent as ResidualAmount", () => {
    const rec = mapOk(today(), 1, 2);
    expect(rec.credit.records).toEqual([{ accountingDate: '2024-06-30', overdueAmount: { value: '125000.50', currency: 'KZT' } }]);
    const xml = writeContractXml(rec);
    expect(xml).not.toContain('<ResidualAmount');
    expect(xml).not.toContain('2000000.00</ResidualAmount>');
    expect(xml).toContain('<OverdueAmount currency="KZT">125000.50</OverdueAmount>');
  });

  test('no default Citizenship: it is left out when no source knows it', () => {
    const rec = mapOk(today(), 1, 2);
    expect(rec.general.subjects[0].individual.citizenshipId).toBeUndefined();
    expect(writeContractXml(rec)).not.toContain('<Citizenship');
    // An insert gets none either.
    expect(mapOk(sampleDossier()).general.subjects[0].individual.citizenshipId).toBeUndefined();
  });

  test('what a source does know is sent: a residual amount as of the report date, a citizenship', () => {
    const rec = mapOk({ ...today(), residualAmount: '1500000', citizenshipId: '110' }, 1, 2);
    expect(rec.credit.records[0].residualAmount).toEqual({ value: '1500000.00', currency: 'KZT' });
    expect(rec.general.subjects[0].individual.citizenshipId).toBe('110');
    const xml = writeContractXml(rec);
    expect(xml).toContain('<ResidualAmount currency="KZT">1500000.00</ResidualAmount>');
    expect(xml).toContain('<Citizenship id="110"/>');
  });

  test('the dictionary has no default citizenship and no stand-in collateral to fall back on', () => {
    expect(Object.keys(dict).sort()).toEqual([
      'branchLocationKatoId',
      'contractPhase',
      'contractStatus',
      'creditObject',
      'creditPurpose2',
      'fundingType',
      'identification',
      'residency',
      'subjectRole',
    ]);
  });
});

describe('mapDossierToContract, file type 3 (one-day, document §6)', () => {
  test('only the §6.1 fields, for a newly issued contract', () => {
    const rec = mapOk(sampleDossier({ overdueDays: 0, residualAmount: '1875000', addresses: undefined, communications: undefined, collaterals: undefined }), 3);
    expect(rec.fileType).toBe(3);
    expect(rec.general.creditPurpose2Id).toBeUndefined();
    expect(rec.general.creditObjectId).toBeUndefined();
    expect(rec.general.branchLocationKatoId).toBeUndefined();
    expect(rec.general.collaterals).toBeUndefined();
    const ind = rec.general.subjects[0].individual;
    expect(ind.gender).toBeUndefined();
    expect(ind.citizenshipId).toBeUndefined();
    expect(ind.communications).toBeUndefined();
    expect(ind.dateOfBirth).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(rec.credit.records[0]).toEqual({ accountingDate: '2024-06-30', residualAmount: { value: '1875000.00', currency: 'KZT' } });
  });

  test('the §6.2 record is its ResidualAmount: without the amount as of the report date there is no record (out_bal is not it)', () => {
    expect(mapFail(sampleDossier({ overdueDays: 0, outBal: '1875000' }), 3)).toEqual({ ok: false, reason: 'missing residual amount as of the report date' });
  });

  test('overdue or closed contracts are not newly issued', () => {
    expect(mapFail(sampleDossier({ overdueDays: 12 }), 3)).toMatchObject({
      notApplicable: true,
      reason: expect.stringMatching(/only for newly issued contracts.*12 days overdue/),
    });
    expect(mapFail(sampleDossier({ overdueDays: 0, phase: 'closed', debt: '0' }), 3).notApplicable).toBe(true);
  });

  test('the XML has no type-1-only elements', () => {
    const xml = writeContractXml(mapOk(sampleDossier({ overdueDays: 0, residualAmount: '0' }), 3));
    for (const el of [
      'CreditPurpose2',
      'CreditObject',
      'BranchLocation',
      'Collaterals',
      'Gender',
      'Citizenship',
      'Communications',
      'OverdueAmount',
      'StreetNumber',
    ]) {
      expect(xml).not.toContain(`<${el}`);
    }
    expect(xml).toContain('<Addresses>');
  });
});

describe('writeContractXml', () => {
  test('element order of the document §3.1 example', () => {
    const expected = [
      'Contract',
      'General',
      'ContractCode',
      'AgreementNumber',
      'FundingType',
      'CreditPurpose2',
      'CreditObject',
      'ContractPhase',
      'ContractStatus',
      'StartDate',
      'EndDate',
      'BranchLocation',
      'Collaterals',
      'Collateral',
      'PledgeName',
      'Text',
      'Value',
      'Subjects',
      'Subject',
      'Entity',
      'Individual',
      'FirstName',
      'Text',
      'Surname',
      'Text',
      'FathersName',
      'Text',
      'Gender',
      'Residency',
      'DateOfBirth',
      'Citizenship',
      'Identifications',
      'Identification',
      'Number',
      'Addresses',
      'Address',
      'StreetName',
      'Text',
      'StreetNumber',
      'Address',
      'StreetName',
      'Text',
      'StreetNumber',
      'Communications',
      'Communication',
      'Type',
      'Credit',
      'CreditLimit',
      'RecordsList',
      'Record',
      'ResidualAmount',
      'OverdueAmount',
    ];
    // Citizenship and ResidualAmount only appear when known; here they are, to check their place.
    const xml = writeContractXml(mapOk(sampleDossier({ citizenshipId: '110', residualAmount: '1875000' }), 1, 2));
    const order = [...xml.matchAll(/<([A-Za-z0-9]+)[\s/>]/g)].map((m) => m[1]);
    expect(order).toEqual(expected);
    expect(xml).toMatch(/^  <Contract operation="2">\n/);
    expect(xml).toContain('<Identification rank="1" typeId="14">');
    expect(xml).toContain('<Text language="ru-RU">');
  });

  test('escapes quotes, ampersands and angle brackets in names and codes', () => {
    // A 4-word name without a particle is refused, so an explicit split carries the quotes.
    const withQuotes = mapOk(
      sampleDossier({
        contractNumber: 'A&B<1>',
        dbzContractNumber: `"Q"&'R'`,
        fullname: 'x',
        nameParts: { surname: `O'Коннор`, firstName: 'Анна "Мария"', fathersName: 'Ивановна & Co' },
        addresses: [{ katoId: '750000000', typeId: '1', streetName: 'ул. "Абая" <угол>' }],
      }),
    );
    const xml = writeContractXml(withQuotes);
    expect(xml).toContain('<ContractCode>A&amp;B&lt;1&gt;</ContractCode>');
    expect(xml).toContain('&quot;Q&quot;&amp;&apos;R&apos;');
    expect(textOf(xml, 'ContractCode')).toBe('A&B<1>');
    expect(textOf(xml, 'AgreementNumber')).toBe(`"Q"&'R'`);
    expect(textOf(xml, 'Surname')).toBe(`O'Коннор`);
    expect(textOf(xml, 'FirstName')).toBe('Анна "Мария"');
    expect(textOf(xml, 'FathersName')).toBe('Ивановна & Co');
    expect(textOf(xml, 'StreetName')).toBe('ул. "Абая" <угол>');
  });

  test('escapeXml refuses what XML 1.0 cannot hold', () => {
    expect(escapeXml('a\tb\nc')).toBe('a&#9;b&#10;c');
    expect(() => escapeXml('bell\u0007')).toThrow(/not allowed in XML/);
  });

  test('the written XML parses back to the same values', () => {
    const rec = mapOk(sampleDossier());
    const c = parse(writeContractXml(rec)).Records.Contract;
    expect(c['@operation']).toBe('1');
    expect(c.General.ContractStatus['@id']).toBe(rec.general.contractStatusId);
    expect(c.Type.Credit.RecordsList.Record['@accountingDate']).toBe('2024-06-30');
    expect(c.Type.Credit.RecordsList.Record.OverdueAmount).toEqual({ '@currency': 'KZT', '#': '125000.50' });
  });
});

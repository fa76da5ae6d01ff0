/** The logger's redaction (observability/logger.ts): by field name at any depth, by value shape in every string, errors with causes, cycles. */
import { createLogger, isSensitiveField, logLine, maskPersonalText, redact } from '../../observability/logger';
import { temporalSdkLogger } from '../../observability/temporal-logger';

const IIN = '900101300007';
const BIN = '150340012345';
const IBAN = 'KZ86125KZT5004100100';
const NAME = 'Иванова Айгуль Серикова';

/** Every line the logger writes, parsed, and the raw text of all of them. */
function capture(component = 'test') {
  const lines: string[] = [];
  const logger = createLogger(component, 'debug', {}, (l) => lines.push(l));
  return { logger, lines, text: () => lines.join('\n'), parsed: () => lines.map((l) => JSON.parse(l)) };
}

/** An object nested `depth` levels deep with the personal data at the bottom. */
function nested(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { level: v };
  return v;
}

describe('maskPersonalText', () => {
  it.each([
    ['an IIN', `client ${IIN} unknown`, 'client <IIN/BIN> unknown'],
    ['a BIN glued to words', `bin:${BIN}.`, 'bin:<IIN/BIN>.'],
    ['a KZ IBAN', `account ${IBAN} closed`, 'account <IBAN> closed'],
    ['a lower-case IBAN', IBAN.toLowerCase(), '<IBAN>'],
    ['an IBAN printed in groups', 'KZ86 125K ZT50 0410 0100', '<IBAN>'],
    ['a derived IBAN holding an IIN', `KZ12996${IIN}1`, '<IBAN>'],
    [
      'a quoted ABS answer',
      `unexpected answer {"iinbin":"${IIN}","fullname":"${NAME}","sectecon":9}`,
      'unexpected answer {"iinbin":"***","fullname":"***","sectecon":9}',
    ],
    ['a quoted name with an escaped quote', `{"subjectName": "ТОО \\"Нур\\" ${NAME}"}`, '{"subjectName": "***"}'],
    ['a query string', `GET /abs/client?iinbin=${IIN}&fullname=Иванов failed`, 'GET /abs/client?iinbin=***&fullname=*** failed'],
    [
      'a JSON payload in the SQL of a database error',
      `insert into "loan_outbox" ("payload") values ('{"iban":"${IBAN}","fullname":"${NAME}","iinbin":"${IIN}"}') - SQLITE_CONSTRAINT: UNIQUE`,
      `insert into "loan_outbox" ("payload") values ('{"iban":"***","fullname":"***","iinbin":"***"}') - SQLITE_CONSTRAINT: UNIQUE`,
    ],
    ['JSON quoted inside a JSON string', `{"payload":"{\\"fullname\\":\\"${NAME}\\",\\"debt\\":1}"}`, `{"payload":"{\\"fullname\\":\\"***\\",\\"debt\\":1}"}`],
    [
      'a GKB record quoted from its XML',
      `<FirstName><Text language="RU">Айгуль</Text></FirstName><Surname><Text language="RU">Иванова</Text></Surname><FathersName><Text language="RU">Сериковна</Text></FathersName>`,
      '<FirstName>***</FirstName><Surname>***</Surname><FathersName>***</FathersName>',
    ],
    [
      'a GKB answer naming the subject',
      `<ns2:subjectName>${NAME}</ns2:subjectName><result>ok</result>`,
      '<ns2:subjectName>***</ns2:subjectName><result>ok</result>',
    ],
    ["V8's quoted JSON snippet", `Unexpected token 'И', "Иванов Ива"... is not valid JSON`, "Unexpected token 'И', (text omitted) is not valid JSON"],
  ])('masks %s', (_label, text, expected) => {
    expect(maskPersonalText(text)).toBe(expected);
  });

  it.each([
    'payment demand PTP00000000001 issued',
    'contract KD0000000001',
    'a 13-digit number 1234567890123 and an 11-digit 12345678901 are no IIN',
    'HTTP 503 after 10000 ms',
    'fileName=K2_20260101_0001.xml',
  ])('keeps %j', (text) => {
    expect(maskPersonalText(text)).toBe(text);
  });
});

describe('isSensitiveField', () => {
  it.each([
    'iin',
    'IINBIN',
    'iin_bin',
    'fullname',
    'fullName',
    'subjectName',
    'name',
    'accountName',
    'surname',
    'firstName',
    'fathersName',
    'nameParts',
    'addresses',
    'iban',
    'ibans',
    'password',
    'GKB_PASSWORD',
    'authorization',
    'x-api-key',
    'codecToken',
    'payloadKeys',
  ])('%s is sensitive', (k) => {
    expect(isSensitiveField(k)).toBe(true);
  });
  it.each(['contractNumber', 'reference', 'fileName', 'packageName', 'workflowId', 'stage', 'err', 'httpStatus'])('%s is not', (k) => {
    expect(isSensitiveField(k)).toBe(false);
  });
});

describe('redact', () => {
  it('masks sensitive fields and shapes at any depth (the old redaction stopped at depth 4 and let the rest through)', () => {
    for (const depth of [0, 3, 5, 10, 50, 500]) {
      const out = JSON.stringify(redact(nested(depth, { fullname: NAME, note: `iin ${IIN}`, iban: IBAN })));
      expect(out).not.toContain(NAME);
      expect(out).not.toContain(IIN);
      expect(out).not.toContain(IBAN);
      expect(out).toContain('"fullname":"***"');
      expect(out).toContain('iin <IIN/BIN>');
    }
  });

  it('masks inside arrays, maps, sets and keys', () => {
    const out = JSON.stringify(
      redact({ loans: [[{ iinbin: IIN }], { subjectName: NAME }], byIin: new Map([[IIN, { fullName: NAME }]]), seen: new Set([IBAN]), [IIN]: 1 }),
    );
    expect(out).not.toContain(IIN);
    expect(out).not.toContain(NAME);
    expect(out).not.toContain(IBAN);
  });

  it('masks a 12-digit number (an IIN that lost its text form) but keeps other numbers', () => {
    expect(redact({ client: Number(IIN), big: BigInt(IIN), count: 12, at: 1_764_547_200_000 })).toEqual({
      client: '<IIN/BIN>',
      big: '<IIN/BIN>',
      count: 12,
      at: 1_764_547_200_000,
    });
  });

  it('writes errors with their own fields and their cause chain, personal data masked', () => {
    const root = Object.assign(new Error(`ABS answered for ${IIN}`), { code: 'E_ABS', details: [{ fullname: NAME, iban: IBAN }] });
    const mid = new Error('client check failed', { cause: root });
    const top = new TypeError(`case of ${IBAN} failed`, { cause: mid });
    const out = redact({ err: top }) as { err: Record<string, any> };
    expect(out.err).toMatchObject({
      name: 'TypeError',
      message: 'case of <IBAN> failed',
      cause: {
        name: 'Error',
        message: 'client check failed',
        cause: { message: 'ABS answered for <IIN/BIN>', code: 'E_ABS', details: [{ fullname: '***', iban: '***' }] },
      },
    });
    expect(JSON.stringify(out)).not.toMatch(new RegExp(`${IIN}|${NAME}|${IBAN}`));
  });

  it('ends on cycles, in objects and in error causes, without hanging', () => {
    const a: Record<string, unknown> = { iinbin: IIN };
    a.self = a;
    a.list = [a, { back: a }];
    const e1 = new Error(`one ${IIN}`);
    const e2 = new Error('two', { cause: e1 });
    (e1 as { cause?: unknown }).cause = e2;
    const out = JSON.stringify(redact({ a, e1 }));
    expect(out).toContain('[cycle]');
    expect(out).not.toContain(IIN);
  });

  it('keeps the same object twice side by side (no cycle)', () => {
    const shared = { stage: 'received' };
    expect(redact({ a: shared, b: shared })).toEqual({ a: { stage: 'received' }, b: { stage: 'received' } });
  });

  it('writes dates as ISO text, bytes as their length, and follows toJSON', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    expect(redact({ at, body: Buffer.from(`{"iinbin":"${IIN}"}`), wrapped: { toJSON: () => ({ fullname: NAME, note: IIN }) } })).toEqual({
      at: '2026-01-02T03:04:05.000Z',
      body: '[25 bytes]',
      wrapped: { fullname: '***', note: '<IIN/BIN>' },
    });
  });

  it('cuts long arrays and says how many were left out', () => {
    const out = redact(Array.from({ length: 25 }, (_, i) => i)) as unknown[];
    expect(out).toHaveLength(21);
    expect(out[20]).toBe('[5 more]');
  });
});

describe('createLogger', () => {
  it('masks the message, base fields, fields and errors', () => {
    const { logger, text, parsed } = capture();
    logger
      .child({ iinbin: IIN, contractNumber: 'KD0000000001' })
      .error(`client ${IIN} (${IBAN}) failed`, { err: new Error(`{"fullname":"${NAME}"}`), answer: { client: { fullname: NAME } } });
    expect(text()).not.toMatch(new RegExp(`${IIN}|${NAME}|${IBAN}`));
    expect(parsed()[0]).toMatchObject({
      level: 'error',
      component: 'test',
      msg: 'client <IIN/BIN> (<IBAN>) failed',
      iinbin: '***',
      contractNumber: 'KD0000000001',
      err: { name: 'Error', message: '{"fullname":"***"}' },
    });
  });

  it('logs a note instead of fields it cannot read, never their clear text', () => {
    const { logger, parsed } = capture();
    const unreadable = {
      get iban(): string {
        throw new Error('no');
      },
      get note(): string {
        throw new Error(IIN);
      },
    };
    logger.info('odd fields', { unreadable });
    expect(parsed()[0]).toMatchObject({ msg: 'odd fields', fields: '[not loggable: unreadable]' });
    const deep = nested(100_000, { iinbin: IIN });
    expect(() => logger.info('deep fields', { deep })).not.toThrow();
    expect(parsed()[1]).toMatchObject({ msg: 'deep fields', fields: '[not loggable: too deep]' });
  });

  it('filters by level', () => {
    const lines: string[] = [];
    const logger = createLogger('test', 'warn', {}, (l) => lines.push(l));
    logger.info('quiet');
    logger.warn('loud');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['loud']);
  });

  it('logLine is one JSON line', () => {
    const line = logLine('info', 'c', `m ${IIN}`, { iban: IBAN });
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toMatchObject({ level: 'info', component: 'c', msg: 'm <IIN/BIN>', iban: '***' });
  });
});

describe('temporalSdkLogger', () => {
  it("routes the SDK's log calls (an activity failure with its error) through the redaction", () => {
    const { logger, text, parsed } = capture('worker');
    const sdk = temporalSdkLogger(logger);
    sdk.warn('Activity failed', { activityType: 'checkClient', error: Object.assign(new Error(`client ${IIN}`), { details: [{ subjectName: NAME }] }) });
    sdk.log('ERROR', `workflow ${IBAN}`);
    sdk.trace('fine print');
    expect(text()).not.toMatch(new RegExp(`${IIN}|${NAME}|${IBAN}`));
    expect(parsed().map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'Activity failed'],
      ['error', 'workflow <IBAN>'],
      ['debug', 'fine print'],
    ]);
  });
});

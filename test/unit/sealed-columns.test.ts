import { randomBytes } from 'node:crypto';
import { createColumnSealer, IN_CLEAR_COLUMNS, SealedValueError } from '../../db/sealed';

const OLD = { id: 'k-2025', key: randomBytes(32) };
const NEW = { id: 'k-2026', key: randomBytes(32) };
const loan = JSON.stringify({ iinbin: '850101300123', fullname: 'Иванов Иван Иванович', iban: 'KZ86125KZT5004100100' });

test('a sealed value holds no plaintext, names its key, and opens to the same text; each seal is fresh', () => {
  const sealer = createColumnSealer([NEW, OLD]);
  const a = sealer.seal('loan_outbox.payload', loan);
  const b = sealer.seal('loan_outbox.payload', loan);
  expect(a).toMatch(/^k2s1:k-2026:[A-Za-z0-9+/]+=*$/);
  expect(a).not.toBe(b);
  for (const clear of ['850101300123', 'Иванов', 'KZ86']) expect(a.includes(clear)).toBe(false);
  expect(sealer.open('loan_outbox.payload', a)).toBe(loan);
  expect(sealer.sealing).toBe(true);
});

test('rotation: a value sealed with an older key opens while that key is configured, and not after', () => {
  const sealedWithOld = createColumnSealer([OLD]).seal('gkb_records.record', loan);
  expect(createColumnSealer([NEW, OLD]).open('gkb_records.record', sealedWithOld)).toBe(loan);
  expect(() => createColumnSealer([NEW]).open('gkb_records.record', sealedWithOld)).toThrow(
    new SealedValueError('gkb_records.record is sealed with key "k-2025", which is not among the configured payload keys (K2_PAYLOAD_KEYS)'),
  );
});

test('a value moved to another column, or damaged, does not open: an error, never other text', () => {
  const sealer = createColumnSealer([NEW]);
  const sealed = sealer.seal('loan_outbox.payload', loan);
  expect(() => sealer.open('gkb_records.record', sealed)).toThrow(/gkb_records.record: sealed value is damaged or belongs to another column/);
  const flipped = sealed.slice(0, -6) + (sealed.at(-6) === 'A' ? 'B' : 'A') + sealed.slice(-5);
  expect(() => sealer.open('loan_outbox.payload', flipped)).toThrow(SealedValueError);
  expect(() => sealer.open('loan_outbox.payload', 'k2s1:k-2026:AAAA')).toThrow(/truncated/);
});

test('text written before sealing reads as it is; without keys (the demo) nothing is sealed', () => {
  expect(createColumnSealer([NEW]).open('loan_outbox.payload', loan)).toBe(loan);
  expect(IN_CLEAR_COLUMNS.seal('loan_outbox.payload', loan)).toBe(loan);
  expect(IN_CLEAR_COLUMNS.sealing).toBe(false);
  const sealed = createColumnSealer([NEW]).seal('loan_outbox.payload', loan);
  expect(() => IN_CLEAR_COLUMNS.open('loan_outbox.payload', sealed)).toThrow(/not among the configured payload keys/);
});

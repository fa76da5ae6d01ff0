/** The payload codec (temporal/codec.ts), its keys (temporal/keys.ts) and the connection factory's pure parts (temporal/connection.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { AesGcmPayloadCodec, checkPayloadKeys, ENCRYPTED_ENCODING, KEY_ID_METADATA, PayloadDecryptionError } from '../../temporal/codec';
import { ensureDemoKeyFile, formatPayloadKeys, newPayloadKey } from '../../temporal/keys';
import { FAILURE_CONVERTER_PATH, temporalDataConverter, temporalTlsConfig } from '../../temporal/connection';

const IIN = '870412300415';
const NAME = 'Жанар Сапарова';
const loan = { contract: 'KZ-0001', borrower: { iin: IIN, name: NAME }, iban: 'KZ86125KZT5004100100' };

const wire = (p: Payload): Buffer => Buffer.from(temporal.api.common.v1.Payload.encode(p).finish());
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const keyA = newPayloadKey('k2-2026-01');
const keyB = newPayloadKey('k2-2026-07');

describe('AesGcmPayloadCodec', () => {
  test('round trip: the encoded payload holds no plaintext, names its key, and decodes to the original', async () => {
    const codec = new AesGcmPayloadCodec([keyA]);
    const original = defaultPayloadConverter.toPayload(loan);
    const [encoded] = await codec.encode([original]);
    expect(text(encoded.metadata?.[METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(text(encoded.metadata?.[KEY_ID_METADATA])).toBe('k2-2026-01');
    const bytes = wire(encoded);
    for (const clear of [IIN, NAME, loan.iban, 'json/plain', 'borrower']) expect(bytes.includes(Buffer.from(clear, 'utf8'))).toBe(false);
    const [decoded] = await codec.decode([encoded]);
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual(loan);
    expect(text(decoded.metadata?.[METADATA_ENCODING_KEY])).toBe('json/plain');
  });

  test('a fresh nonce per payload: the same payload twice gives two different ciphertexts', async () => {
    const codec = new AesGcmPayloadCodec([keyA]);
    const p = defaultPayloadConverter.toPayload(loan);
    const [one, two] = await codec.encode([p, p]);
    expect(Buffer.from(one.data!).equals(Buffer.from(two.data!))).toBe(false);
    expect(Buffer.from(one.data!).subarray(0, 12).equals(Buffer.from(two.data!).subarray(0, 12))).toBe(false);
  });

  test('rotation: with a new first key, payloads of the old key still decode and new ones are encrypted with the new key', async () => {
    const before = new AesGcmPayloadCodec([keyA]);
    const after = new AesGcmPayloadCodec([keyB, keyA]);
    const [old] = await before.encode([defaultPayloadConverter.toPayload(loan)]);
    expect(defaultPayloadConverter.fromPayload((await after.decode([old]))[0])).toEqual(loan);
    const [fresh] = await after.encode([defaultPayloadConverter.toPayload(loan)]);
    expect(text(fresh.metadata?.[KEY_ID_METADATA])).toBe('k2-2026-07');
    expect(defaultPayloadConverter.fromPayload((await after.decode([fresh]))[0])).toEqual(loan);
  });

  test('an unknown key id is a clear error naming the id (and no key material)', async () => {
    const [fresh] = await new AesGcmPayloadCodec([keyB]).encode([defaultPayloadConverter.toPayload(loan)]);
    const err = await new AesGcmPayloadCodec([keyA]).decode([fresh]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect((err as Error).message).toContain('"k2-2026-07"');
    expect((err as Error).message).toContain('k2-2026-01');
    expect((err as Error).message).not.toContain(keyA.key.toString('base64'));
  });

  test('payloads written before the codec existed pass through as they are', async () => {
    const codec = new AesGcmPayloadCodec([keyA]);
    const plain = [
      defaultPayloadConverter.toPayload(loan),
      defaultPayloadConverter.toPayload(undefined),
      defaultPayloadConverter.toPayload(new Uint8Array([1, 2, 3])),
    ];
    const decoded = await codec.decode(plain);
    expect(decoded).toEqual(plain);
    expect(defaultPayloadConverter.fromPayload(decoded[0])).toEqual(loan);
  });

  test('altered ciphertext, a payload relabelled with another known key id, and other key material under the same id all fail', async () => {
    const codec = new AesGcmPayloadCodec([keyA, keyB]);
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(loan)]);
    const data = Buffer.from(encoded.data!);
    data[20] ^= 0xff;
    await expect(codec.decode([{ ...encoded, data }])).rejects.toThrow(/does not authenticate/);
    const relabelled = { ...encoded, metadata: { ...encoded.metadata, [KEY_ID_METADATA]: Buffer.from('k2-2026-07') } };
    await expect(codec.decode([relabelled])).rejects.toThrow(/"k2-2026-07" does not authenticate/);
    await expect(new AesGcmPayloadCodec([newPayloadKey('k2-2026-01')]).decode([encoded])).rejects.toThrow(PayloadDecryptionError);
    await expect(codec.decode([{ ...encoded, data: new Uint8Array(5) }])).rejects.toThrow(/too short/);
    await expect(codec.decode([{ metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING) }, data: encoded.data }])).rejects.toThrow(
      /no encryption-key-id/,
    );
  });
});

describe('checkPayloadKeys', () => {
  test.each([
    [[], /no payload key/],
    [[{ id: 'a', key: Buffer.alloc(16) }], /"a" has 16 bytes, AES-256 needs 32/],
    [[newPayloadKey('a'), newPayloadKey('a')], /"a" is given twice/],
    [[newPayloadKey('with space')], /key id "with space"/],
  ])('refuses %#', (keys, message) => {
    expect(() => checkPayloadKeys(keys)).toThrow(message);
  });
});

describe('temporalDataConverter', () => {
  test('without keys (the demo only): plain payloads, the default failure converter', () => {
    expect(temporalDataConverter({ payloadKeys: [] })).toEqual({});
  });

  test('with keys: the codec and the failure converter that encodes messages and stack traces', () => {
    const dc = temporalDataConverter({ payloadKeys: [keyA] });
    expect(dc.payloadCodecs?.[0]).toBeInstanceOf(AesGcmPayloadCodec);
    expect(dc.failureConverterPath).toBe(FAILURE_CONVERTER_PATH);
    expect(require(FAILURE_CONVERTER_PATH).failureConverter.options).toEqual({ encodeCommonAttributes: true });
  });
});

describe('temporalTlsConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-tls-'));
    for (const f of ['ca.pem', 'client.pem', 'client.key']) fs.writeFileSync(path.join(dir, f), `-----BEGIN ${f}-----\n`);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('no TLS: a plain connection', () => {
    expect(temporalTlsConfig(undefined)).toBeUndefined();
  });

  test('TLS without files: the system CAs', () => {
    expect(temporalTlsConfig({})).toEqual({});
  });

  test('CA, client pair and server name are read into the SDK options', () => {
    const tls = temporalTlsConfig({
      caFile: path.join(dir, 'ca.pem'),
      certFile: path.join(dir, 'client.pem'),
      keyFile: path.join(dir, 'client.key'),
      serverName: 'temporal.k2.bank',
    });
    expect(tls?.serverNameOverride).toBe('temporal.k2.bank');
    expect(text(tls?.serverRootCACertificate)).toContain('ca.pem');
    expect(text(tls?.clientCertPair?.crt)).toContain('client.pem');
    expect(text(tls?.clientCertPair?.key)).toContain('client.key');
  });

  test('a certificate without its key, or a missing file, is a clear start-up error', () => {
    expect(() => temporalTlsConfig({ certFile: path.join(dir, 'client.pem') })).toThrow(/TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together/);
    expect(() => temporalTlsConfig({ caFile: path.join(dir, 'missing.pem') })).toThrow(/TEMPORAL_TLS_CA_FILE ".*missing.pem" cannot be read \(ENOENT\)/);
  });
});

describe('demo key file', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-keys-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('created on the first start (mode 0600, one demo-<date> key of 32 bytes), reused afterwards', () => {
    const first = ensureDemoKeyFile(dir, new Date('2026-12-01T09:00:00Z'));
    expect(first.created).toBe(true);
    expect(fs.statSync(first.file).mode & 0o777).toBe(0o600);
    const content = fs.readFileSync(first.file, 'utf8');
    expect(content).toMatch(/^demo-2026-12-01:[A-Za-z0-9+/]{43}=\n$/);
    expect(Buffer.from(content.trim().split(':')[1], 'base64')).toHaveLength(32);
    const again = ensureDemoKeyFile(dir, new Date('2026-12-02T09:00:00Z'));
    expect(again).toEqual({ file: first.file, created: false });
    expect(fs.readFileSync(first.file, 'utf8')).toBe(content);
  });

  test('formatPayloadKeys writes the K2_PAYLOAD_KEYS format, the encrypting key first', () => {
    expect(formatPayloadKeys([keyB, keyA])).toBe(`k2-2026-07:${keyB.key.toString('base64')},k2-2026-01:${keyA.key.toString('base64')}`);
  });
});

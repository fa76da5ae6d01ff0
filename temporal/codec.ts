/**
 * The payload codec of every K2 process that talks to Temporal: AES-256-GCM, so Temporal's database,
 * its history exports and the Web UI (without the codec server) hold only ciphertext of loans, IINs,
 * names and IBANs. Modelled on Temporal's encryption-codec sample.
 *
 * Each encoded payload carries `encoding: binary/encrypted` and the id of the key that encrypted it
 * (`encryption-key-id`); its data is nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes) of the original
 * payload serialized as a protobuf message. The key id is authenticated too (AAD), so a payload
 * relabelled with another key id fails instead of decrypting under the wrong name.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { PayloadKey } from '../config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** One payload key: its id (stored in every payload it encrypts) and 32 bytes of key material (config/index.ts reads them). */
export type { PayloadKey };

/** A payload that cannot be decrypted: its key id is unknown, or its bytes do not authenticate. */
export class PayloadDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadDecryptionError';
  }
}

const utf8 = (bytes: Uint8Array | null | undefined): string | undefined => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** The keys a codec can be built from: at least one, unique ids, 32 bytes each. */
export function checkPayloadKeys(keys: readonly PayloadKey[]): void {
  if (keys.length === 0) throw new Error('payload codec: no payload key (K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE)');
  const seen = new Set<string>();
  for (const { id, key } of keys) {
    if (!/^[\w.-]{1,64}$/.test(id)) throw new Error(`payload codec: key id "${id}" must be 1 to 64 of A-Z a-z 0-9 . _ -`);
    if (seen.has(id)) throw new Error(`payload codec: key id "${id}" is given twice`);
    if (key.length !== KEY_BYTES) throw new Error(`payload codec: key "${id}" has ${key.length} bytes, AES-256 needs ${KEY_BYTES}`);
    seen.add(id);
  }
}

/** The first key encrypts; every key decrypts (rotation: put the new key first, keep the old ones). */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly encryptingKey: PayloadKey;
  private readonly keysById: Map<string, Buffer>;

  constructor(keys: readonly PayloadKey[]) {
    checkPayloadKeys(keys);
    this.encryptingKey = keys[0];
    this.keysById = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  private encrypt(payload: Payload): Payload {
    const { id, key } = this.encryptingKey;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(id, 'utf8') }, data };
  }

  private decrypt(payload: Payload): Payload {
    // Payloads written before the codec existed (or by a process without it) carry no encrypted encoding: as they are.
    if (utf8(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const id = utf8(payload.metadata?.[KEY_ID_METADATA]);
    if (!id) throw new PayloadDecryptionError(`an encrypted payload has no ${KEY_ID_METADATA}`);
    const key = this.keysById.get(id);
    if (!key)
      throw new PayloadDecryptionError(
        `a payload is encrypted with key "${id}", which is not among the payload keys (${[...this.keysById.keys()].join(', ')}): add it to K2_PAYLOAD_KEYS`,
      );
    const data = Buffer.from(payload.data ?? []);
    if (data.length < NONCE_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`an encrypted payload of key "${id}" is too short (${data.length} bytes)`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(`a payload of key "${id}" does not authenticate: other key material under the same id, or altered data`);
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}

/**
 * Personal data in K2's own tables, sealed with the payload keys (README "Personal data and
 * connections"): the loans EKO sent (loan_outbox.payload) and the GKB records (gkb_records.record).
 * The first key seals, any key opens; without keys (the demo only) text stays as it is.
 *
 * Format: `k2s1:<key id>:<base64 of nonce (12) | ciphertext | tag (16)>`, AES-256-GCM under a key
 * derived per key and purpose (HKDF-SHA256, "k2 db column v1"), the column's name as associated
 * data, so a value moved to another column does not open. A value without the prefix is text
 * written before sealing (JSON starts with "{"), read as it is.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { PayloadKey } from '../config';

const PREFIX = 'k2s1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = Buffer.from('k2 db column v1', 'ascii');

/** The columns whose values are sealed: also the associated data of each value. */
export type SealedColumn = 'loan_outbox.payload' | 'gkb_records.record';

export interface ColumnSealer {
  /** True when values are sealed (keys given). */
  readonly sealing: boolean;
  seal(column: SealedColumn, text: string): string;
  open(column: SealedColumn, stored: string): string;
}

/** A sealed value that cannot be opened: damaged, moved from another column, or under a key not configured. */
export class SealedValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedValueError';
  }
}

/** A sealed value names a key that is not configured (retired too early, or a process without it): fixable by configuration. */
export class SealedKeyUnknownError extends SealedValueError {
  constructor(
    column: SealedColumn,
    public readonly keyId: string,
  ) {
    super(`${column} is sealed with key ${JSON.stringify(keyId.slice(0, 64))}, which is not among the configured payload keys (K2_PAYLOAD_KEYS)`);
    this.name = 'SealedKeyUnknownError';
  }
}

/** Seals with keys[0], opens with any of keys; with no keys, values pass as they are. */
export function createColumnSealer(keys: readonly PayloadKey[]): ColumnSealer {
  const derived = new Map(keys.map((k) => [k.id, Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), HKDF_INFO, 32))]));
  const current = keys[0];
  return {
    sealing: current !== undefined,
    seal(column, text) {
      if (!current) return text;
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', derived.get(current.id)!, nonce);
      cipher.setAAD(Buffer.from(column, 'utf8'));
      const sealed = Buffer.concat([nonce, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${PREFIX}${current.id}:${sealed.toString('base64')}`;
    },
    open(column, stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      const idEnd = stored.indexOf(':', PREFIX.length);
      const keyId = stored.slice(PREFIX.length, idEnd);
      const key = idEnd > 0 ? derived.get(keyId) : undefined;
      if (!key) throw new SealedKeyUnknownError(column, keyId);
      const bytes = Buffer.from(stored.slice(idEnd + 1), 'base64');
      if (bytes.length < NONCE_BYTES + TAG_BYTES) throw new SealedValueError(`${column}: sealed value is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(column, 'utf8'));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        throw new SealedValueError(`${column}: sealed value is damaged or belongs to another column`);
      }
    },
  };
}

/** No keys: the tests' and the demo's default. */
export const IN_CLEAR_COLUMNS = createColumnSealer([]);

/**
 * Payload keys on disk: the text format of K2_PAYLOAD_KEYS / K2_PAYLOAD_KEYS_FILE
 * ("keyId:base64-of-32-bytes,…", the first encrypts) and the demo's key file in the data folder.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PayloadKey } from './codec';

export const DEMO_KEY_FILE = 'payload-keys';

/** A fresh random key (32 bytes, AES-256). */
export function newPayloadKey(id: string): PayloadKey {
  return { id, key: randomBytes(32) };
}

/** Keys in the K2_PAYLOAD_KEYS format: "id:base64,…", the encrypting key first. */
export function formatPayloadKeys(keys: readonly PayloadKey[]): string {
  return keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');
}

/**
 * The demo's key file `<dataDir>/payload-keys` (mode 0600): created with one key `demo-<date>` on
 * the first start, reused afterwards, so Temporal's database written at an earlier start still
 * decodes. Returns its path and whether it was created now.
 */
export function ensureDemoKeyFile(dataDir: string, today: Date = new Date()): { file: string; created: boolean } {
  const file = path.join(dataDir, DEMO_KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  const text = `${formatPayloadKeys([newPayloadKey(`demo-${today.toISOString().slice(0, 10)}`)])}\n`;
  try {
    // 'wx': never overwrites a key another start wrote (its payloads would no longer decode).
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
    return { file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { file, created: false };
  }
}

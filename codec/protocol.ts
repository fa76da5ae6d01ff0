/**
 * Temporal's Remote Codec protocol on the wire: `{ "payloads": [{ "metadata": { key: base64 }, "data": base64 }] }`,
 * the protobuf JSON form of Payloads (bytes as base64), in and out of POST /encode and /decode.
 */
import type { Payload } from '@temporalio/common';

/** A request body that is not Payloads JSON: answered 400 with this message (it never quotes the body). */
export class CodecRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecRequestError';
  }
}

export interface WirePayload {
  metadata?: Record<string, string>;
  data?: string;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function bytes(text: unknown, where: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64.test(text)) throw new CodecRequestError(`${where}: expected base64 text`);
  return Buffer.from(text, 'base64');
}

function payloadFromWire(item: unknown, index: number): Payload {
  if (!item || typeof item !== 'object' || Array.isArray(item)) throw new CodecRequestError(`payloads[${index}]: expected an object with metadata and data`);
  const { metadata, data } = item as WirePayload;
  if (metadata !== undefined && (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata))) {
    throw new CodecRequestError(`payloads[${index}].metadata: expected an object of base64 values`);
  }
  const decodedMetadata: Record<string, Uint8Array> = {};
  for (const [key, value] of Object.entries(metadata ?? {})) decodedMetadata[key] = bytes(value, `payloads[${index}].metadata.${key}`);
  return { metadata: decodedMetadata, data: data === undefined ? new Uint8Array() : bytes(data, `payloads[${index}].data`) };
}

/** The payloads of a request body (already parsed JSON). */
export function payloadsFromWire(body: unknown): Payload[] {
  if (!body || typeof body !== 'object' || !Array.isArray((body as { payloads?: unknown }).payloads)) {
    throw new CodecRequestError('expected a JSON object { "payloads": [ { "metadata": {…}, "data": "…" } ] }');
  }
  return (body as { payloads: unknown[] }).payloads.map(payloadFromWire);
}

/** The answer body for payloads. */
export function payloadsToWire(payloads: Payload[]): { payloads: WirePayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

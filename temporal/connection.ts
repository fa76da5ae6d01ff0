/**
 * One way to Temporal for every K2 process (API and its dispatcher, worker, scripts, benchmarks,
 * test helpers): the same data converter (payload codec, encoded failures) and the same TLS.
 */
import fs from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { AesGcmPayloadCodec, type PayloadKey } from './codec';

/** TLS of the Temporal connection: server root CA, client certificate pair (mTLS), server name override. */
export interface TemporalTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  serverName?: string;
}

/** What a connection needs of the configuration (config/index.ts's Config has it). */
export interface TemporalSettings {
  temporal: { address: string; namespace: string; tls?: TemporalTls };
  payloadKeys: readonly PayloadKey[];
}

/** Loaded by path: Temporal also bundles it into the workflow code. Resolves from the sources and from dist/ alike. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/**
 * The data converter of every client and worker. Without keys (only the demo may have none, config
 * refuses it elsewhere) payloads stay plain; with keys every payload and failure text is encrypted.
 */
export function temporalDataConverter(settings: Pick<TemporalSettings, 'payloadKeys'>): DataConverter {
  if (settings.payloadKeys.length === 0) return {};
  return { payloadCodecs: [new AesGcmPayloadCodec(settings.payloadKeys)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** For start-up logs: the id of the key that encrypts (never key material), or that payloads stay plain. */
export function encryptingKeyId(settings: Pick<TemporalSettings, 'payloadKeys'>): string {
  return settings.payloadKeys[0]?.id ?? 'none (demo: plain payloads)';
}

/** TLS options for Connection and NativeConnection; undefined: a plain connection. Reads the files now, so a wrong path fails at start-up. */
export function temporalTlsConfig(tls: TemporalTls | undefined): TLSConfig | undefined {
  if (!tls) return undefined;
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile))
    throw new Error('Temporal TLS: TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together (a client certificate needs its key)');
  return {
    ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
    ...(tls.caFile ? { serverRootCACertificate: readPem(tls.caFile, 'TEMPORAL_TLS_CA_FILE') } : {}),
    ...(tls.certFile && tls.keyFile
      ? { clientCertPair: { crt: readPem(tls.certFile, 'TEMPORAL_TLS_CERT_FILE'), key: readPem(tls.keyFile, 'TEMPORAL_TLS_KEY_FILE') } }
      : {}),
  };
}

function readPem(file: string, key: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`Temporal TLS: ${key} "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** A client on an existing connection, with K2's data converter. */
export function temporalClient(settings: TemporalSettings, connection: Connection): Client {
  return new Client({ connection, namespace: settings.temporal.namespace, dataConverter: temporalDataConverter(settings) });
}

/** A connection to Temporal with the configured TLS (give it to temporalClient for K2's data converter). */
export function openConnection(settings: TemporalSettings): Promise<Connection> {
  return Connection.connect({ address: settings.temporal.address, tls: temporalTlsConfig(settings.temporal.tls) });
}

/** A connected client (close it with `client.connection.close()`). */
export async function connectClient(settings: TemporalSettings): Promise<Client> {
  return temporalClient(settings, await openConnection(settings));
}

/** A client whose connection opens at its first call: the API answers (and queues loans) while Temporal is still starting. */
export function lazyClient(settings: TemporalSettings): Client {
  return temporalClient(settings, Connection.lazy({ address: settings.temporal.address, tls: temporalTlsConfig(settings.temporal.tls) }));
}

/**
 * The native connection of a worker, with the same TLS as every client (temporal/connection.ts).
 * Apart from it so that client-only processes (the API) never load the worker's native runtime.
 * Its data converter goes into Worker.create: temporalDataConverter(config).
 */
import { NativeConnection, TransportError } from '@temporalio/worker';
import { temporalTlsConfig, type TemporalSettings } from './connection';

export function connectNative(settings: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: settings.temporal.address, tls: temporalTlsConfig(settings.temporal.tls) });
}

/** True when the worker's connection could not reach the server at all (refused, unreachable, timed out). */
export function isTemporalUnreachable(err: unknown): boolean {
  return err instanceof TransportError;
}

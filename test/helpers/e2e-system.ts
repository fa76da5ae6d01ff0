/**
 * The real system of one e2e test file (scripts/system.ts, processes from dist/), in its own temp
 * data folder: stopped, its Temporal connection closed and the folder removed after the file's tests,
 * whatever they left running. The system gets a test payload key (one per test file, kept across
 * restarts, so its earlier payloads still decode) and the helper's client decodes with it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { loadConfig, type PayloadKey } from '../../config';
import { freePorts, RunningSystem, startSystem, type Ports } from '../../scripts/system';
import { openConnection, temporalClient } from '../../temporal/connection';
import { formatPayloadKeys, newPayloadKey } from '../../temporal/keys';

/** A system whose answers come within seconds: EKO's statuses and GKB's batches; the API without auth. */
export const QUICK_ANSWERS_ENV: Readonly<Record<string, string>> = {
  K2_API_AUTH: 'none',
  EKO_SIM_STATUS_DELAY: '300ms',
  GKB_BATCH_INTERVAL: '10s',
  GKB_POLL_INITIAL: '2s',
  GKB_POLL_MAX: '5s',
  GKB_SIM_STEP: '300ms',
  GKB_SIM_PROCESSING: '1s',
};

export interface E2eSystem {
  /** The data folder (created before the file's tests). */
  readonly dataDir: string;
  /** The payload keys the system runs with (K2_PAYLOAD_KEYS), unless `env` of start() gives its own. */
  readonly payloadKeys: readonly PayloadKey[];
  system: RunningSystem | undefined;
  /** A client with K2's data converter (payload codec): read cases through it, not through a bare Client on `connection`. */
  client: Client | undefined;
  connection: Connection | undefined;
  /** Starts the system on `ports` (fresh free ones by default) with `env`, headless, and connects to its Temporal. */
  start(env: Record<string, string>, ports?: Ports): Promise<{ system: RunningSystem; client: Client; connection: Connection; ports: Ports }>;
  /** Closes the client's connection and stops the system (the data folder stays). */
  stop(): Promise<void>;
}

export function e2eSystem(dirPrefix: string): E2eSystem {
  let dataDir = '';
  const payloadKeys = [newPayloadKey('e2e-test')];
  const run: E2eSystem = {
    get dataDir() {
      return dataDir;
    },
    payloadKeys,
    system: undefined,
    client: undefined,
    connection: undefined,
    async start(env, ports) {
      const p = ports ?? (await freePorts());
      const withKeys = env.K2_PAYLOAD_KEYS || env.K2_PAYLOAD_KEYS_FILE ? env : { K2_PAYLOAD_KEYS: formatPayloadKeys(payloadKeys), ...env };
      const system = await startSystem({ dataDir, ports: p, env: withKeys, headless: true });
      run.system = system;
      // The configuration the system's processes read (their environment is this one over ours): same keys, same TLS.
      const config = loadConfig({ ...process.env, ...system.env });
      const connection = await openConnection(config);
      const client = temporalClient(config, connection);
      run.client = client;
      run.connection = connection;
      return { system, client, connection, ports: p };
    },
    async stop() {
      await run.connection?.close();
      run.client = undefined;
      run.connection = undefined;
      await run.system?.stop();
      run.system = undefined;
    },
  };
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  });
  afterAll(async () => {
    await run.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return run;
}

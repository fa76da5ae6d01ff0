/**
 * One topology of an e2e test file (scripts/topology.ts: `dev` or `cluster`, processes from dist/),
 * in its own temp data folder, with a test payload key kept across restarts (so earlier payloads
 * still decode) and K2's client on its Temporal (temporal/connection.ts: the payload codec). Each
 * start takes fresh free ports on the same data folder. After the file's tests (of the describe
 * block it is created in) the topology is stopped, whatever a test left running, and the folder removed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../../config';
import { createDb, type Db } from '../../db';
import { startTopology, type RunningTopology, type TopologyKind } from '../../scripts/topology';
import { openConnection, temporalClient } from '../../temporal/connection';
import { formatPayloadKeys, newPayloadKey } from '../../temporal/keys';

export interface RunningE2e {
  topology: RunningTopology;
  /** The configuration K2's processes read (their environment over ours). */
  config: Config;
  /** K2's client: read cases through it, not through a bare Client. */
  client: Client;
}

export interface E2eTopology {
  readonly kind: TopologyKind;
  readonly dataDir: string;
  /** The running topology, if any. */
  readonly current: RunningE2e | undefined;
  /** Starts the topology on the data folder with `env` and connects K2's client. */
  start(env: Record<string, string>): Promise<RunningE2e>;
  /** K2's database as its processes see it (opened at the first call, closed by stop()). */
  db(): Db;
  /** Closes the client and the database and stops every process (the data folder stays). */
  stop(): Promise<void>;
}

export function e2eTopology(kind: TopologyKind, dirPrefix: string): E2eTopology {
  let dataDir = '';
  let current: RunningE2e | undefined;
  let connection: Connection | undefined;
  let db: Db | undefined;
  const keys = formatPayloadKeys([newPayloadKey(`e2e-${kind}`)]);

  const run: E2eTopology = {
    kind,
    get dataDir() {
      return dataDir;
    },
    get current() {
      return current;
    },
    async start(env) {
      if (current) throw new Error(`the ${kind} topology runs already: stop it first`);
      const topology = await startTopology(kind, { dataDir, env: { K2_PAYLOAD_KEYS: keys, ...env } });
      try {
        const config = loadConfig({ ...process.env, ...topology.env });
        connection = await openConnection(config);
        current = { topology, config, client: temporalClient(config, connection) };
        return current;
      } catch (err) {
        await topology.stop();
        throw err;
      }
    },
    db() {
      if (!current) throw new Error(`the ${kind} topology does not run`);
      db ??= createDb(current.config.db);
      return db;
    },
    async stop() {
      // The database first: PostgreSQL stops with the cluster, and a pool left open would hold broken connections.
      await db?.destroy();
      db = undefined;
      await connection?.close();
      connection = undefined;
      const topology = current?.topology;
      current = undefined;
      await topology?.stop();
    },
  };
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  });
  afterAll(async () => {
    await run.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return run;
}

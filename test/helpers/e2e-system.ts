/**
 * The real system of one e2e test file (scripts/system.ts, processes from dist/), in its own temp
 * data folder: stopped, its Temporal connection closed and the folder removed after the file's tests,
 * whatever they left running.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { freePorts, RunningSystem, startSystem, type Ports } from '../../scripts/system';

export interface E2eSystem {
  /** The data folder (created before the file's tests). */
  readonly dataDir: string;
  system: RunningSystem | undefined;
  connection: Connection | undefined;
  /** Starts the system on `ports` (fresh free ones by default) with `env`, headless, and connects to its Temporal. */
  start(env: Record<string, string>, ports?: Ports): Promise<{ system: RunningSystem; connection: Connection; ports: Ports }>;
  /** Closes the connection and stops the system (the data folder stays). */
  stop(): Promise<void>;
}

export function e2eSystem(dirPrefix: string): E2eSystem {
  let dataDir = '';
  const run: E2eSystem = {
    get dataDir() {
      return dataDir;
    },
    system: undefined,
    connection: undefined,
    async start(env, ports) {
      const p = ports ?? (await freePorts());
      const system = await startSystem({ dataDir, ports: p, env, headless: true });
      run.system = system;
      const connection = await Connection.connect({ address: `127.0.0.1:${p.temporal}` });
      run.connection = connection;
      return { system, connection, ports: p };
    },
    async stop() {
      await run.connection?.close();
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

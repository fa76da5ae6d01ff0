/** The operator CLI run inside the test process, on the system's configuration, client and database (test/e2e/cli-*.test.ts). */
import type { Client } from '@temporalio/client';
import { runCli } from '../../cli/main';
import type { Config } from '../../config';
import type { Db } from '../../db';

export interface CliRun {
  code: number;
  out: string[];
  err: string[];
  json: () => any;
}

/** `parts` is read at each run: the tests set their system up in beforeAll. */
export function inProcessCli(parts: () => { env: Record<string, string>; config: Config; client: Client; db: Db }): (...argv: string[]) => Promise<CliRun> {
  return async (...argv) => {
    const { env, config, client, db } = parts();
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, {
      env,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      context: { config, client: async () => client, db: async () => db },
    });
    return { code, out, err, json: () => JSON.parse(out.join('\n')) };
  };
}

/**
 * The operator CLI's contract (`npm run k2 -- <command>`, README "Operator actions (at 3 a.m.)"):
 * every command is a plain object registered in cli/commands.ts; cli/main.ts finds it by its words,
 * parses its options strictly, prints its help, and gives it a context that connects lazily.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';

export interface CliContext {
  /** loadConfig(process.env), validated (K2_DEMO=true: the demo's defaults, cli/main.ts cliEnv). */
  config: Config;
  /** Lazily connected, K2's data converter (temporal/connection.ts); closed by the frame at exit. */
  client(): Promise<Client>;
  /** K2's database (db/index.ts openDb), lazily opened; closed by the frame at exit. */
  db(): Promise<Db>;
  /** --json given (global flag): machine-readable output on stdout. */
  json: boolean;
  /** One line to stdout. */
  out(line: string): void;
  /** One line to stderr. */
  err(line: string): void;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean; description: string }>;

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** The command's words, e.g. ['case', 'show']; the first is its group in `k2 --help`. */
  path: string[];
  /** One line, for the command list. */
  summary: string;
  /** E.g. 'case show <contract> [--json]'. */
  usage: string;
  /** Longer help text. */
  description?: string;
  /** Parsed with node:util parseArgs, strict: an unknown flag is a usage error. --json and --help are global. */
  options: OptionSpec;
  /** Returns the exit code (0 done, 1 failed; the frame uses 2 for usage and configuration errors, 3 when Temporal or the database cannot be reached). */
  run(args: { positionals: string[]; values: OptionValues }, ctx: CliContext): Promise<number>;
}

/** Wrong arguments: the frame prints it with the command's usage and exits 2. */
export class UsageError extends Error {}

/** Temporal or the database cannot be reached: the frame prints it (it names the address) and exits 3. */
export class ConnectionError extends Error {}

/** Exit codes of every command, for scripts. */
export const EXIT = { ok: 0, failed: 1, usage: 2, connection: 3 } as const;

#!/usr/bin/env node
/**
 * The operator CLI's entry: `npm run k2 -- <command>` or `npx k2 <command>` (README "Operator
 * actions (at 3 a.m.)"). Finds the command by its words, prints help without connecting anywhere,
 * loads the configuration like every K2 process and connects to Temporal and the database only when
 * the command asks. Exit codes: 0 done, 1 the command failed, 2 usage or configuration error, 3
 * Temporal or the database cannot be reached.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { ConfigError, DEMO_ENV, loadConfig, type Config } from '../config';
import { openDb, type Db } from '../db';
import { openConnection, temporalClient } from '../temporal/connection';
import { DEMO_KEY_FILE } from '../temporal/keys';
import { ConnectionError, EXIT, UsageError, type CliContext, type Command, type OptionValues } from './command';
import { commands as registered } from './commands';

export interface CliDeps {
  /** The environment the configuration is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** The command list (default cli/commands.ts). */
  commands?: Command[];
  /** Replaces parts of the context (tests: an already connected client, a database). */
  context?: Partial<Pick<CliContext, 'config' | 'client' | 'db'>>;
}

const GLOBAL_OPTIONS = [
  ['--json', 'machine-readable output (JSON) instead of tables'],
  ['-h, --help', 'this help (connects nowhere)'],
] as const;

/** Runs the CLI on its arguments (without `node main.js`); returns the exit code. */
export async function runCli(argv: string[], deps: CliDeps = {}): Promise<number> {
  const out = deps.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = deps.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const commands = deps.commands ?? registered;
  const { words, rest, json, help } = splitArgs(argv);
  if (words.length === 0) {
    for (const l of overviewLines(commands)) (help ? out : err)(l);
    return help ? EXIT.ok : EXIT.usage;
  }
  const found = findCommand(commands, words);
  if (!found) return unknownCommand(commands, words, help, out, err);
  const { command, positionals } = found;
  if (help) {
    for (const l of helpLines(command)) out(l);
    return EXIT.ok;
  }
  let parsed: { positionals: string[]; values: OptionValues };
  try {
    parsed = parseOptions(command, [...positionals, ...rest]);
  } catch (e) {
    // node:util's text goes on about '--' for positionals starting with '-': the first sentence says it.
    return usageFailure(command, (e as Error).message.replace(/\. To specify a positional argument.*$/s, ''), err);
  }
  let config: Config;
  try {
    config = deps.context?.config ?? loadConfig(cliEnv(deps.env ?? process.env));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`k2: the configuration is not valid: ${e.message}`);
    return EXIT.usage;
  }
  const resources = lazyResources(config, deps.context);
  const ctx: CliContext = { config, client: resources.client, db: resources.db, json, out, err };
  try {
    return await command.run(parsed, ctx);
  } catch (e) {
    if (e instanceof UsageError) return usageFailure(command, e.message, err);
    const unreachable = connectionProblem(e, config);
    err(`k2 ${command.path.join(' ')}: ${unreachable ?? (e as Error)?.message ?? String(e)}`);
    return unreachable ? EXIT.connection : EXIT.failed;
  } finally {
    await resources.close();
  }
}

/** The command words (up to the first flag), the remaining arguments, and the global flags (anywhere, before a `--`). */
export function splitArgs(argv: string[]): { words: string[]; rest: string[]; json: boolean; help: boolean } {
  const end = argv.indexOf('--') === -1 ? argv.length : argv.indexOf('--');
  const globalFlag = (a: string, i: number) => i < end && (a === '--json' || a === '--help' || a === '-h');
  const json = argv.some((a, i) => i < end && a === '--json');
  let help = argv.some((a, i) => i < end && (a === '--help' || a === '-h'));
  const args = argv.filter((a, i) => !globalFlag(a, i));
  let firstFlag = args.findIndex((a) => a.startsWith('-'));
  if (firstFlag === -1) firstFlag = args.length;
  let words = args.slice(0, firstFlag);
  if (words[0] === 'help') {
    help = true;
    words = words.slice(1);
  }
  return { words, rest: args.slice(firstFlag), json, help };
}

/** The command with the longest path the words begin with; the words after it are its first positionals. */
export function findCommand(commands: Command[], words: string[]): { command: Command; positionals: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= words.length && c.path.every((w, i) => w === words[i]) && (!best || c.path.length > best.path.length)) best = c;
  }
  return best ? { command: best, positionals: words.slice(best.path.length) } : undefined;
}

/** The command (or group) nearest to what was typed, for "did you mean". */
export function nearestCommand(commands: Command[], words: string[]): string | undefined {
  const typed = words.slice(0, 2).join(' ');
  const candidates = [...new Set(commands.map((c) => c.path.join(' ')))];
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(typed, name.split(' ').slice(0, words.length).join(' '));
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(typed.length / 2)) ? best.name : undefined;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function unknownCommand(commands: Command[], words: string[], help: boolean, out: (l: string) => void, err: (l: string) => void): number {
  const group = commands.filter((c) => c.path[0] === words[0]);
  if (group.length > 0 && (words.length === 1 || help)) {
    // `k2 case` or `k2 case --help`: the group's commands.
    const print = help ? out : err;
    print(`k2 ${words[0]}: one of`);
    for (const l of commandListLines(group)) print(l);
    print(`(k2 ${words[0]} <command> --help: its usage and options)`);
    return help ? EXIT.ok : EXIT.usage;
  }
  const nearest = nearestCommand(commands, words);
  err(`k2: unknown command "${words.join(' ')}"${nearest ? `; did you mean "${nearest}"?` : ''} (k2 --help lists the commands)`);
  return EXIT.usage;
}

function usageFailure(command: Command, message: string, err: (l: string) => void): number {
  err(`k2 ${command.path.join(' ')}: ${message}`);
  err(`usage: k2 ${command.usage}   (k2 ${command.path.join(' ')} --help)`);
  return EXIT.usage;
}

/** The command's options parsed strictly (an unknown flag or a missing value is an error naming it). */
export function parseOptions(command: Command, args: string[]): { positionals: string[]; values: OptionValues } {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
  const { positionals, values } = parseArgs({ args, options, allowPositionals: true, strict: true });
  return { positionals, values: values as OptionValues };
}

/** One command's help. */
export function helpLines(command: Command): string[] {
  const lines = [`usage: k2 ${command.usage}`, '', command.summary];
  if (command.description) lines.push('', ...command.description.split('\n'));
  const entries: Array<[string, string]> = Object.entries(command.options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' <value>' : ''}${o.multiple ? ' (repeatable)' : ''}`,
    o.description,
  ]);
  entries.push(...GLOBAL_OPTIONS.map(([f, d]) => [f, d] as [string, string]));
  const width = Math.max(...entries.map(([f]) => f.length));
  lines.push('', 'options:', ...entries.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`));
  return lines;
}

function commandListLines(commands: Command[]): string[] {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`);
}

/** `k2 --help`: every command, by group (the first word), groups in the order of the list. */
export function overviewLines(commands: Command[]): string[] {
  const groups = [...new Set(commands.map((c) => c.path[0]))];
  const lines = [
    'k2: the operator console of K2 (README "Operator actions (at 3 a.m.)")',
    '',
    'usage: npm run k2 -- <command> [options]   or   npx k2 <command> [options]',
  ];
  for (const g of groups) lines.push('', `${g}:`, ...commandListLines(commands.filter((c) => c.path[0] === g)));
  lines.push(
    '',
    'k2 <command> --help: its usage and options.',
    'global options: --json (JSON instead of tables), -h/--help (on any command; connects nowhere)',
    'configuration: the K2 environment (config/index.ts; TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE, K2_DB_CLIENT, K2_DB_URL, ...);',
    '  K2_DEMO=true reads the local demo of `npm run up` (its .data/ and payload key).',
    'exit codes: 0 done, 1 failed, 2 usage or configuration error, 3 Temporal or the database unreachable',
  );
  return lines;
}

/**
 * The environment of the configuration: outside the demo the worker's own (its env file: the CLI
 * validates the configuration as every K2 process does). K2_DEMO=true (the local `npm run up`): the demo's settings and secrets,
 * the repository's .data/ (wherever the CLI is started from) and its payload key file when it exists
 * (the CLI never creates one: a new key could not read the demo's cases). Given values always win.
 */
export function cliEnv(env: NodeJS.ProcessEnv, root = repoRoot()): NodeJS.ProcessEnv {
  if (env.K2_DEMO !== 'true') return env;
  const dataDir = env.K2_DATA_DIR || path.join(root, '.data');
  const keyFile = path.join(dataDir, DEMO_KEY_FILE);
  const keys = env.K2_PAYLOAD_KEYS || env.K2_PAYLOAD_KEYS_FILE || !fs.existsSync(keyFile) ? {} : { K2_PAYLOAD_KEYS_FILE: keyFile };
  const demo = Object.fromEntries(Object.entries(DEMO_ENV).filter(([k]) => !env[k]));
  return { ...env, ...demo, K2_DATA_DIR: dataDir, ...keys };
}

/** The repository (or installed package) root: the folder of package.json above this file. */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/** The client and database, each opened at its first use and closed at the end; a failure to reach one is a ConnectionError naming it. */
function lazyResources(config: Config, given: CliDeps['context']): { client(): Promise<Client>; db(): Promise<Db>; close(): Promise<void> } {
  let client: Promise<Client> | undefined;
  let db: Promise<Db> | undefined;
  const openClient = async () => {
    try {
      return temporalClient(config, await openConnection(config));
    } catch (e) {
      throw new ConnectionError(
        `cannot connect to Temporal at ${config.temporal.address} (namespace ${config.temporal.namespace}): ${(e as Error)?.message ?? e}`,
      );
    }
  };
  const openDatabase = async () => {
    // A read tool must not create an empty SQLite database where the worker's is not (a wrong K2_DATA_DIR).
    if (config.db.client === 'sqlite' && config.db.url !== ':memory:' && !fs.existsSync(config.db.url)) {
      throw new ConnectionError(`K2's database ${config.db.url} does not exist: run the CLI with the worker's K2_DATA_DIR (or K2_DB_CLIENT/K2_DB_URL)`);
    }
    try {
      return await openDb(config.db);
    } catch (e) {
      throw new ConnectionError(`cannot open K2's database ${databaseName(config.db)}: ${(e as Error)?.message ?? e}`);
    }
  };
  return {
    client: given?.client ?? (() => (client ??= openClient())),
    db: given?.db ?? (() => (db ??= openDatabase())),
    async close() {
      await Promise.allSettled([client?.then((c) => c.connection.close()), db?.then((d) => d.destroy())]);
    },
  };
}

/** The database for messages: the SQLite file, or the PostgreSQL URL without its password. */
export function databaseName(db: Config['db']): string {
  if (db.client === 'sqlite') return db.url;
  try {
    const u = new URL(db.url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres (K2_DB_URL)';
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET']);

/** The text of an error that means Temporal or the database cannot be reached (exit 3), else undefined. */
export function connectionProblem(e: unknown, config: Config): string | undefined {
  if (e instanceof ConnectionError) return e.message;
  const grpc = isGrpcServiceError(e) ? e : isGrpcServiceError((e as Error)?.cause) ? ((e as Error).cause as Error) : undefined;
  // 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED: the server did not answer (not a refusal of the request).
  if (grpc && [14, 4].includes((grpc as { code?: number }).code ?? -1)) return `Temporal at ${config.temporal.address} did not answer: ${grpc.message}`;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && UNREACHABLE_CODES.has(code)) return `K2's database ${databaseName(config.db)} cannot be reached (${code})`;
  return undefined;
}

if (require.main === module) {
  // `k2 case list | head`: a reader that has had enough is not an error.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(process.exitCode ?? 0) : undefined));
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // A handle left open (a connection that would not close) must not keep a script waiting.
      setTimeout(() => process.exit(code), 5000).unref();
    },
    (e) => {
      process.stderr.write(`k2: ${(e as Error)?.message ?? e}\n`);
      process.exit(1);
    },
  );
}

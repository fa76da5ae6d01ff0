/**
 * The operator CLI's frame (cli/main.ts): finding a command by its words, strict options, help that
 * connects nowhere, exit codes (0 done, 1 failed, 2 usage or configuration, 3 unreachable), the
 * demo's configuration. Commands here are fakes, except the help test, which runs every real one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConnectionError, UsageError, type CliContext, type Command } from '../../cli/command';
import { commands } from '../../cli/commands';
import { cliEnv, connectionProblem, databaseName, findCommand, nearestCommand, runCli, splitArgs } from '../../cli/main';
import { DEMO_ENV, loadConfig } from '../../config';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, deps: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

const unreachable = () => Promise.reject(new Error('the test connects nowhere'));
/** A context whose client and database fail the test if anything asks for them. */
const noConnections = { client: unreachable, db: unreachable } as unknown as Partial<CliContext>;
const config = loadConfig({ ...DEMO_ENV, K2_DATA_DIR: os.tmpdir() });

function fake(pathWords: string[], run: Command['run'], options: Command['options'] = {}): Command {
  return { path: pathWords, summary: `the ${pathWords.join(' ')} command`, usage: `${pathWords.join(' ')} <x>`, options, run };
}

test('every registered command has its own words, a usage and a summary; --help on each prints its usage and connects nowhere', async () => {
  const names = commands.map((c) => c.path.join(' '));
  expect(new Set(names).size).toBe(names.length);
  for (const command of commands) {
    const { out, deps } = io();
    const code = await runCli([...command.path, '--help'], { ...deps, context: { ...noConnections, config } });
    expect({ command: names[commands.indexOf(command)], code }).toEqual({ command: names[commands.indexOf(command)], code: 0 });
    expect(out[0]).toBe(`usage: k2 ${command.usage}`);
    expect(out.join('\n')).toContain('--json');
    expect(command.usage.startsWith(command.path.join(' '))).toBe(true);
  }
});

test('help without a configuration at all: `k2 --help`, `k2 help case show`, `k2 case` (the group)', async () => {
  // An environment that would not even validate: help must not read it.
  const env = { K2_DEMO: 'false' };
  const overview = io();
  expect(await runCli(['--help'], { ...overview.deps, env })).toBe(0);
  expect(overview.out.join('\n')).toMatch(/case:\n {2}case show/);
  expect(overview.out.join('\n')).toContain('scan get');
  const one = io();
  expect(await runCli(['help', 'case', 'show'], { ...one.deps, env })).toBe(0);
  expect(one.out[0]).toBe('usage: k2 case show <contract> [--json]');
  const group = io();
  expect(await runCli(['case'], { ...group.deps, env })).toBe(2);
  expect(group.err.join('\n')).toContain('case list');
  const nothing = io();
  expect(await runCli([], { ...nothing.deps, env })).toBe(2);
  expect(nothing.err.join('\n')).toContain('usage: npm run k2');
});

test('an unknown command exits 2 and names the nearest one', async () => {
  const { err, deps } = io();
  expect(await runCli(['case', 'lst', '--stage', 'received'], deps)).toBe(2);
  expect(err.join('\n')).toContain('unknown command "case lst"; did you mean "case list"?');
  expect(nearestCommand(commands, ['scna', 'get'])).toBe('scan get');
  expect(nearestCommand(commands, ['completely', 'different'])).toBeUndefined();
});

test('words find the longest command; what follows are its positionals; --json and --help are global, anywhere before --', () => {
  const cmds = [fake(['case', 'show'], async () => 0), fake(['case'], async () => 0)];
  expect(findCommand(cmds, ['case', 'show', 'KD1'])).toMatchObject({ command: { path: ['case', 'show'] }, positionals: ['KD1'] });
  expect(findCommand(cmds, ['case', 'KD1'])).toMatchObject({ command: { path: ['case'] }, positionals: ['KD1'] });
  expect(splitArgs(['case', 'show', 'KD1', '--json', '--out', 'f'])).toEqual({ words: ['case', 'show', 'KD1'], rest: ['--out', 'f'], json: true, help: false });
  expect(splitArgs(['case', '-h'])).toMatchObject({ words: ['case'], help: true });
  expect(splitArgs(['case', 'show', '--', '--json'])).toMatchObject({ json: false, rest: ['--', '--json'] });
});

test('options are strict: an unknown flag or a missing value is a usage error (exit 2) with the usage, and the command never runs', async () => {
  let ran = false;
  const cmd = fake(['x', 'y'], async () => ((ran = true), 0), { limit: { type: 'string', description: 'n' } });
  for (const args of [['--bogus'], ['--limit']]) {
    const { err, deps } = io();
    expect(await runCli(['x', 'y', ...args], { ...deps, commands: [cmd], context: { ...noConnections, config } })).toBe(2);
    expect(err.join('\n')).toContain('usage: k2 x y <x>');
  }
  expect(ran).toBe(false);
});

test("the command's exit code is the CLI's; UsageError exits 2, an unreachable Temporal 3, any other failure 1, each with its message", async () => {
  const run = (fn: Command['run']) => {
    const { out, err, deps } = io();
    return runCli(['x'], { ...deps, commands: [fake(['x'], fn)], context: { ...noConnections, config } }).then((code) => ({ code, out, err }));
  };
  expect((await run(async (_a, ctx) => (ctx.out('hello'), 0))).out).toEqual(['hello']);
  expect((await run(async () => 1)).code).toBe(1);
  const usage = await run(async () => {
    throw new UsageError('--stage "nope": not a stage');
  });
  expect(usage).toMatchObject({ code: 2, err: ['k2 x: --stage "nope": not a stage', expect.stringContaining('usage: k2 x <x>')] });
  const unreachableTemporal = await run(async () => {
    throw new ConnectionError('cannot connect to Temporal at 127.0.0.1:1 (namespace default): refused');
  });
  expect(unreachableTemporal).toMatchObject({ code: 3, err: ['k2 x: cannot connect to Temporal at 127.0.0.1:1 (namespace default): refused'] });
  expect(
    await run(async () => {
      throw new Error('something else');
    }),
  ).toMatchObject({ code: 1, err: ['k2 x: something else'] });
});

test('a configuration that does not validate exits 2 with its problems, before anything connects', async () => {
  const { err, deps } = io();
  expect(await runCli(['x'], { ...deps, env: { K2_DEMO: 'true', TEMPORAL_ADDRESS: 'no-port' }, commands: [fake(['x'], async () => 0)] })).toBe(2);
  expect(err.join('\n')).toContain('TEMPORAL_ADDRESS="no-port": expected host:port');
});

test('connecting to a Temporal that does not answer exits 3 and names the address', async () => {
  const { err, deps } = io();
  const cmd = fake(['x'], async (_a, ctx) => (await ctx.client(), 0));
  // Port 1 on loopback: nothing listens there.
  expect(await runCli(['x'], { ...deps, env: { K2_DEMO: 'true', TEMPORAL_ADDRESS: '127.0.0.1:1', K2_DATA_DIR: os.tmpdir() }, commands: [cmd] })).toBe(3);
  expect(err.join('\n')).toContain('cannot connect to Temporal at 127.0.0.1:1 (namespace default)');
}, 30_000);

test('errors that mean "not reachable": gRPC UNAVAILABLE names Temporal\'s address, a refused database names it without its password', () => {
  const pg = loadConfig({ ...DEMO_ENV, K2_DB_CLIENT: 'pg', K2_DB_URL: 'postgres://k2:secret@db.example:5432/k2' });
  expect(databaseName(pg.db)).toBe('postgres://k2:***@db.example:5432/k2');
  expect(connectionProblem(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), pg)).toBe(
    "K2's database postgres://k2:***@db.example:5432/k2 cannot be reached (ECONNREFUSED)",
  );
  expect(connectionProblem(new Error('a bug'), pg)).toBeUndefined();
});

test("K2_DEMO=true reads the demo of `npm run up`: its secrets, the repository's .data and its payload key file when there is one; given values win", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-cli-demo-'));
  try {
    expect(cliEnv({ K2_DEMO: 'true' }, root)).toMatchObject({ K2_DATA_DIR: path.join(root, '.data'), K2_API_AUTH: 'none' });
    expect(cliEnv({ K2_DEMO: 'true' }, root).K2_PAYLOAD_KEYS_FILE).toBeUndefined();
    fs.mkdirSync(path.join(root, '.data'));
    fs.writeFileSync(path.join(root, '.data', 'payload-keys'), 'demo-1:' + Buffer.alloc(32, 1).toString('base64'));
    expect(cliEnv({ K2_DEMO: 'true' }, root).K2_PAYLOAD_KEYS_FILE).toBe(path.join(root, '.data', 'payload-keys'));
    expect(cliEnv({ K2_DEMO: 'true', K2_PAYLOAD_KEYS: 'x:y' }, root).K2_PAYLOAD_KEYS_FILE).toBeUndefined();
    expect(cliEnv({ K2_DEMO: 'true', K2_DATA_DIR: '/elsewhere', GKB_PASSWORD: 'mine' }, root)).toMatchObject({
      K2_DATA_DIR: '/elsewhere',
      GKB_PASSWORD: 'mine',
    });
    // Outside the demo the environment is the worker's, as it is.
    expect(cliEnv({ K2_DEMO: 'false', TEMPORAL_ADDRESS: 'h:1' }, root)).toEqual({ K2_DEMO: 'false', TEMPORAL_ADDRESS: 'h:1' });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a SQLite database that does not exist is not created: the command exits 3 naming it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-cli-nodb-'));
  try {
    const { err, deps } = io();
    const cmd = fake(['x'], async (_a, ctx) => (await ctx.db(), 0));
    expect(await runCli(['x'], { ...deps, env: { K2_DEMO: 'true', K2_DATA_DIR: dir }, commands: [cmd] })).toBe(3);
    expect(err.join('\n')).toContain(`K2's database ${path.join(dir, 'k2.sqlite')} does not exist`);
    expect(fs.readdirSync(dir)).toEqual([]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

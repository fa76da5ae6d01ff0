/**
 * Starting, watching and stopping the processes of one system (scripts/system.ts, scripts/cluster.ts):
 * each process by name, its output in <logDir>/<name>.log (and to `onLine` when given), stopped by
 * name or all of them in reverse order of start.
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

export interface LaunchExtra {
  env?: Record<string, string>;
  /** Run as this user (PostgreSQL refuses root); the working directory is then /. */
  as?: { uid: number; gid: number };
}

export interface Launcher {
  launch(name: string, command: string, args: string[], extra?: LaunchExtra): Proc;
  /** A compiled script of this repo (dist/<script>) with the system's Node.js. */
  node(name: string, script: string, env?: Record<string, string>, nodeArgs?: readonly string[]): Proc;
  /** The newest process of that name that still runs. */
  running(name: string): Proc | undefined;
  /** Every process that still runs, by name. */
  pids(): Record<string, number>;
  /** Sends `signal` (SIGINT: K2's processes drain) and waits; SIGKILL after `graceMs`. */
  stop(proc: Proc, signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** Stops every process, the last started first. */
  stopAll(graceMs?: number): Promise<void>;
}

export interface LauncherOptions {
  root: string;
  logDir: string;
  /** The environment every process gets over the caller's own. */
  env: Record<string, string>;
  onLine?: (name: string, line: string) => void;
}

export function createLauncher(opts: LauncherOptions): Launcher {
  const procs: Proc[] = [];
  const isRunning = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;

  const launch = (name: string, command: string, args: string[], extra: LaunchExtra = {}): Proc => {
    const logFile = path.join(opts.logDir, `${name}.log`);
    const log = fs.createWriteStream(logFile, { flags: 'a' });
    const spawnOpts: SpawnOptions = {
      cwd: extra.as ? '/' : opts.root,
      env: { ...process.env, ...opts.env, ...extra.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(extra.as ?? {}),
    };
    const child = spawn(command, args, spawnOpts);
    child.stdout!.on('data', lineWriter(log, name, opts.onLine));
    child.stderr!.on('data', lineWriter(log, name, opts.onLine));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        log.end();
        resolve(code);
      }),
    );
    const proc = { name, child, exited, logFile };
    procs.push(proc);
    return proc;
  };

  const stop = async (proc: Proc, signal: NodeJS.Signals = 'SIGINT', graceMs = 20_000) => {
    if (!isRunning(proc)) return;
    proc.child.kill(signal);
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
    await proc.exited;
    clearTimeout(timer);
  };

  return {
    launch,
    node: (name, script, env = {}, nodeArgs = []) => launch(name, process.execPath, [...nodeArgs, path.join(opts.root, 'dist', script)], { env }),
    running: (name) => [...procs].reverse().find((p) => p.name === name && isRunning(p)),
    pids: () => Object.fromEntries(procs.filter(isRunning).map((p) => [p.name, p.child.pid!])),
    stop,
    async stopAll(graceMs) {
      for (const proc of [...procs].reverse()) await stop(proc, 'SIGINT', graceMs);
    },
  };
}

/** Writes a process's output to its log, and whole lines to `onLine`. */
function lineWriter(log: fs.WriteStream, name: string, onLine?: (name: string, line: string) => void): (chunk: Buffer) => void {
  let buffered = '';
  return (chunk) => {
    log.write(chunk);
    if (!onLine) return;
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(name, line);
  };
}

/** Polls `check` until it is true; fails early, with the end of its log, if `proc` exits first. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  proc?.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what}: the process exited before it was ready; the end of ${proc!.logFile}:\n${logTail(proc!.logFile)}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

export function logTail(file: string, lines = 15): string {
  if (!fs.existsSync(file)) return '(no log)';
  return fs
    .readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => l.slice(0, 400))
    .join('\n');
}

export const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

/** True once the log file has a line containing `marker` written after `sizeBefore` bytes. */
export const logShows = (logFile: string, marker: string, sizeBefore: number) => async () =>
  fs.existsSync(logFile) && fs.readFileSync(logFile).subarray(sizeBefore).includes(marker);

export const logSize = (logFile: string) => (fs.existsSync(logFile) ? fs.statSync(logFile).size : 0);

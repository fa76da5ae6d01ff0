/**
 * `npm run outbox -- <command>`: an alias of the operator CLI's outbox commands, `npm run k2 --
 * outbox <command>` (cli/outbox.ts: status, dead-letters, requeue <id>... | --all; README "The
 * outbox"). Reads the configuration like every K2 process (K2_DB_CLIENT, K2_DB_URL: SQLite or
 * PostgreSQL). Only references and counts are printed, never the loan's personal data.
 * (`npm run outbox` runs the compiled dist/scripts/outbox.js: `npm run build` first in a checkout.)
 *
 * runOutboxCommand is the earlier programmatic form (tab-separated dead letters, one requeue), kept
 * for the callers that read its output; it uses the CLI's own checks.
 */
import type { Db } from '../db';
import { deadLetters, requeueDeadLetter } from '../db/outbox';
import { outboxIdProblem } from '../cli/outbox';
import { runCli } from '../cli/main';

const USAGE = 'usage: npm run outbox -- dead-letters | requeue <id>';

/** Runs one command; returns the exit code. Output goes through `out` (lines), errors through `err`. */
export async function runOutboxCommand(args: string[], db: Db, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const [command, ...rest] = args;
  if (command === 'dead-letters' && rest.length === 0) {
    const letters = await deadLetters(db);
    if (letters.length === 0) {
      out('no dead letters');
      return 0;
    }
    out(['id', 'contract_number', 'attempts', 'accepted_at', 'dead_at', 'last_error'].join('\t'));
    for (const l of letters) out([l.id, l.contractNumber, l.attempts, l.acceptedAt, l.deadAt, l.lastError ?? ''].join('\t'));
    out(`${letters.length} dead letter(s)`);
    return 0;
  }
  if (command === 'requeue' && rest.length === 1) {
    const problem = outboxIdProblem(rest[0]);
    if (problem) {
      err(`requeue: ${problem}`);
      return 2;
    }
    const id = Number(rest[0]);
    if (!(await requeueDeadLetter(db, id))) {
      err(`requeue: no dead letter with id ${id}`);
      return 1;
    }
    out(`requeued outbox item ${id}: the dispatcher hands it to Temporal again`);
    return 0;
  }
  err(USAGE);
  return 2;
}

if (require.main === module) {
  runCli(['outbox', ...process.argv.slice(2)]).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`outbox: ${String((e as Error)?.message ?? e)}\n`);
      process.exit(1);
    },
  );
}

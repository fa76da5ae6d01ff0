/**
 * Operators' tool for the loan outbox's dead letters (items Temporal refused K2_OUTBOX_MAX_ATTEMPTS
 * times; README "The outbox"). Reads the configuration like every K2 process (K2_DB_CLIENT,
 * K2_DB_URL: SQLite or PostgreSQL):
 *
 *   npm run outbox -- dead-letters       lists them: id, contract number, attempts, last error, accepted at
 *   npm run outbox -- requeue <id>       puts one back into the flow with a fresh attempt count
 *
 * Only references and counts are printed, never the loan's personal data (IIN, name, IBAN).
 * (`npm run outbox` runs the compiled dist/scripts/outbox.js: `npm run build` first in a checkout.)
 */
import { loadConfig } from '../config';
import { openDb, type Db } from '../db';
import { deadLetters, requeueDeadLetter } from '../db/outbox';

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
    if (!/^\d+$/.test(rest[0])) {
      err(`requeue: "${rest[0]}" is not an outbox id (a positive integer)`);
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

async function main(): Promise<void> {
  const config = loadConfig();
  const db = await openDb(config.db);
  try {
    process.exitCode = await runOutboxCommand(process.argv.slice(2), db, (l) => process.stdout.write(`${l}\n`), (l) => process.stderr.write(`${l}\n`));
  } finally {
    await db.destroy();
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`outbox: ${String((e as Error)?.message ?? e)}\n`);
    process.exit(1);
  });
}

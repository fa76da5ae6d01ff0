/**
 * The loan outbox for operators (`k2 outbox status | dead-letters | requeue`, README "The outbox"):
 * what waits for the dispatcher and since when, what dispatchers hold, the dead letters with their
 * error, and putting dead letters back into the flow. References, counts and errors only, never the
 * loan itself (it holds the client's data). `npm run outbox` is an alias of `k2 outbox`.
 */
import { deadLetters, outboxStatus, requeueAllDeadLetters, requeueDeadLetter, type OutboxStatus } from '../db/outbox';
import { EXIT, UsageError, type Command } from './command';
import { formatAge, printJson, printTable, tableLines } from './output';

/** Why a text is not an outbox id, or undefined (ids are positive integers). */
export function outboxIdProblem(text: string): string | undefined {
  return /^[1-9]\d{0,15}$/.test(text) ? undefined : `"${text}" is not an outbox id (a positive integer)`;
}

/** `outbox status` for people: one line per figure, oldest ones with their age. */
export function statusLines(s: OutboxStatus, now: Date): string[] {
  const oldest = (at?: Date) => (at ? `oldest accepted ${at.toISOString()}, ${formatAge(now.getTime() - at.getTime())} ago` : '');
  return tableLines(
    ['outbox', 'count', 'detail'],
    [
      { outbox: 'pending', count: s.pending, detail: oldest(s.oldestPendingAcceptedAt) },
      { outbox: 'waiting to retry', count: s.waitingRetry, detail: s.waitingRetry ? 'Temporal refused them; they wait for their next attempt' : '' },
      { outbox: 'claimed (in flight)', count: s.claimed, detail: s.claimed ? `held by ${s.claimers} dispatcher(s) under a lease` : '' },
      { outbox: 'dead letters', count: s.dead, detail: s.dead ? `${oldest(s.oldestDeadAcceptedAt)}; k2 outbox dead-letters lists them` : '' },
    ],
  );
}

const status: Command = {
  path: ['outbox', 'status'],
  summary: "pending items and the oldest one's age, items in flight (claimed), items waiting to retry, dead letters",
  usage: 'outbox status',
  description:
    'Pending: accepted from EKO, not yet handed to Temporal (dead letters not counted). An old oldest pending item means the dispatcher is stuck or Temporal refuses.',
  options: {},
  async run(args, ctx) {
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const now = new Date();
    const s = await outboxStatus(await ctx.db(), now);
    if (ctx.json) printJson(ctx, { ...s, oldestPendingAgeMs: age(s.oldestPendingAcceptedAt, now), oldestDeadAgeMs: age(s.oldestDeadAcceptedAt, now) });
    else for (const l of statusLines(s, now)) ctx.out(l);
    return EXIT.ok;
  },
};

const age = (at: Date | undefined, now: Date) => (at ? now.getTime() - at.getTime() : undefined);

const DEFAULT_LIST_LIMIT = 1000;

const deadLetterList: Command = {
  path: ['outbox', 'dead-letters'],
  summary: 'the items Temporal refused K2_OUTBOX_MAX_ATTEMPTS times, oldest first, with their last error',
  usage: 'outbox dead-letters [--limit N]',
  description: 'Requeue one with `k2 outbox requeue <id>` (or all with --all) once the cause is fixed.',
  options: { limit: { type: 'string', description: `at most this many (default ${DEFAULT_LIST_LIMIT})` } },
  async run(args, ctx) {
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const limit = parseLimit(args.values.limit as string | undefined, DEFAULT_LIST_LIMIT);
    const letters = await deadLetters(await ctx.db(), limit);
    const rows = letters.map((l) => ({
      id: l.id,
      contract: l.contractNumber,
      attempts: l.attempts,
      accepted_at: l.acceptedAt,
      dead_at: l.deadAt,
      error: l.lastError,
    }));
    printTable(ctx, ['id', 'contract', 'attempts', 'accepted_at', 'dead_at', 'error'], rows);
    if (!ctx.json) ctx.out(`${letters.length} dead letter(s)${letters.length === limit ? ` (the first ${limit}: k2 outbox status counts them all)` : ''}`);
    return EXIT.ok;
  },
};

const requeue: Command = {
  path: ['outbox', 'requeue'],
  summary: 'put dead letters back into the flow with a fresh attempt count (by id, or --all)',
  usage: 'outbox requeue <id>... | --all',
  description:
    'The dispatcher hands them to Temporal again, in their original order per contract. An id that is no dead letter is reported, and the exit code is 1.',
  options: { all: { type: 'boolean', description: 'every dead letter' } },
  async run(args, ctx) {
    const ids = args.positionals;
    if (args.values.all && ids.length) throw new UsageError('give ids or --all, not both');
    if (!args.values.all && ids.length === 0) throw new UsageError('which dead letters? give their ids (k2 outbox dead-letters lists them) or --all');
    const db = await ctx.db();
    if (args.values.all) {
      const n = await requeueAllDeadLetters(db);
      if (ctx.json) printJson(ctx, { requeued: n });
      else ctx.out(`requeued ${n} dead letter(s): the dispatcher hands them to Temporal again`);
      return EXIT.ok;
    }
    const bad = ids.map(outboxIdProblem).find(Boolean);
    if (bad) throw new UsageError(bad);
    const rows: Array<{ id: number; requeued: boolean }> = [];
    for (const id of [...new Set(ids.map(Number))]) rows.push({ id, requeued: await requeueDeadLetter(db, id) });
    if (ctx.json) printJson(ctx, rows);
    else
      for (const r of rows)
        r.requeued
          ? ctx.out(`requeued outbox item ${r.id}: the dispatcher hands it to Temporal again`)
          : ctx.err(`outbox item ${r.id} is no dead letter (never was, already requeued, or dispatched)`);
    return rows.every((r) => r.requeued) ? EXIT.ok : EXIT.failed;
  },
};

function parseLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[1-9]\d{0,6}$/.test(text)) throw new UsageError(`--limit: "${text}" is not a whole number from 1 to 9999999`);
  return Number(text);
}

export const outboxCommands: Command[] = [status, deadLetterList, requeue];

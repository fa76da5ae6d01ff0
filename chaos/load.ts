/**
 * The EKO side of a chaos run: several hundred overdue loans posted to K2 (the ABS loan book
 * registered first, as simulators/eko/demo-feeder.ts does), some re-sent later with new data
 * (overdue days, debt), some repaid (debt 0) and a few of those overdue again (a new episode), while
 * the faults go on; plus the demo scenario loans that need an operator on purpose.
 *
 * planLoad is pure (the same seed, the same loans at the same times); runLoad plays the plan like EKO:
 * every POST is retried until K2 answers error_code 0, one step after the other, and what K2 accepted
 * is recorded in order, so the checks know each contract's last accepted data. One large POST goes
 * straight to an API replica and is cut off by killing that replica while its body is in flight.
 */
import http from 'node:http';
import { generateLoans, mulberry32, randomInt, type Rand } from '../domain/generate';
import type { EkoLoanItem } from '../domain/loan';
import { demoScenarioLoans } from '../simulators/eko/demo-scenarios';

/** Why an item is sent. */
export type ItemKind = 'new' | 'resend' | 'repay' | 'reopen' | 'scenario';

export interface LoadItem {
  kind: ItemKind;
  loan: EkoLoanItem;
}

export interface LoadStep {
  /** Milliseconds from the start of the run. */
  at: number;
  items: LoadItem[];
  /** The large POST the API replica is killed under (chaos/timeline.ts kill-api-mid-post). */
  killApi?: { target: string; downMs: number };
}

export interface LoadPlan {
  /** Registered with the ABS simulator before anything is posted. */
  book: EkoLoanItem[];
  steps: LoadStep[];
}

export interface LoadOptions {
  seed: number;
  /** Loans in all, the demo scenario loans included. */
  cases: number;
  durationMs: number;
  /** When the large POST is cut off, and whose replica (the timeline's kill-api-mid-post). */
  apiKill?: { at: number; target: string; downMs: number };
}

/** Share of the run after which nothing new is sent. */
const LOAD_END = 0.85;
/** Items sent within one such window go in one POST. */
const BUCKET_MS = 5_000;
export const MIN_CASES = 20;

const cents = (debt: number | string) => Math.round(Number(debt) * 100);

/** New overdue data for a re-send: more overdue days, a debt a little up or down (never 0). */
function changed(rand: Rand, loan: EkoLoanItem): EkoLoanItem {
  const debt = Math.max(100, Math.round((cents(loan.debt) * randomInt(rand, 90, 110)) / 100));
  return {
    ...loan,
    overdue_days: Math.min(36_500, loan.overdue_days + randomInt(rand, 1, 30)),
    debt: debt === cents(loan.debt) ? (debt + 100) / 100 : debt / 100,
  };
}

export function planLoad(opts: LoadOptions): LoadPlan {
  if (!Number.isInteger(opts.cases) || opts.cases < MIN_CASES) throw new RangeError(`cases: at least ${MIN_CASES}, got ${opts.cases}`);
  const rand = mulberry32(opts.seed ^ 0x10ad);
  const d = opts.durationMs;
  const scenarios = demoScenarioLoans(opts.seed % 1_000_000);
  const loans = generateLoans(opts.seed, opts.cases - scenarios.length);
  const end = Math.round(d * LOAD_END);
  const at = (from: number, to: number) => Math.round(d * (from + (to - from) * rand()));

  // The first posts: one large (a quarter of the loans) at the API kill, the rest in batches of 5–30 over the first third.
  const steps: LoadStep[] = [{ at: at(0.04, 0.08), items: scenarios.map((loan) => ({ kind: 'scenario', loan })) }];
  const large = opts.apiKill ? Math.max(10, Math.round(loans.length / 4)) : 0;
  const firstAt = new Map<string, number>();
  if (opts.apiKill) {
    const batch = loans.slice(0, large);
    steps.push({
      at: opts.apiKill.at,
      items: batch.map((loan) => ({ kind: 'new', loan })),
      killApi: { target: opts.apiKill.target, downMs: opts.apiKill.downMs },
    });
    for (const l of batch) firstAt.set(l.contract_number, opts.apiKill.at);
  }
  for (let i = large; i < loans.length;) {
    const size = randomInt(rand, 5, 30);
    const batch = loans.slice(i, i + size);
    const t = at(0, 0.33);
    steps.push({ at: t, items: batch.map((loan) => ({ kind: 'new', loan })) });
    for (const l of batch) firstAt.set(l.contract_number, t);
    i += size;
  }

  // Later items per loan, in order, each at least a bucket after the one before; dropped past the end.
  const later: Array<{ at: number; item: LoadItem }> = [];
  for (const loan of loans) {
    let t = firstAt.get(loan.contract_number)!;
    let current = loan;
    const next = (from: number, to: number) => Math.max(t + 2 * BUCKET_MS, t + at(from, to));
    const resends = rand() < 0.35 ? (rand() < 0.25 ? 2 : 1) : 0;
    const repays = rand() < 0.25;
    const reopens = repays && rand() < 0.3;
    const plan: Array<[ItemKind, number, number]> = [
      ...Array.from({ length: resends }, () => ['resend', 0.08, 0.3] as [ItemKind, number, number]),
      ...(repays ? [['repay', 0.1, 0.3] as [ItemKind, number, number]] : []),
      ...(reopens ? [['reopen', 0.05, 0.15] as [ItemKind, number, number]] : []),
    ];
    for (const [kind, from, to] of plan) {
      t = next(from, to);
      if (t > end) break;
      if (kind === 'resend') current = changed(rand, current);
      else if (kind === 'repay') current = { ...current, debt: 0 };
      else current = { ...changed(rand, loan), overdue_days: randomInt(rand, 1, 30) };
      later.push({ at: t, item: { kind, loan: current } });
    }
  }
  const buckets = new Map<number, LoadItem[]>();
  for (const { at: t, item } of later.sort((a, b) => a.at - b.at)) {
    let bucket = Math.floor(t / BUCKET_MS);
    // One contract once per POST (the same contract twice with different data is a validation error).
    while (buckets.get(bucket)?.some((i) => i.loan.contract_number === item.loan.contract_number)) bucket++;
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), item]);
  }
  for (const [bucket, items] of buckets) steps.push({ at: bucket * BUCKET_MS, items });

  steps.sort((a, b) => a.at - b.at);
  return { book: loans, steps };
}

// ---------------------------------------------------------------------------------------------
// Playing the plan.

/** One POST as the load saw it. */
export interface RequestRecord {
  step: number;
  at: number;
  items: number;
  kinds: Partial<Record<ItemKind, number>>;
  /** Each attempt's outcome: "0", "http 503 / 7", "unreachable: ECONNREFUSED", "interrupted: …". */
  attempts: Array<{ at: number; outcome: string }>;
  /** When K2 answered error_code 0 (absent: never). */
  acceptedAt?: number;
  /** The body of the cut-off attempt (the kill-mid-POST step), to check that none of it was accepted on its own. */
  interrupted?: { at: number; target: string; outcome: string; restartedAt?: number };
}

/** An item K2 answered 0 for, in the order K2 answered. */
export interface AcceptedItem {
  at: number;
  kind: ItemKind;
  loan: EkoLoanItem;
}

export interface LoadRecord {
  requests: RequestRecord[];
  accepted: AcceptedItem[];
  /** Steps given up (K2 never answered 0 before the deadline). */
  givenUp: number;
}

export interface LoadTarget {
  /** K2's API (nginx on the cluster). */
  apiUrl: string;
  absUrl: string;
  /** The base URL of one API replica, for the POST that is cut off. */
  replicaUrl(name: string): string;
  /** SIGKILLs the replica (resolves once it exited). */
  killApi(name: string): Promise<void>;
  /** Starts it again (resolves once it is ready). */
  startApi(name: string): Promise<void>;
}

export interface RunLoadOptions {
  /** Epoch ms the run started at: step times count from it. */
  startedAt: number;
  /** No POST is retried past this epoch ms. */
  deadline: number;
  log?: (line: string) => void;
  /** Timeout of one POST. Default 60 s. */
  requestTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** One attempt: "0" when K2 accepted; otherwise why not, and whether to try again. */
async function postOnce(url: string, body: string, timeoutMs: number): Promise<{ outcome: string; retry: boolean }> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let code: unknown;
    try {
      code = (JSON.parse(text) as { error_code?: unknown }).error_code;
    } catch {
      code = undefined;
    }
    if (res.status === 200 && code === 0) return { outcome: '0', retry: false };
    // K2 away or busy (5xx, 429, 7 = temporarily unavailable) is worth waiting for; a validation error is the load's own bug.
    return { outcome: `http ${res.status} / ${String(code)}`, retry: res.status >= 500 || res.status === 429 || code === 7 };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { outcome: e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `unreachable: ${e.cause?.code ?? e.message}`, retry: true };
  }
}

/**
 * Sends the body to the replica slowly and, with half of it sent, has `interrupt` kill the replica:
 * the request is in flight when the process dies. Resolves with what the client saw.
 */
export function postCutOff(url: string, body: string, interrupt: () => Promise<void>): Promise<string> {
  const bytes = Buffer.from(body, 'utf8');
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': bytes.length } });
    req.on('response', (res) => {
      res.resume();
      done(`answered HTTP ${res.statusCode} before the kill`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => done(`interrupted: ${err.code ?? err.message}`));
    req.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => {
      interrupt().then(
        () => {
          req.destroy();
          done('interrupted: the replica was killed with the body half sent');
        },
        (err: Error) => {
          req.destroy();
          done(`kill failed: ${err.message}`);
        },
      );
    });
  });
}

export async function runLoad(plan: LoadPlan, target: LoadTarget, opts: RunLoadOptions): Promise<LoadRecord> {
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const record: LoadRecord = { requests: [], accepted: [], givenUp: 0 };
  const since = () => Date.now() - opts.startedAt;

  const book = await postOnce(`${target.absUrl}/_sim/loans`, JSON.stringify(plan.book), timeoutMs);
  if (book.outcome !== '0' && !book.outcome.startsWith('http 200')) throw new Error(`the ABS loan book was refused: ${book.outcome}`);

  for (const [index, step] of plan.steps.entries()) {
    await sleep(opts.startedAt + step.at - Date.now());
    const body = JSON.stringify(step.items.map((i) => i.loan));
    const kinds: RequestRecord['kinds'] = {};
    for (const i of step.items) kinds[i.kind] = (kinds[i.kind] ?? 0) + 1;
    const request: RequestRecord = { step: index, at: since(), items: step.items.length, kinds, attempts: [] };
    record.requests.push(request);

    if (step.killApi) {
      const { target: name, downMs } = step.killApi;
      const at = since();
      const outcome = await postCutOff(`${target.replicaUrl(name)}/restapi/services/k2loan_from_eko`, body, () => target.killApi(name));
      request.interrupted = { at, target: name, outcome };
      request.attempts.push({ at, outcome });
      log(`load: ${step.items.length} loans cut off by killing ${name} (${outcome})`);
      await sleep(downMs);
      await target.startApi(name);
      request.interrupted.restartedAt = since();
    }

    for (let attempt = 1; ; attempt++) {
      const { outcome, retry } = await postOnce(`${target.apiUrl}/restapi/services/k2loan_from_eko`, body, timeoutMs);
      request.attempts.push({ at: since(), outcome });
      if (outcome === '0') {
        request.acceptedAt = since();
        for (const item of step.items) record.accepted.push({ at: request.acceptedAt, kind: item.kind, loan: item.loan });
        break;
      }
      if (!retry) throw new Error(`K2 refused step ${index} (${step.items.length} loans): ${outcome}; the load is wrong`);
      if (Date.now() > opts.deadline) {
        record.givenUp += 1;
        log(`load: step ${index} given up after ${attempt} attempts (${outcome})`);
        break;
      }
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)));
    }
  }
  return record;
}

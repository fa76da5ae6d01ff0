/**
 * Demo feeder: plays EKO's first move. It generates valid overdue loans, tells the ABS simulator
 * which accounts and agreements belong to whom (so K2's ABS checks find them), then sends the
 * loans to K2's k2loan_from_eko as one JSON array — waiting for K2 if it is still starting.
 */
import { ERROR_CODES } from '../../api/error-codes';
import { generateLoans } from '../../domain/generate';
import type { EkoLoanItem } from '../../domain/loan';
import { createLogger, type Logger } from '../../observability/logger';

/** Seeded, so the same seed gives the same loans (domain/generate's generateLoans by default). */
export type GenerateLoans = (seed: number, count: number) => EkoLoanItem[];

export interface FeedDemoLoansOptions {
  /** K2's API, e.g. http://127.0.0.1:8080. */
  k2BaseUrl: string;
  k2AuthHeader?: string;
  /** The ABS simulator, e.g. http://127.0.0.1:8091. */
  absSimUrl: string;
  count: number;
  seed: number;
  /** How long to keep trying while K2 or the ABS simulator is not up yet. Default 60 s. */
  maxWaitMs?: number;
  /** Timeout of one POST (the array may be large). Default 60 s. */
  requestTimeoutMs?: number;
  logger?: Logger;
  /** Defaults to domain/generate's generateLoans. */
  generate?: GenerateLoans;
}

type Attempt = { done: true } | { done: false; retry: boolean; reason: string };

/** POSTs JSON until `judge` says done, or fails at once when it says the answer will not change. */
async function postUntilAccepted(
  what: string,
  url: string,
  body: string,
  headers: Record<string, string>,
  deadline: number,
  requestTimeoutMs: number,
  log: Logger,
  judge: (status: number, text: string) => Attempt,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let outcome: Attempt;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      outcome = judge(res.status, await res.text());
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      // Connection refused is the normal sight while a service starts.
      outcome = {
        done: false,
        retry: true,
        reason: e.name === 'TimeoutError' ? `no answer within ${requestTimeoutMs} ms` : `unreachable: ${e.cause?.code ?? e.message}`,
      };
    }
    if (outcome.done) return;
    if (!outcome.retry) throw new Error(`${what} refused: ${outcome.reason}`);
    const delay = Math.min(5_000, 250 * 2 ** (attempt - 1));
    if (Date.now() + delay > deadline) throw new Error(`${what} still failing after ${attempt} attempts: ${outcome.reason}`);
    log.info('waiting before retrying', { what, attempt, nextAttemptInMs: delay, reason: outcome.reason });
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Sends `count` generated loans through ABS simulator and K2; resolves with their contract numbers. */
export async function feedDemoLoans(options: FeedDemoLoansOptions): Promise<string[]> {
  const log = options.logger ?? createLogger('eko-feeder');
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const deadline = Date.now() + (options.maxWaitMs ?? 60_000);
  const loans = (options.generate ?? generateLoans)(options.seed, options.count);
  const body = JSON.stringify(loans);

  await postUntilAccepted(
    'ABS simulator loan registration',
    `${options.absSimUrl.replace(/\/+$/, '')}/_sim/loans`,
    body,
    {},
    deadline,
    requestTimeoutMs,
    log,
    (status, text) => {
      if (status >= 200 && status < 300) return { done: true };
      return { done: false, retry: status >= 500 || status === 429, reason: `HTTP ${status}: ${text.slice(0, 300)}` };
    },
  );
  log.info('loans registered with the ABS simulator', { count: loans.length });

  const k2Headers: Record<string, string> = options.k2AuthHeader ? { Authorization: options.k2AuthHeader } : {};
  await postUntilAccepted(
    'K2 k2loan_from_eko',
    `${options.k2BaseUrl.replace(/\/+$/, '')}/restapi/services/k2loan_from_eko`,
    body,
    k2Headers,
    deadline,
    requestTimeoutMs,
    log,
    (status, text) => {
      let answer: { error_code?: unknown; error_text?: unknown } | undefined;
      try {
        answer = JSON.parse(text);
      } catch {
        answer = undefined;
      }
      if (status >= 200 && status < 300 && answer?.error_code === 0) return { done: true };
      const reason =
        answer && typeof answer.error_code === 'number'
          ? `HTTP ${status}, error_code ${answer.error_code}: ${String(answer.error_text ?? '').slice(0, 500)}`
          : `HTTP ${status}: ${text.slice(0, 300)}`;
      // K2 starting up answers 5xx / TEMPORARILY_UNAVAILABLE; a validation error would not go away by waiting.
      const retry = status >= 500 || status === 429 || answer?.error_code === ERROR_CODES.TEMPORARILY_UNAVAILABLE.code;
      return { done: false, retry, reason };
    },
  );
  const contractNumbers = loans.map((l) => l.contract_number);
  log.info('loans accepted by K2', { count: contractNumbers.length });
  return contractNumbers;
}

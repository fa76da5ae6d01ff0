/**
 * EKO simulator: receives K2's payment demands (gap G2) and, like the real EKO, reports each demand's
 * status back to K2 later through k2req_status_from_eko: PC1 after statusDelayMs, PC3 after another
 * statusDelayMs. Faults ('eko.*', changeable at run time through /_sim/faults) make it misbehave the
 * ways K2 must survive: 5xx, slowness, rejections, statuses out of order or twice, answers lost.
 *
 * Every timer goes through one scheduler and is cancelled by close(), so tests and SIGTERM leave
 * nothing running.
 */
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../../config';
import { createLogger, type Logger } from '../../observability/logger';
import { faultControl, type Faults } from '../faults';
import { closeServer, listenOn, portOf } from '../http';
import { ERROR_CODES } from '../../api/error-codes';
import type { DemandStatusCode } from '../../domain/demand-status';
import { EKO_ERROR, validatePaymentDemand, type EkoAnswer, type PaymentDemand } from '../../integrations/eko';
import { createDemandJournal, type DemandJournalEntry, type DemandOutcome } from './journal';

/** Where timers come from; tests may pass a fake one. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The 'eko.*' fault knobs this simulator reads (rates are probabilities 0..1). */
export const EKO_FAULT_KEYS = {
  http5xx: 'rate: answer a demand with HTTP 503 before looking at it',
  latencyMs: 'milliseconds: wait this long before answering a demand',
  reject: 'rate: refuse a new demand with error_code 2',
  http5xxAfterAccept: 'rate: store a new demand, then answer HTTP 503 (the answer is "lost"; K2 retries, the repeat answers 0)',
  pc3BeforePc1: 'rate: send PC3 first, then PC1',
  duplicateStatus: 'rate (per status): send the status twice',
  onlyPc1: 'rate: the demand only reaches PC1',
  silent: 'rate: send no status at all for the demand',
} as const;

export interface K2RetryPolicy {
  /** Attempts per status POST, the first included. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface EkoSimulatorOptions {
  faults: Faults;
  /** Delay before PC1, and again between PC1 and PC3. */
  statusDelayMs: number;
  /** K2's API, e.g. http://127.0.0.1:8080 (statuses go to /restapi/services/k2req_status_from_eko). */
  k2BaseUrl: string;
  /** Authorization header for K2 (see k2AuthHeader()). */
  k2AuthHeader?: string;
  /** When set, demands must carry exactly this Authorization header (401 / error_code 4 otherwise). */
  requiredAuthHeader?: string;
  now?: () => Date;
  scheduler?: Scheduler;
  logger?: Logger;
  /**
   * The statuses to report for a demand, in order. Default: PC1 then PC3, shaped by the
   * onlyPc1 / silent / pc3BeforePc1 knobs. When given, it decides alone (duplicateStatus still applies).
   */
  planStatuses?: (demand: PaymentDemand) => string[];
  k2Retry?: Partial<K2RetryPolicy>;
  /** Timeout of one status POST to K2. */
  k2TimeoutMs?: number;
  /**
   * K2 error_codes that mean "try again later" (besides HTTP 5xx/429 and any error_text saying
   * "temporarily unavailable"). Default: K2's documented TEMPORARILY_UNAVAILABLE (api/error-codes.ts).
   */
  k2RetryableCodes?: number[];
}

export interface PlannedStatus {
  status_code: string;
  /** duplicateStatus fault: this status is sent twice. */
  duplicate: boolean;
}

export interface StatusDelivery {
  status_code: string;
  /** When the delivery finished (delivered, refused or given up). */
  at: string;
  attempts: number;
  /** delivered: K2 answered error_code 0; refused: K2 answered a permanent error; gave_up: retries exhausted. */
  outcome: 'delivered' | 'refused' | 'gave_up';
  k2_answer?: EkoAnswer;
  error?: string;
}

export interface DemandRecord {
  reference: string;
  demand: PaymentDemand;
  received_at: string;
  /** How many times the same demand came again (idempotent repeats). */
  repeats: number;
  plan: PlannedStatus[];
  sent: StatusDelivery[];
  /** sending: statuses still to come; done: plan finished; gave_up: K2 stayed unreachable; stopped: simulator closed. */
  state: 'sending' | 'done' | 'gave_up' | 'stopped';
}

export interface EkoSimulator {
  app: express.Express;
  /** Starts listening; resolves with the actual port (pass 0 for an ephemeral one). */
  listen(port: number, host?: string): Promise<number>;
  /** Stops the server, cancels pending status timers and in-flight POSTs to K2. */
  close(): Promise<void>;
  demand(reference: string): DemandRecord | undefined;
  /** Every demand POST received, in order (also served at GET /_sim/journal). */
  journal(): DemandJournalEntry[];
  /** Resolves when every status run has finished (useful in tests). */
  whenIdle(): Promise<void>;
}

export const EKO_DEMAND_PATH = '/eko/payment-demands';
export const EKO_JOURNAL_PATH = '/_sim/journal';
export const K2_STATUS_PATH = '/restapi/services/k2req_status_from_eko';

/** Authorization header EKO uses towards K2, from K2's own API settings. */
export function k2AuthHeader(auth: Config['api']['auth']): string | undefined {
  if (auth.mode === 'basic') return `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  if (auth.mode === 'bearer') return `Bearer ${auth.token}`;
  return undefined;
}

class StoppedError extends Error {
  constructor() {
    super('EKO simulator stopped');
    this.name = 'StoppedError';
  }
}

const answer = (res: Response, httpStatus: number, error_code: number, error_text: string) => res.status(httpStatus).json({ error_code, error_text });

/** The fields that make two demands "the same" for idempotency; issued_at and evidence may be re-rendered on a retry. */
const sameDemand = (a: PaymentDemand, b: PaymentDemand) =>
  a.contract_number === b.contract_number && a.iban === b.iban && a.amount === b.amount && a.currency === b.currency && a.iinbin === b.iinbin;

export function createEkoSimulator(options: EkoSimulatorOptions): EkoSimulator {
  const { faults, statusDelayMs } = options;
  const scheduler = options.scheduler ?? realScheduler;
  const now = options.now ?? (() => new Date());
  const log = options.logger ?? createLogger('eko-sim');
  const retry: K2RetryPolicy = { maxAttempts: 8, initialDelayMs: 500, maxDelayMs: 30_000, ...options.k2Retry };
  const k2TimeoutMs = options.k2TimeoutMs ?? 10_000;
  const retryableCodes = new Set(options.k2RetryableCodes ?? [ERROR_CODES.TEMPORARILY_UNAVAILABLE.code]);
  const statusUrl = options.k2BaseUrl.replace(/\/+$/, '') + K2_STATUS_PATH;

  const demands = new Map<string, DemandRecord>();
  const journal = createDemandJournal();
  const runs = new Set<Promise<void>>();
  const timers = new Map<unknown, () => void>(); // handle → reject of the waiting promise
  const inFlight = new AbortController(); // aborts POSTs to K2 on close
  let stopped = false;
  let server: http.Server | undefined;

  /** A cancellable pause: rejects with StoppedError when the simulator closes. */
  const wait = (ms: number) =>
    new Promise<void>((resolve, reject) => {
      if (stopped) return reject(new StoppedError());
      const handle = scheduler.setTimeout(() => {
        timers.delete(handle);
        resolve();
      }, ms);
      timers.set(handle, () => reject(new StoppedError()));
    });

  function planFor(demand: PaymentDemand): PlannedStatus[] {
    const PC1: DemandStatusCode = 'PC1';
    const PC3: DemandStatusCode = 'PC3';
    let codes: string[];
    if (options.planStatuses) codes = options.planStatuses(demand);
    else if (faults.roll('silent')) codes = [];
    else if (faults.roll('onlyPc1')) codes = [PC1];
    else codes = faults.roll('pc3BeforePc1') ? [PC3, PC1] : [PC1, PC3];
    return codes.map((status_code) => ({ status_code, duplicate: faults.roll('duplicateStatus') }));
  }

  /** One status to K2, retried with exponential backoff while K2 is down or says "temporarily unavailable". */
  async function deliver(reference: string, status_code: string): Promise<StatusDelivery> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (options.k2AuthHeader) headers.Authorization = options.k2AuthHeader;
    let lastError = '';
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      if (attempt > 1) {
        const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 2));
        log.warn('status to K2 not delivered, retrying', { reference, status_code, attempt: attempt - 1, nextAttemptInMs: delay, reason: lastError });
        await wait(delay);
      }
      let httpStatus: number;
      let body: unknown;
      try {
        const res = await fetch(statusUrl, {
          method: 'POST',
          headers,
          body: JSON.stringify({ reference, status_code }),
          signal: AbortSignal.any([inFlight.signal, AbortSignal.timeout(k2TimeoutMs)]),
        });
        httpStatus = res.status;
        const text = await res.text();
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
      } catch (err) {
        if (stopped) throw new StoppedError();
        const e = err as Error & { cause?: { code?: string } };
        lastError = e.name === 'TimeoutError' ? `no answer within ${k2TimeoutMs} ms` : `K2 unreachable: ${e.cause?.code ?? e.message}`;
        continue;
      }
      const b = body as Partial<EkoAnswer> | undefined;
      const k2Answer: EkoAnswer | undefined =
        b && typeof b.error_code === 'number' ? { error_code: b.error_code, error_text: typeof b.error_text === 'string' ? b.error_text : '' } : undefined;
      const at = now().toISOString();

      if (httpStatus >= 500 || httpStatus === 429) {
        lastError = `K2 answered HTTP ${httpStatus}${k2Answer ? ` (error_code ${k2Answer.error_code}: ${k2Answer.error_text})` : ''}`;
        continue;
      }
      if (k2Answer && k2Answer.error_code === 0 && httpStatus < 300) {
        log.info('status delivered to K2', { reference, status_code, attempts: attempt });
        return { status_code, at, attempts: attempt, outcome: 'delivered', k2_answer: k2Answer };
      }
      if (k2Answer && (retryableCodes.has(k2Answer.error_code) || /temporar|unavailable/i.test(k2Answer.error_text))) {
        lastError = `K2 answered error_code ${k2Answer.error_code}: ${k2Answer.error_text}`;
        continue;
      }
      const why = k2Answer ? `error_code ${k2Answer.error_code}: ${k2Answer.error_text}` : `HTTP ${httpStatus} without {error_code, error_text}`;
      log.warn('K2 refused the status', { reference, status_code, attempts: attempt, httpStatus, reason: why });
      return { status_code, at, attempts: attempt, outcome: 'refused', k2_answer: k2Answer, error: why };
    }
    log.error('status to K2 given up', { reference, status_code, attempts: retry.maxAttempts, reason: lastError });
    return { status_code, at: now().toISOString(), attempts: retry.maxAttempts, outcome: 'gave_up', error: lastError };
  }

  /** Reports the planned statuses of one demand, statusDelayMs apart. */
  async function runStatuses(record: DemandRecord): Promise<void> {
    try {
      for (const step of record.plan) {
        await wait(statusDelayMs);
        for (let copy = 0; copy < (step.duplicate ? 2 : 1); copy++) {
          const delivery = await deliver(record.reference, step.status_code);
          record.sent.push(delivery);
          // K2 unreachable for the whole retry budget: later statuses would only repeat the failure.
          if (delivery.outcome === 'gave_up') {
            record.state = 'gave_up';
            return;
          }
        }
      }
      record.state = 'done';
    } catch (err) {
      if (err instanceof StoppedError) record.state = 'stopped';
      else {
        record.state = 'gave_up';
        log.error('status run failed', { reference: record.reference, err });
      }
    }
  }

  function startRun(record: DemandRecord) {
    const run = runStatuses(record).finally(() => runs.delete(run));
    runs.add(run);
  }

  const app = express();
  app.use(express.json({ limit: '1mb' }));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', demands: demands.size, pendingStatusRuns: runs.size });
  });

  app.post(EKO_DEMAND_PATH, async (req: Request, res: Response) => {
    const key = req.get('idempotency-key');
    const noted = (outcome: DemandOutcome) => journal.record(req.body, key, outcome, now());
    const latency = faults.get('latencyMs');
    if (latency > 0) await wait(latency);
    if (faults.roll('http5xx')) {
      noted('5xx');
      return answer(res, 503, EKO_ERROR.UNAVAILABLE, 'EKO temporarily unavailable (simulated fault)');
    }

    if (options.requiredAuthHeader && req.get('authorization') !== options.requiredAuthHeader) {
      noted('unauthorized');
      return answer(res, 401, EKO_ERROR.UNAUTHORIZED, 'missing or wrong Authorization');
    }
    const checked = validatePaymentDemand(req.body);
    if (!checked.ok) {
      noted('invalid');
      log.warn('demand refused: invalid', { problems: checked.problems });
      return answer(res, 400, EKO_ERROR.VALIDATION, checked.problems.join('; '));
    }
    const demand = checked.demand;
    if (key !== undefined && key !== demand.reference) {
      noted('invalid');
      return answer(res, 400, EKO_ERROR.VALIDATION, `Idempotency-Key: "${key}" differs from reference ${demand.reference}`);
    }

    const known = demands.get(demand.reference);
    if (known) {
      if (!sameDemand(known.demand, demand)) {
        noted('conflict');
        log.warn('demand refused: reference reused', { reference: demand.reference });
        return answer(
          res,
          409,
          EKO_ERROR.REFERENCE_CONFLICT,
          `reference ${demand.reference} was already used for a different demand (contract ${known.demand.contract_number})`,
        );
      }
      // An idempotent repeat (K2 retried after a lost answer): same answer, no second status run.
      known.repeats++;
      noted('repeat');
      log.info('demand repeated', { reference: demand.reference, repeats: known.repeats });
      return answer(res, 200, EKO_ERROR.OK, '');
    }

    if (faults.roll('reject')) {
      noted('refused-by-fault');
      log.info('demand rejected (simulated fault)', { reference: demand.reference });
      return answer(res, 200, EKO_ERROR.REJECTED, 'demand rejected by EKO (simulated fault)');
    }

    const record: DemandRecord = {
      reference: demand.reference,
      demand,
      received_at: now().toISOString(),
      repeats: 0,
      plan: planFor(demand),
      sent: [],
      state: 'sending',
    };
    demands.set(demand.reference, record);
    log.info('demand accepted', { reference: demand.reference, contract_number: demand.contract_number, plan: record.plan });
    startRun(record);

    if (faults.roll('http5xxAfterAccept')) {
      noted('accepted-then-5xx');
      return answer(res, 503, EKO_ERROR.UNAVAILABLE, 'EKO temporarily unavailable (simulated fault after accepting)');
    }
    noted('accepted');
    return answer(res, 200, EKO_ERROR.OK, '');
  });

  // What EKO received, in order, without personal data (simulators/eko/journal.ts).
  app.get(EKO_JOURNAL_PATH, (_req, res) => {
    res.json({ demands: journal.entries(), dropped: journal.dropped() });
  });

  app.get(EKO_DEMAND_PATH, (_req, res) => {
    // A summary without personal data; the full record is per reference.
    res.json(
      [...demands.values()].map((d) => ({
        reference: d.reference,
        contract_number: d.demand.contract_number,
        state: d.state,
        sent: d.sent.map((s) => `${s.status_code}:${s.outcome}`),
      })),
    );
  });

  app.get(`${EKO_DEMAND_PATH}/:reference`, (req, res) => {
    const record = demands.get(String(req.params.reference));
    if (!record) return answer(res, 404, EKO_ERROR.VALIDATION, `unknown reference ${req.params.reference}`);
    res.json(record);
  });

  app.use(faultControl(faults, EKO_FAULT_KEYS, (snapshot) => log.info('faults changed', { faults: snapshot })));

  // Malformed JSON and other body errors answer in EKO's shape, not as an HTML page.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    // A demand whose body could not be read was received all the same.
    if (req.method === 'POST' && req.path === EKO_DEMAND_PATH && !(err instanceof StoppedError))
      journal.record(undefined, req.get('idempotency-key'), 'invalid', now());
    if (err instanceof StoppedError) {
      if (!res.headersSent) answer(res, 503, EKO_ERROR.UNAVAILABLE, 'EKO simulator stopping');
      return;
    }
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) log.error('request failed', { err });
    answer(
      res,
      status,
      EKO_ERROR.VALIDATION,
      status === 500 ? 'internal error' : `body: ${err.type === 'entity.parse.failed' ? 'not valid JSON' : err.message}`,
    );
  });

  return {
    app,
    async listen(port: number, host = '127.0.0.1') {
      server = await listenOn(app, port, host);
      return portOf(server);
    },
    async close() {
      stopped = true;
      inFlight.abort();
      for (const [handle, cancel] of timers) {
        scheduler.clearTimeout(handle);
        cancel();
      }
      timers.clear();
      const s = server;
      server = undefined;
      await closeServer(s);
      await Promise.allSettled([...runs]);
    },
    demand: (reference) => demands.get(reference),
    journal: () => journal.entries(),
    async whenIdle() {
      while (runs.size > 0) await Promise.allSettled([...runs]);
    },
  };
}

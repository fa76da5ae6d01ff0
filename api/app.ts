/**
 * K2's HTTP facade (k2-integration.rst, "Сервисы для приема"): EKO posts overdue loans and
 * payment-demand statuses. Every answer is the spec's JSON { error_text, error_code }, also for
 * client mistakes (never an HTML page or a stack trace); codes are in error-codes.ts.
 */
import crypto from 'node:crypto';
import express, { NextFunction, Request, Response } from 'express';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Config } from '../config';
import type { Db } from '../db';
import { enqueueLoans } from '../db/outbox';
import { createColumnSealer } from '../db/sealed';
import { findDemand, recordDemandStatus } from '../db/demands';
import { formatProblems, validateLoans } from '../domain/loan';
import { validateStatusUpdate } from '../domain/demand-status';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { demandStatusSignal } from '../workflows/definitions';
import { answer, ErrorCodeName } from './error-codes';
import type { ArrivalRate } from './burst-hold';
import { jsonSyntaxReason } from './json-errors';
import { ClientRateLimit, clientKey, ConcurrencyLimit, opsAccess } from './limits';
import { openApiDocument } from './openapi';

export const MAX_LOANS_PER_REQUEST = 50_000;
const SIGNAL_DEADLINE_MS = 5_000;
/** Requests of at most this many loans log "loans accepted" at debug level, larger ones at info. */
const SMALL_REQUEST_ITEMS = 100;

/** How long /ready waits for Temporal: a readiness probe must answer in time, not after the client's ~20 s connect retries. */
export const READY_TEMPORAL_TIMEOUT_MS = 2000;

const SERVICE_ENDPOINTS: readonly string[] = ['k2loan_from_eko', 'k2req_status_from_eko'];

/**
 * The `endpoint` label of k2_api_requests_total: one of the services or 'unknown', never the raw path
 * a client sent (every distinct path would otherwise become a new, never-freed metric series).
 * Express matches routes case-insensitively and with an optional trailing slash, and so does this.
 */
function endpointLabel(path: string): string {
  const last = (path.replace(/\/+$/, '').split('/').pop() ?? '').toLowerCase();
  return SERVICE_ENDPOINTS.includes(last) ? last : 'unknown';
}

export interface ApiDeps {
  config: Config;
  db: Db;
  temporal: Client;
  logger: Logger;
  metrics: Metrics;
  /** Called after loans are committed, so the dispatcher sends them at once. */
  onLoansAccepted?: () => void;
  /** Hears of every service request (the dispatcher holds back during bursts: burst-hold.ts). */
  arrivals?: ArrivalRate;
  /** The rate limit's clock (ms); tests freeze it. */
  clock?: () => number;
}

function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

/** The client a request's valid credentials name (the user, or the one bearer token); undefined without them or when K2_API_AUTH=none. */
function authenticatedClient(req: Request, { mode, user, password, token }: Config['api']['auth']): string | undefined {
  const header = req.get('authorization') ?? '';
  if (mode === 'basic' && header.startsWith('Basic ') && safeEqual(Buffer.from(header.slice(6), 'base64').toString('utf8'), `${user}:${password}`)) return user;
  if (mode === 'bearer' && header.startsWith('Bearer ') && safeEqual(header.slice(7), token)) return 'bearer-token';
  return undefined;
}

export function createApp({ config, db, temporal, logger, metrics, onLoansAccepted, arrivals, clock = Date.now }: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const requests = metrics.counter('k2_api_requests_total', 'K2 API answers by endpoint and error_code.');
  const accepted = metrics.counter('k2_loans_accepted_total', 'Loan items durably accepted.');
  // The loans hold the client's personal data: sealed in K2's database with the payload keys.
  const columns = createColumnSealer(config.payloadKeys);
  const demandStatuses = metrics.counter('k2_demand_statuses_total', 'Demand statuses EKO reported and K2 recorded (k2req_status_from_eko), by status.');

  const send = (res: Response, endpoint: string, name: ErrorCodeName, text = '') => {
    const a = answer(name, text);
    requests.inc({ endpoint, error_code: a.body.error_code });
    res.status(a.http).json(a.body);
  };

  // Never limited: a liveness probe must not fail because K2 is busy.
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Under load: a refused request is answered before its body is read, so nothing of it is accepted.
  const concurrency = new ConcurrencyLimit(config.api.maxConcurrent);
  const rate = new ClientRateLimit(config.api.ratePerClient);
  const tooMany = (req: Request, res: Response, retryAfterSeconds: number, text: string) => {
    res.set('Retry-After', String(retryAfterSeconds));
    send(res, endpointLabel(req.path), 'TOO_MANY_REQUESTS', text);
  };
  app.use((req, res, next) => {
    if (!concurrency.tryEnter()) return tooMany(req, res, 1, `K2 is serving its limit of ${config.api.maxConcurrent} requests at once; retry later`);
    // 'close' comes once per response: when it is sent, or when the client went away before.
    res.once('close', () => concurrency.leave());
    const admission = rate.take(clientKey(authenticatedClient(req, config.api.auth), req.socket.remoteAddress), clock());
    if (!admission.ok)
      return tooMany(req, res, admission.retryAfterSeconds, `this client is over its ${config.api.ratePerClient} requests per second; retry later`);
    next();
  });

  // /metrics and /ready tell an outsider about K2's inside: guarded by their own setting (K2_API_OPS_AUTH).
  const opsGuard = (req: Request, res: Response, next: NextFunction) => {
    const access = opsAccess(
      config.api.ops.mode,
      { remoteAddress: req.socket.remoteAddress, authorization: req.get('authorization') },
      config.api.ops.token,
      safeEqual,
    );
    if (access === 'allowed') return next();
    if (access === 'forbidden') return send(res, 'unknown', 'FORBIDDEN', `${req.path} answers loopback clients only`);
    res.set('WWW-Authenticate', 'Bearer realm="k2-ops"');
    send(res, 'unknown', 'UNAUTHORIZED', `${req.path} requires Authorization: Bearer <K2_API_OPS_TOKEN>`);
  };
  app.get('/ready', opsGuard, async (_req, res) => {
    // Each check is ok or failed: the reason (which may name hosts, users or SQL) goes to the log only.
    const checks: Record<string, 'ok' | 'failed'> = {};
    const failed = (check: string) => (err: Error) => {
      logger.warn('readiness check failed', { check, err });
      checks[check] = 'failed';
    };
    await db.raw('select 1').then(() => (checks.database = 'ok'), failed('database'));
    await temporal.connection
      .withDeadline(Date.now() + READY_TEMPORAL_TIMEOUT_MS, () => temporal.connection.workflowService.getSystemInfo({}))
      .then(() => (checks.temporal = 'ok'), failed('temporal'));
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', opsGuard, (_req, res) => {
    res.type('text/plain; version=0.0.4').send(metrics.render());
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  const services = express.Router();
  if (arrivals) {
    services.use((_req, _res, next) => {
      arrivals.arrived(Date.now());
      next();
    });
  }
  services.use((req, res, next) => {
    const { mode } = config.api.auth;
    if (mode === 'none' || authenticatedClient(req, config.api.auth) !== undefined) return next();
    if (mode === 'basic') res.set('WWW-Authenticate', 'Basic realm="k2"');
    send(res, endpointLabel(req.path), 'UNAUTHORIZED', 'missing or wrong credentials');
  });
  // Body handling only on the services' own routes: a POST to an unknown path is NOT_FOUND, whatever its body.
  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json'))
      return send(res, endpointLabel(req.path), 'MALFORMED_REQUEST', `Content-Type must be application/json, got "${req.get('content-type') ?? 'none'}"`);
    next();
  };
  const jsonBody = express.json({ limit: config.api.bodyLimit, strict: false, type: 'application/json' });

  services.post('/k2loan_from_eko', requireJson, jsonBody, async (req, res) => {
    const endpoint = 'k2loan_from_eko';
    const result = validateLoans(req.body, { absSystems: config.api.absSystems, maxItems: MAX_LOANS_PER_REQUEST });
    if (!result.ok) {
      if (result.bodyProblem) {
        const tooMany = Array.isArray(req.body) && req.body.length > MAX_LOANS_PER_REQUEST;
        return send(res, endpoint, tooMany ? 'PAYLOAD_TOO_LARGE' : 'MALFORMED_REQUEST', result.bodyProblem);
      }
      logger.info('loans rejected', { problems: result.problems.length });
      return send(res, endpoint, 'VALIDATION', formatProblems(result.problems, 4000));
    }
    const requestId = crypto.randomUUID();
    try {
      await enqueueLoans(db, result.loans, requestId, undefined, columns);
    } catch (err) {
      logger.error('loans could not be recorded', { requestId, err });
      return send(res, endpoint, 'TEMPORARILY_UNAVAILABLE', 'the loans could not be recorded; nothing was accepted, retry later');
    }
    accepted.inc(undefined, result.loans.length);
    // Small requests (single items at hundreds per second) log at debug: a log line costs as much as the insert.
    (result.loans.length > SMALL_REQUEST_ITEMS ? logger.info : logger.debug)('loans accepted', { requestId, items: result.loans.length });
    onLoansAccepted?.();
    send(res, endpoint, 'OK');
  });

  services.post('/k2req_status_from_eko', requireJson, jsonBody, async (req, res) => {
    const endpoint = 'k2req_status_from_eko';
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      return send(res, endpoint, 'MALFORMED_REQUEST', 'must be one JSON object { reference, status_code }');
    }
    const result = validateStatusUpdate(req.body);
    if (!result.ok) {
      const text = formatProblems(result.problems, 4000);
      return send(res, endpoint, result.kind === 'unknown-status' ? 'UNKNOWN_STATUS_CODE' : 'VALIDATION', text);
    }
    try {
      const demand = await findDemand(db, result.reference);
      if (!demand) return send(res, endpoint, 'UNKNOWN_REFERENCE', `reference ${result.reference}: no payment demand with this reference was issued`);
      await recordDemandStatus(db, result.reference, result.status);
      demandStatuses.inc({ status: result.status });
      try {
        // A deadline, so that EKO hears "temporarily unavailable" in seconds when Temporal is away.
        await temporal.connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
          temporal.workflow.getHandle(demand.workflow_id).signal(demandStatusSignal, { reference: result.reference, status: result.status }),
        );
      } catch (err) {
        // A closed case still gets its status recorded in the database; nothing else to move.
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      logger.info('demand status recorded', { reference: result.reference, status: result.status });
      send(res, endpoint, 'OK');
    } catch (err) {
      logger.error('demand status could not be recorded', { reference: result.reference, err });
      send(res, endpoint, 'TEMPORARILY_UNAVAILABLE', 'the status could not be recorded; retry later');
    }
  });

  // Any other method (OPTIONS too: express would answer it itself, with a text/plain list of methods) or path under the services.
  const notFound = (req: Request, res: Response) => send(res, 'unknown', 'NOT_FOUND', `no endpoint ${req.method} ${req.baseUrl}${req.path}`);
  services.use(notFound);
  app.use('/restapi/services', services);

  app.use(notFound);
  // Express error handler: body-parser's errors are the client's; anything else is ours.
  app.use((err: Error & { type?: string; status?: number }, req: Request, res: Response, _next: NextFunction) => {
    const endpoint = endpointLabel(req.path);
    if (err.type === 'entity.too.large') return send(res, endpoint, 'PAYLOAD_TOO_LARGE', `the body exceeds ${config.api.bodyLimit}`);
    if (err.type === 'entity.parse.failed') return send(res, endpoint, 'MALFORMED_REQUEST', `the body is not valid JSON: ${jsonSyntaxReason(err.message)}`);
    if (err.status && err.status >= 400 && err.status < 500) return send(res, endpoint, 'MALFORMED_REQUEST', err.message);
    logger.error('unexpected API error', { endpoint, err });
    send(res, endpoint, 'INTERNAL', 'internal error; it has been logged');
  });
  return app;
}

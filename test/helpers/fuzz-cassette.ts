/**
 * What a schemathesis run against K2 did, read from its VCR cassette (`--report vcr
 * --report-preserve-bytes`), and the rule "nothing accepted from a rejected request" as pure
 * functions over it (test/e2e/fuzz-api.test.ts runs them against K2's database; test/unit/fuzz-cassette.test.ts
 * shows each can fail). A request is named by its cassette entry id (schemathesis's test case id).
 */
import YAML from 'yaml';

export const LOANS_PATH = '/restapi/services/k2loan_from_eko';
export const STATUS_PATH = '/restapi/services/k2req_status_from_eko';

/** One request of the run and K2's answer. */
export interface Exchange {
  id: string;
  method: string;
  path: string;
  /** The body as K2 received it (UTF-8), or undefined without one. */
  body?: string;
  /** The HTTP status, or undefined when no answer came (a network error or a timeout). */
  status?: number;
  /** K2's { error_code, error_text } when the answer was one. */
  answer?: { error_code: number; error_text: string };
  /** The checks that failed on this exchange, as schemathesis recorded them. */
  failedChecks: Array<{ name: string; message: string }>;
}

interface CassetteBody {
  string?: string;
  base64_string?: string;
}

function bodyText(body: CassetteBody | undefined): string | undefined {
  if (!body) return undefined;
  if (typeof body.base64_string === 'string') return Buffer.from(body.base64_string, 'base64').toString('utf8');
  return typeof body.string === 'string' ? body.string : undefined;
}

function parseAnswer(text: string | undefined): Exchange['answer'] {
  try {
    const a = JSON.parse(text ?? '');
    return typeof a?.error_code === 'number' && typeof a?.error_text === 'string' ? { error_code: a.error_code, error_text: a.error_text } : undefined;
  } catch {
    return undefined;
  }
}

/** The exchanges of a cassette, in the order they were sent. */
export function readCassette(yamlText: string): Exchange[] {
  const doc = YAML.parse(yamlText, { maxAliasCount: -1 }) as { http_interactions?: unknown[] } | null;
  return (doc?.http_interactions ?? []).map((raw) => {
    const it = raw as {
      id: string;
      request: { uri: string; method: string; body?: CassetteBody };
      response?: { status?: { code?: string | number }; body?: CassetteBody } | null;
      checks?: Array<{ name: string; status: string; message?: string | null }>;
    };
    const status = it.response?.status?.code === undefined ? undefined : Number(it.response.status.code);
    return {
      id: String(it.id),
      method: it.request.method,
      path: new URL(it.request.uri).pathname,
      body: bodyText(it.request.body),
      status,
      answer: it.response ? parseAnswer(bodyText(it.response.body)) : undefined,
      failedChecks: (it.checks ?? []).filter((c) => c.status === 'FAILURE').map((c) => ({ name: c.name, message: String(c.message ?? '') })),
    };
  });
}

/** A contract a loans body names, and whether its item says the loan is repaid (debt 0). */
export interface NamedContract {
  contract: string;
  repaid: boolean;
}

/** debt 0 in any form K2 accepts (0, 0.0, "0", "0.00"). */
const isZeroDebt = (debt: unknown): boolean => (typeof debt === 'number' && debt === 0) || (typeof debt === 'string' && /^0(\.0{1,2})?$/.test(debt));

/** The distinct contract numbers a loans body names (string contract_number of its object items, the first item of each), [] when it is not a JSON array. */
export function namedContracts(body: string | undefined): NamedContract[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const contracts = new Map<string, NamedContract>();
  for (const item of parsed) {
    if (item === null || typeof item !== 'object' || !Object.hasOwn(item, 'contract_number')) continue;
    const { contract_number: contract, debt } = item as { contract_number: unknown; debt?: unknown };
    if (typeof contract === 'string' && !contracts.has(contract)) contracts.set(contract, { contract, repaid: isZeroDebt(debt) });
  }
  return [...contracts.values()];
}

export const isAccepted = (e: Exchange): boolean => e.status === 200 && e.answer?.error_code === 0;

/** For each contract: the requests that got it accepted (those of them with the loan overdue, debt > 0) and those that named it and were rejected. */
export interface ContractTrail {
  accepted: string[];
  overdue: string[];
  rejected: string[];
}

/** The loans requests of the run by contract; `before` are contracts accepted before the run (one row each). */
export function contractTrails(exchanges: readonly Exchange[], before: readonly string[] = []): Map<string, ContractTrail> {
  const trails = new Map<string, ContractTrail>();
  const trail = (c: string) => trails.get(c) ?? trails.set(c, { accepted: [], overdue: [], rejected: [] }).get(c)!;
  for (const c of before) trail(c).accepted.push('(before the run)');
  for (const c of before) trail(c).overdue.push('(before the run)');
  for (const e of exchanges) {
    if (e.method !== 'POST' || e.path !== LOANS_PATH) continue;
    for (const { contract, repaid } of namedContracts(e.body)) {
      const t = trail(contract);
      if (!isAccepted(e)) t.rejected.push(e.id);
      else {
        t.accepted.push(e.id);
        if (!repaid) t.overdue.push(e.id);
      }
    }
  }
  return trails;
}

/**
 * The outbox against the run: a contract has exactly one outbox row per request that got it accepted
 * (an accepted request writes each of its contracts once, identical repeats collapse; a rejected one
 * writes nothing). A contract only rejected requests named must have no row; one that an accepted
 * request named too has that request's rows, and a rejected request adds none. Returns one line per
 * violation, naming the requests.
 */
export function outboxViolations(trails: ReadonlyMap<string, ContractTrail>, rowsByContract: ReadonlyMap<string, number>): string[] {
  const violations: string[] = [];
  const contracts = new Set([...trails.keys(), ...rowsByContract.keys()]);
  for (const c of contracts) {
    const { accepted, rejected } = trails.get(c) ?? { accepted: [], rejected: [] };
    const rows = rowsByContract.get(c) ?? 0;
    if (rows > accepted.length) {
      const from = rejected.length ? `rejected request(s) ${rejected.join(', ')}` : 'no request of the run';
      violations.push(
        `contract ${JSON.stringify(c)}: ${rows} outbox row(s), but only ${accepted.length} accepting request(s) (${accepted.join(', ') || 'none'}); the rest came from ${from}`,
      );
    } else if (rows < accepted.length) {
      violations.push(
        `contract ${JSON.stringify(c)}: ${rows} outbox row(s) for ${accepted.length} accepting request(s) (${accepted.join(', ')}): an accepted item is missing`,
      );
    }
  }
  return violations;
}

/**
 * The case workflows against the run: a case only for a contract some request got accepted, and one
 * for every contract accepted overdue (a repaid item closes an open case and starts none: api/dispatcher.ts).
 */
export function caseViolations(trails: ReadonlyMap<string, ContractTrail>, caseContracts: ReadonlySet<string>): string[] {
  const violations: string[] = [];
  for (const c of caseContracts) {
    const t = trails.get(c);
    if (!t?.accepted.length)
      violations.push(`case-${c}: a case for a contract no request got accepted (rejected: ${t?.rejected.join(', ') || 'no request named it'})`);
  }
  for (const [c, t] of trails)
    if (t.overdue.length && !caseContracts.has(c))
      violations.push(`contract ${JSON.stringify(c)}: accepted overdue by ${t.overdue.join(', ')} but it has no case`);
  return violations;
}

const STATUS_RANK: Record<string, number> = { issued: 0, sent: 1, PC1: 2, PC3: 3 };

/**
 * Demand statuses against the run: each demand's status is the highest of its status before the run
 * and the statuses accepted requests reported for it (statuses never move back); a rejected request
 * moves nothing. `before` and `after` map reference → status.
 */
export function demandStatusViolations(exchanges: readonly Exchange[], before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const expected = new Map(before);
  const rejectedBy = new Map<string, string[]>();
  for (const e of exchanges) {
    if (e.method !== 'POST' || e.path !== STATUS_PATH) continue;
    let body: { reference?: unknown; status_code?: unknown } | undefined;
    try {
      body = JSON.parse(e.body ?? '');
    } catch {
      continue;
    }
    if (typeof body?.reference !== 'string' || !expected.has(body.reference)) continue;
    const reference = body.reference;
    if (!isAccepted(e)) {
      rejectedBy.set(reference, [...(rejectedBy.get(reference) ?? []), e.id]);
      continue;
    }
    const status = String(body.status_code);
    if ((STATUS_RANK[status] ?? -1) > (STATUS_RANK[expected.get(reference)!] ?? -1)) expected.set(reference, status);
  }
  const violations: string[] = [];
  for (const [reference, status] of expected) {
    const actual = after.get(reference);
    if (actual !== status)
      violations.push(
        `demand ${reference}: status ${actual}, expected ${status} from the accepted requests (rejected ones naming it: ${rejectedBy.get(reference)?.join(', ') || 'none'})`,
      );
  }
  return violations;
}

/** Every check schemathesis recorded as failed, one line per request. */
export function failedCheckLines(exchanges: readonly Exchange[]): string[] {
  return exchanges
    .filter((e) => e.failedChecks.length > 0)
    .map(
      (e) => `${e.id} ${e.method} ${e.path} → ${e.status ?? 'no answer'}: ${e.failedChecks.map((c) => `${c.name}: ${c.message.split('\n')[0]}`).join('; ')}`,
    );
}

/** The README's error-code table ("| error_code | HTTP | meaning |") as code → HTTP status. */
export function readmeErrorCodes(readme: string): Record<number, number> {
  const header = '| error_code | HTTP | meaning |\n| --- | --- | --- |\n';
  const text = readme.replace(/\r\n/g, '\n');
  const start = text.indexOf(header);
  if (start < 0) throw new Error("README.md has no error-code table ('| error_code | HTTP | meaning |')");
  const codes: Record<number, number> = {};
  for (const row of text
    .slice(start + header.length)
    .split('\n\n')[0]
    .split('\n')) {
    const m = /^\| (\d+) \| (\d{3}) \|/.exec(row);
    if (!m) throw new Error(`README.md error-code table: cannot read the row ${JSON.stringify(row)}`);
    codes[Number(m[1])] = Number(m[2]);
  }
  return codes;
}

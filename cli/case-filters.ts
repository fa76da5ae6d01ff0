/**
 * `case list`'s filters as a visibility query, and the small decisions around it. Pure (unit-tested
 * in test/unit/cli-case-filters.test.ts): the query text, the validation of each filter (a wrong
 * stage or reason is an error naming the value and what is allowed), and what "stuck" means.
 */
import { ATTENTION_CODES, CASE_STAGES, caseWorkflowId, type CaseStage } from '../domain/case';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { UsageError } from './command';

/**
 * The resting stage: reported to GKB, the case waits for EKO to close it (repaid) for as long as it
 * takes. Not "stuck", so `--stuck-for` leaves it out unless it is asked for with --stage.
 */
export const RESTING_STAGE: CaseStage = 'reported-to-gkb';

export const CASE_TYPE_QUERY = 'WorkflowType="caseWorkflow"';

export interface CaseFilters {
  stages: string[];
  /** An attention code, or 'any' (K2NeedsAttention=true). */
  attention?: string;
  absSystem?: string;
  /** Only cases whose stage is older than this (ISO time). */
  stuckBefore?: string;
  /** Finished cases too (default: running ones only). */
  all: boolean;
  /** Raw visibility query, ANDed. */
  query?: string;
}

/** A value of a visibility query, quoted. */
export function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Checks the filters' values (each error names the option, the value and what is allowed). */
export function checkFilters(f: CaseFilters, absSystems: readonly string[]): void {
  for (const s of f.stages)
    if (!(CASE_STAGES as readonly string[]).includes(s)) throw new UsageError(`--stage "${s}": not a stage (one of ${CASE_STAGES.join(', ')})`);
  if (f.attention !== undefined && f.attention !== 'any' && !(ATTENTION_CODES as readonly string[]).includes(f.attention)) {
    throw new UsageError(`--attention "${f.attention}": not an attention reason (any, or one of ${ATTENTION_CODES.join(', ')})`);
  }
  if (f.absSystem !== undefined && !absSystems.includes(f.absSystem))
    throw new UsageError(`--abs-system "${f.absSystem}": not an ABS system of K2_ABS_SYSTEMS (${absSystems.join(', ')})`);
  if (f.query !== undefined && f.query.trim() === '') throw new UsageError('--query: empty');
}

/** The parts every variant of the list shares: the type, running or all, stage, attention, ABS system, the raw query. */
function baseParts(f: CaseFilters): string[] {
  const parts = [CASE_TYPE_QUERY];
  if (!f.all) parts.push('ExecutionStatus="Running"');
  if (f.stages.length === 1) parts.push(`${SEARCH_ATTRIBUTES.stage.name}=${quoted(f.stages[0])}`);
  if (f.stages.length > 1) parts.push(`${SEARCH_ATTRIBUTES.stage.name} IN (${f.stages.map(quoted).join(', ')})`);
  if (f.attention === 'any') parts.push(`${SEARCH_ATTRIBUTES.needsAttention.name}=true`);
  else if (f.attention) parts.push(`${SEARCH_ATTRIBUTES.attentionReason.name}=${quoted(f.attention)}`);
  if (f.absSystem) parts.push(`${SEARCH_ATTRIBUTES.absSystem.name}=${quoted(f.absSystem)}`);
  if (f.stuckBefore && f.stages.length === 0) parts.push(`${SEARCH_ATTRIBUTES.stage.name}!=${quoted(RESTING_STAGE)}`);
  if (f.query) parts.push(`(${f.query})`);
  return parts;
}

/** The visibility query of the filters (with --stuck-for: the cases that published K2StageSince older than the limit). */
export function listQuery(f: CaseFilters): string {
  const parts = baseParts(f);
  if (f.stuckBefore) parts.push(`${SEARCH_ATTRIBUTES.stageSince.name} < ${quoted(f.stuckBefore)}`);
  return parts.join(' AND ');
}

/**
 * With --stuck-for, the cases that never published K2StageSince (runs from before the patch
 * 'case-stage-since'): their last history event stands in for the moment their stage began.
 */
export function withoutStageSinceQuery(f: CaseFilters): string | undefined {
  if (!f.stuckBefore) return undefined;
  return [...baseParts(f), `${SEARCH_ATTRIBUTES.stageSince.name} IS NULL`].join(' AND ');
}

/** The `--limit` value: a whole number from 1 to 10,000. */
export function parseLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 10_000) throw new UsageError(`--limit "${text}": expected a whole number from 1 to 10000`);
  return Number(text);
}

/** A case's workflow id from what the operator typed: a contract number, or the workflow id itself. */
export function caseIdOf(text: string | undefined): { contract: string; workflowId: string } {
  if (!text) throw new UsageError('the contract number is missing');
  const contract = text.startsWith('case-') ? text.slice('case-'.length) : text;
  if (!/^[A-Za-z0-9][\w.\-/]{0,63}$/.test(contract)) throw new UsageError(`"${text}": not a contract number (letters, digits, . _ - /, up to 64)`);
  return { contract, workflowId: caseWorkflowId(contract) };
}

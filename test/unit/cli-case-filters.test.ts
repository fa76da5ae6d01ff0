/** cli/case-filters.ts: `case list`'s filters as a visibility query, each wrong value an error naming it. */
import { UsageError } from '../../cli/command';
import { ATTENTION_CODES } from '../../domain/case';
import { caseIdOf, checkFilters, listQuery, parseLimit, quoted, withoutStageSinceQuery, type CaseFilters } from '../../cli/case-filters';

const none: CaseFilters = { stages: [], all: false };

test('running cases by default; stage(s), attention, ABS system and the raw query ANDed', () => {
  expect(listQuery(none)).toBe('WorkflowType="caseWorkflow" AND ExecutionStatus="Running"');
  expect(
    listQuery({
      ...none,
      all: true,
      stages: ['received', 'closed'],
      attention: 'scan-missing',
      absSystem: 'colvir',
      query: 'StartTime > "2026-01-01T00:00:00Z" OR 1=1',
    }),
  ).toBe(
    'WorkflowType="caseWorkflow" AND K2Stage IN ("received", "closed") AND K2AttentionReason="scan-missing" AND K2AbsSystem="colvir" AND (StartTime > "2026-01-01T00:00:00Z" OR 1=1)',
  );
  expect(listQuery({ ...none, attention: 'any' })).toContain('K2NeedsAttention=true');
});

test('--stuck-for: the stage began before the limit, the resting stage left out unless asked for; cases without K2StageSince queried apart', () => {
  const stuck = { ...none, stuckBefore: '2026-12-01T10:00:00.000Z' };
  expect(listQuery(stuck)).toBe(
    'WorkflowType="caseWorkflow" AND ExecutionStatus="Running" AND K2Stage!="reported-to-gkb" AND K2StageSince < "2026-12-01T10:00:00.000Z"',
  );
  expect(withoutStageSinceQuery(stuck)).toBe(
    'WorkflowType="caseWorkflow" AND ExecutionStatus="Running" AND K2Stage!="reported-to-gkb" AND K2StageSince IS NULL',
  );
  expect(listQuery({ ...stuck, stages: ['reported-to-gkb'] })).toBe(
    'WorkflowType="caseWorkflow" AND ExecutionStatus="Running" AND K2Stage="reported-to-gkb" AND K2StageSince < "2026-12-01T10:00:00.000Z"',
  );
  expect(withoutStageSinceQuery(none)).toBeUndefined();
});

test('a value cannot break out of its quotes', () => {
  expect(quoted('a"b\\')).toBe('"a\\"b\\\\"');
});

test('a wrong stage, reason or ABS system is refused, naming the value and what is allowed', () => {
  expect(() => checkFilters({ ...none, stages: ['recieved'] }, ['way4'])).toThrow(
    new UsageError(
      '--stage "recieved": not a stage (one of received, client-checked, account-checked, evidence-collected, demand-issued, reported-to-gkb, closed)',
    ),
  );
  expect(() => checkFilters({ ...none, attention: 'scan-mising' }, ['way4'])).toThrow(
    /--attention "scan-mising": not an attention reason \(any, or one of client-unknown, .*scan-missing/,
  );
  expect(() => checkFilters({ ...none, absSystem: 'colvir' }, ['way4'])).toThrow(
    new UsageError('--abs-system "colvir": not an ABS system of K2_ABS_SYSTEMS (way4)'),
  );
  expect(() => checkFilters({ ...none, query: ' ' }, ['way4'])).toThrow('--query: empty');
  expect(() => checkFilters({ ...none, stages: ['closed'], attention: 'gkb-waiting', absSystem: 'way4' }, ['way4'])).not.toThrow();
  expect(ATTENTION_CODES).toContain('unclassified-failure');
});

test('a contract or its workflow id; anything else is refused', () => {
  expect(caseIdOf('KD0000000001')).toEqual({ contract: 'KD0000000001', workflowId: 'case-KD0000000001' });
  expect(caseIdOf('case-KD0000000001')).toEqual({ contract: 'KD0000000001', workflowId: 'case-KD0000000001' });
  expect(() => caseIdOf('KD 1" OR 1=1')).toThrow(UsageError);
  expect(() => caseIdOf(undefined)).toThrow('the contract number is missing');
});

test('--limit: 1 to 10000', () => {
  expect(parseLimit(undefined, 50)).toBe(50);
  expect(parseLimit('7', 50)).toBe(7);
  for (const bad of ['0', '-1', '1.5', 'ten', '10001']) expect(() => parseLimit(bad, 50)).toThrow(`--limit "${bad}": expected a whole number from 1 to 10000`);
});

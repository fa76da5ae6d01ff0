/** cli/output.ts: tables for people, one JSON array with --json, ages and durations. */
import { UsageError } from '../../cli/command';
import { formatAge, parseDuration, printTable, tableLines } from '../../cli/output';

test('ages in their two largest units', () => {
  expect(formatAge(45_000)).toBe('45s');
  expect(formatAge(12 * 60_000 + 5_000)).toBe('12m 05s');
  expect(formatAge(2 * 3600_000 + 5 * 60_000 + 59_000)).toBe('2h 05m');
  expect(formatAge(3 * 86_400_000 + 4 * 3600_000)).toBe('3d 04h');
  expect(formatAge(-5)).toBe('0s');
});

test("durations in the configuration's format; a bad one is a usage error naming the option", () => {
  expect(parseDuration('2h', '--stuck-for')).toBe(7_200_000);
  expect(parseDuration('30s')).toBe(30_000);
  expect(() => parseDuration('2 hours', '--stuck-for')).toThrow(new UsageError('--stuck-for: "2 hours" is not a duration (expected e.g. 30s, 15m, 2h or 3d)'));
  expect(() => parseDuration('0s', '--timeout')).toThrow(UsageError);
});

test('a table aligns its columns, shows a missing value as -, keeps a cell on one line', () => {
  expect(
    tableLines(
      ['contract', 'stage', 'note'],
      [
        { contract: 'KD1', stage: 'received', note: 'a\nb' },
        { contract: 'KD10000', stage: undefined, note: { n: 1 } },
      ],
    ),
  ).toEqual(['contract  stage     note', 'KD1       received  a b', 'KD10000   -         {"n":1}']);
});

test('with --json the rows themselves, every field, as one JSON array; an empty table says so', () => {
  const out: string[] = [];
  printTable({ json: true, out: (l) => out.push(l) }, ['a'], [{ a: 1, b: 2 }]);
  expect(JSON.parse(out.join('\n'))).toEqual([{ a: 1, b: 2 }]);
  const people: string[] = [];
  printTable({ json: false, out: (l) => people.push(l) }, ['a'], []);
  expect(people).toEqual(['(none)']);
});

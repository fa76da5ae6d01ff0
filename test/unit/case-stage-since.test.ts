/** workflows/case-rules.ts stageSinceAtStart: the moment of the stage a run starts in (patch 'case-stage-since'). */
import { stageSinceAtStart } from '../../workflows/case-rules';

const now = new Date('2026-12-01T12:00:00.000Z');
const t0 = new Date('2026-12-01T11:59:59.000Z');

test("the moment the run started with when it is of the same stage (the dispatcher's start, a continued run's predecessor)", () => {
  expect(stageSinceAtStart({ stage: 'received', since: t0 }, 'received', false, now)).toBe(t0);
  expect(stageSinceAtStart({ stage: 'account-checked', since: t0 }, 'account-checked', true, now)).toBe(t0);
});

test("a fresh run without it (or with another stage's: a new episode after a closed one) begins its stage now", () => {
  expect(stageSinceAtStart({}, 'received', false, now)).toBe(now);
  expect(stageSinceAtStart({ stage: 'closed', since: t0 }, 'received', false, now)).toBe(now);
});

test('a continued run whose predecessor never published it does not know it', () => {
  expect(stageSinceAtStart({ stage: 'account-checked' }, 'account-checked', true, now)).toBeUndefined();
});

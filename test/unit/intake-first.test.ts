/** The dispatcher's intake-first rule (api/intake-first.ts): pure, on a hand-driven clock. */
import { ArrivalRate, IntakeFirst } from '../../api/intake-first';

const settings = { rateLimit: 300, maxHoldMs: 5000, batch: 3, calmMs: 1000 };

test('the arrival rate follows a burst and falls to zero after it', () => {
  const rate = new ArrivalRate(250);
  let now = 1_000_000;
  for (let i = 0; i < 2000; i++) rate.arrived((now += 1)); // 1,000 per second for 2 s
  expect(rate.perSecond(now)).toBeGreaterThan(900);
  expect(rate.perSecond(now)).toBeLessThan(1100);
  expect(rate.perSecond(now + 600)).toBe(0);
});

test('a trickle is never held; a burst is held until a calm second after it', () => {
  const held: number[] = [];
  const rule = new IntakeFirst(settings, (ms) => held.push(ms));
  expect(rule.holds(0, 200)).toBe(false);
  expect(rule.holds(100, 1500)).toBe(true);
  // a dip inside the burst (the API's event loop paused) does not release the hold
  expect(rule.holds(600, 0)).toBe(true);
  expect(rule.holds(1099, 0)).toBe(true);
  expect(rule.holds(1100, 0)).toBe(false);
  expect(held).toEqual([1000]);
  expect(rule.holding).toBe(false);
});

test('a hold lasts at most maxHoldMs in a row, then a batch goes out before the next hold', () => {
  const rule = new IntakeFirst(settings);
  expect(rule.holds(0, 2000)).toBe(true);
  expect(rule.holds(4999, 2000)).toBe(true);
  expect(rule.holds(5000, 2000)).toBe(false);
  for (let i = 0; i < settings.batch; i++) {
    expect(rule.holds(5001 + i, 2000)).toBe(false);
    rule.started();
  }
  expect(rule.holds(5100, 2000)).toBe(true);
});

test('rateLimit 0 turns the rule off', () => {
  const rule = new IntakeFirst({ ...settings, rateLimit: 0 });
  expect(rule.holds(0, 1e9)).toBe(false);
  expect(rule.holding).toBe(false);
});

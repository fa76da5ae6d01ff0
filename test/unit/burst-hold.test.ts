/** The dispatcher's burst hold (api/burst-hold.ts): pure, on a hand-driven clock. */
import { ArrivalRate, BurstHold } from '../../api/burst-hold';

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
  const rule = new BurstHold(settings, (ms) => held.push(ms));
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
  const rule = new BurstHold(settings);
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
  const rule = new BurstHold({ ...settings, rateLimit: 0 });
  expect(rule.holds(0, 1e9, 0)).toBe(false);
  expect(rule.holding).toBe(false);
});

test('the run of arrivals begins at the first request after a calm second', () => {
  const rate = new ArrivalRate(250, 1000);
  expect(rate.activeSince()).toBeUndefined();
  rate.arrived(10_000);
  rate.arrived(10_400);
  rate.arrived(11_399); // each within a second of the one before: the same run
  expect(rate.activeSince()).toBe(10_000);
  rate.arrived(12_399); // a calm second before it: a new run
  expect(rate.activeSince()).toBe(12_399);
});

test("a burst's first requests are held before the rate shows it; a lone request's case waits settleMs", () => {
  const held: number[] = [];
  const rule = new BurstHold({ ...settings, settleMs: 250 }, (ms) => held.push(ms));
  // a burst after a calm: at its first request the measured rate is still low
  expect(rule.holds(1000, 4, 1000)).toBe(true);
  expect(rule.holds(1100, 1200, 1000)).toBe(true); // now the rate shows it
  expect(rule.holds(1400, 1500, 1000)).toBe(true); // past settleMs, held for the burst
  expect(rule.holds(2399, 0, 1000)).toBe(true);
  expect(rule.holds(2400, 0, 1000)).toBe(false);
  expect(held).toEqual([1400]);
  // a lone request later: held until settleMs after it, then its case starts
  expect(rule.holds(9000, 4, 9000)).toBe(true);
  expect(rule.holds(9249, 4, 9000)).toBe(true);
  expect(rule.holds(9250, 4, 9000)).toBe(false);
  // a steady trickle: its run began long ago, nothing is held
  expect(rule.holds(60_000, 20, 9000)).toBe(false);
  expect(held).toEqual([1400, 250]);
});

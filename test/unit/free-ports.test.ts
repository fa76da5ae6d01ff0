import { claimPort, freePort, freePorts } from '../../scripts/system';

test('freePorts: every service of one system gets a port of its own, also across calls', async () => {
  const sets = [await freePorts(), await freePorts(), await freePorts()];
  const ports = sets.flatMap((s) => Object.values(s));
  expect(new Set(ports).size).toBe(ports.length);
});

test('claimPort: a port claimed once (by freePort or a chosen port) is never claimed again', async () => {
  const port = await freePort();
  expect(claimPort(port)).toBe(false);
  const next = await freePort();
  expect(next).not.toBe(port);
  expect(claimPort(12_345)).toBe(true);
  expect(claimPort(12_345)).toBe(false);
});

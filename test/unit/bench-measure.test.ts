import { cpuDelta, cpuPerCase, ratioWithFloorWorkers } from '../../bench/measure';

test("cpuDelta: not-ours is the machine's busy CPU no process of the run used; the hypervisor's steal is shown apart, never as a process's", () => {
  const before = { worker: 1, temporal: 2, 'machine-busy': 10, 'machine-steal': 2 };
  const after = { worker: 4, temporal: 3, 'machine-busy': 19, 'machine-steal': 5 };
  expect(cpuDelta(before, after, 4000)).toEqual({
    worker: 3,
    temporal: 1,
    'machine-busy': 9,
    'machine-steal': 3,
    'not-ours': 5,
    wall: 4,
    'machine-capacity': expect.any(Number),
  });
});

test("cpuPerCase: a run's processes in workers, Temporal with its PostgreSQL, and the rest; machine readings, not-ours and wall left out", () => {
  const cluster = {
    'worker-1': 6,
    'worker-2': 4,
    'temporal-server': 3,
    postgres: 2,
    'api-1': 1,
    'abs-simulator': 0.5,
    'bench-client': 0.5,
    'machine-busy': 20,
    'machine-steal': 1,
    'machine-capacity': 30,
    'not-ours': 3,
    wall: 15,
    codec: NaN,
  };
  expect(cpuPerCase(cluster, 100)).toEqual({ workers: 100, temporal: 50, rest: 20, total: 170 });
  expect(cpuPerCase({ 'floor-worker-1': 2, temporal: 1 }, 100)).toEqual({ workers: 20, temporal: 10, rest: 0, total: 30 });
});

test("ratioWithFloorWorkers: the floor's CPU per case over K2's with K2's workers at the floor's cost", () => {
  const k2 = { workers: 60, temporal: 50, rest: 10, total: 120 };
  const floor = { workers: 30, temporal: 40, rest: 2, total: 72 };
  expect(ratioWithFloorWorkers(k2, floor)).toBeCloseTo(72 / 90);
});

import { cpuDelta } from '../../bench/measure';

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

import { consoleLine, createConsoleWarnings } from '../../scripts/console-warnings';

const notHealthy =
  '{"level":"error","ts":"2026-12-01T20:02:48.254Z","msg":"service failures","operation":"GetSystemInfo","error":"Frontend is not healthy yet","stacktrace":"go.temporal.io/server/common/log.(*zapLogger).Error\\n\\t/root/go/pkg/mod/..."}';

test("the Temporal server's errors reach the console only while it is up, without their Go stack trace", () => {
  const shown: string[] = [];
  const warnings = createConsoleWarnings((text) => shown.push(text));
  warnings.line('temporal-server', notHealthy); // starting
  warnings.temporalUp(true);
  warnings.line('temporal-server', notHealthy);
  warnings.temporalUp(false); // stopping
  warnings.line('temporal-server', notHealthy);
  expect(shown).toEqual([
    '[temporal-server] {"level":"error","ts":"2026-12-01T20:02:48.254Z","msg":"service failures","operation":"GetSystemInfo","error":"Frontend is not healthy yet"}',
  ]);
});

test("K2's own warnings and errors are shown whenever they come; info lines never", () => {
  const warn = '{"ts":"2026-12-01T20:02:50.000Z","level":"warn","component":"worker","msg":"ABS answered HTTP 503"}';
  expect(consoleLine('worker-1', warn, false)).toBe(`[worker-1] ${warn}`);
  expect(consoleLine('api-2', warn.replace('"warn"', '"info"'), true)).toBeUndefined();
  expect(consoleLine('temporal', 'time=… level=ERROR msg="x"', true)).toBe('[temporal] time=… level=ERROR msg="x"');
  expect(consoleLine('temporal', 'time=… level=ERROR msg="x"', false)).toBeUndefined();
});

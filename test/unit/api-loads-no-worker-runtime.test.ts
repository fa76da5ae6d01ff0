/**
 * The API is a client-only process: it must not load @temporalio/worker, the worker's native runtime
 * (temporal/native-connection.ts). Every module api/main.ts imports is loaded here with
 * @temporalio/worker replaced by a module that fails as it loads.
 */
const API_MAIN_IMPORTS = [
  '../../config',
  '../../db',
  '../../worker/startup-retry',
  '../../observability/logger',
  '../../observability/metrics',
  '../../observability/state-metrics',
  '../../temporal/connection',
  '../../api/app',
  '../../api/dispatcher',
  '../../api/burst-hold',
  '../../api/shutdown',
];

test("the API's modules load no part of @temporalio/worker", () => {
  jest.isolateModules(() => {
    jest.doMock('@temporalio/worker', () => {
      throw new Error('the API loaded @temporalio/worker');
    });
    for (const m of API_MAIN_IMPORTS) expect(() => require(m)).not.toThrow();
  });
});

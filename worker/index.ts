/**
 * The worker: runs case (and batch) workflows and their activities against ABS, EKO and the
 * document store. createCaseWorker is shared by the worker process and the tests.
 */
import path from 'node:path';
import { NativeConnection, Worker, WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config';
import { createActivities, ActivityDeps } from '../activities';
import { createAbsClient } from '../integrations/abs';
import { createEkoClient } from '../integrations/eko';
import { createDocumentStore } from '../documents/store';
import type { Db } from '../db';

export function workflowsPath(): string {
  // Works from the sources (ts-jest) and from dist/ alike.
  return require.resolve(path.join(__dirname, '..', 'workflows'));
}

export function buildActivityDeps(config: Config, db: Db): ActivityDeps {
  return {
    db,
    abs: createAbsClient({
      clientUrl: config.abs.clientUrl,
      accountsUrl: config.abs.accountsUrl,
      statementUrl: config.abs.statementUrl,
      scanUrl: config.abs.scanUrl,
      timeoutMs: config.abs.timeoutMs,
    }),
    eko: createEkoClient({ demandUrl: config.eko.demandUrl, timeoutMs: config.eko.timeoutMs }),
    documents: createDocumentStore({ db, dir: path.join(config.dataDir, 'documents') }),
  };
}

export async function createCaseWorker(
  config: Config,
  deps: ActivityDeps,
  connection: NativeConnection,
  overrides: Partial<WorkerOptions> = {},
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: workflowsPath(),
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: 100,
    ...overrides,
  });
}

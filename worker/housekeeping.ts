/**
 * What the worker tidies on its own: writes a crash left half done (documents/README.md, "Rules").
 * Staged scans and GKB files that were never committed, and GKB build folders (the demo's XML, ZIPs
 * not yet kept). Each worker sweeps what it reaches: its own folders, and with the pg store the
 * shared chunks, which several workers may sweep at once (deleting what is gone deletes nothing).
 */
import path from 'node:path';
import { sweepAbandonedBuilds, WRITES_SETTLED_MS } from '../activities/gkb';
import type { Config } from '../config';
import type { Db } from '../db';
import { sweepStagedChunks, sweepStagedFiles, type BlobStoreKind } from '../documents/blobs';
import type { Logger } from '../observability/logger';

export const SWEEP_EVERY_MS = 3600_000;

export interface SweepTargets {
  store: BlobStoreKind;
  db: Db;
  documentsDir: string;
  gkbDir: string;
}

export function sweepTargets(config: Config, db: Db): SweepTargets {
  return { store: config.documents.store, db, documentsDir: path.join(config.dataDir, 'documents'), gkbDir: path.join(config.dataDir, 'gkb') };
}

export interface Swept {
  /** Staged files (fs) or blobs (pg) never committed. */
  staged: number;
  buildFolders: number;
}

export async function sweepAbandonedWrites(t: SweepTargets, before: Date): Promise<Swept> {
  const staged =
    t.store === 'pg' ? await sweepStagedChunks(t.db, before) : (await sweepStagedFiles(t.documentsDir, before)) + (await sweepStagedFiles(t.gkbDir, before));
  return { staged, buildFolders: await sweepAbandonedBuilds(t.gkbDir, before) };
}

/** Sweeps at once and then every `everyMs`; stop() waits for a sweep under way. A failed sweep is logged and tried again next time. */
export function startHousekeeping(
  targets: SweepTargets,
  logger: Pick<Logger, 'info' | 'warn'>,
  { everyMs = SWEEP_EVERY_MS, abandonedAfterMs = WRITES_SETTLED_MS, now = Date.now } = {},
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= sweepAbandonedWrites(targets, new Date(now() - abandonedAfterMs))
      .then((swept) => {
        if (swept.staged || swept.buildFolders) logger.info('abandoned writes swept', { ...swept, abandonedAfterMs });
      })
      .catch((err: unknown) => logger.warn('sweeping abandoned writes failed; tried again later', { err: String((err as Error)?.message ?? err), everyMs }))
      .finally(() => {
        running = undefined;
      });
  };
  sweep();
  const timer = setInterval(sweep, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

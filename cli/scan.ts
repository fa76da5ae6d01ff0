/**
 * `scan get`: the scanned loan agreement of a case, from K2's document store (documents/), found by
 * the case's scan reference (sha256), written to a private file outside the repository (personal data).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createDocumentStore, DocumentNotFoundError } from '../documents/store';
import type { DocumentRef } from '../domain/case';
import type { Db } from '../db';
import { UsageError, type Command } from './command';
import { caseStatusOf, describeCase } from './case';
import { caseIdOf } from './case-filters';
import { packageRoot, PERSONAL_DATA_WARNING, privateFileProblem } from './case-history';
import { printJson } from './output';

/** The case's scan in K2's database, newest first (every episode's key starts with the workflow id). */
async function scanInDatabase(db: Db, workflowId: string): Promise<DocumentRef | undefined> {
  const row = await db('documents').where('case_id', 'like', `${workflowId}/%`).andWhere({ kind: 'dbz-scan' }).orderBy('id', 'desc').first();
  return row ? { sha256: row.sha256, size: Number(row.size), mediaType: row.media_type, fileName: row.file_name } : undefined;
}

const get: Command = {
  path: ['scan', 'get'],
  summary: 'the scanned loan agreement of a case to a private file (personal data)',
  usage: 'scan get <contract> --out FILE [--force]',
  description: [
    "Finds the case's scan reference (its caseStatus, or K2's database when no worker answers) and copies the",
    "document from K2's document store (K2_DOCUMENT_STORE, decrypted with the payload keys, its sha256 checked) to FILE:",
    "refused inside a git work tree, mode 0600. Needs the document store: run it where the worker's K2_DATA_DIR (fs) or database (pg) is.",
  ].join('\n'),
  options: {
    out: { type: 'string', short: 'o', description: 'the file to write (outside any repository)' },
    force: { type: 'boolean', description: 'replace the file if it exists' },
  },
  async run({ positionals, values }, ctx) {
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `one contract only (got ${positionals.length})` : 'the contract number is missing');
    const out = values.out;
    if (typeof out !== 'string' || !out) throw new UsageError('--out FILE is required');
    const problem = privateFileProblem(out, packageRoot());
    if (problem) throw new UsageError(`--out ${problem}`);
    if (fs.existsSync(out) && values.force !== true) throw new UsageError(`--out ${out} exists (give --force to replace it)`);
    const { contract, workflowId } = caseIdOf(positionals[0]);
    const client = await ctx.client();
    const described = await describeCase(client, contract, workflowId);
    const { status } = await caseStatusOf(client, workflowId, described);
    const db = await ctx.db();
    const scan = status?.scan ?? (await scanInDatabase(db, workflowId));
    if (!scan) {
      ctx.err(
        `k2 scan get: case ${contract} has no scan yet (stage ${status?.stage ?? 'unknown'}${status?.attention ? `, needs attention: ${status.attention.code}` : ''})`,
      );
      return 1;
    }
    const store = createDocumentStore({
      db,
      store: ctx.config.documents.store,
      dir: path.join(ctx.config.dataDir, 'documents'),
      fileKeys: ctx.config.payloadKeys,
    });
    if (!(await store.get(scan.sha256))) {
      ctx.err(
        `k2 scan get: document ${scan.sha256} is not in this document store (${ctx.config.documents.store === 'fs' ? path.join(ctx.config.dataDir, 'documents') : "K2's PostgreSQL database"}): run it with the worker's K2_DATA_DIR / K2_DOCUMENT_STORE`,
      );
      return 1;
    }
    if (fs.existsSync(out)) fs.rmSync(out);
    try {
      await pipeline(store.open(scan.sha256), fs.createWriteStream(out, { mode: 0o600, flags: 'wx' }));
    } catch (e) {
      fs.rmSync(out, { force: true });
      if (e instanceof DocumentNotFoundError) {
        ctx.err(`k2 scan get: ${e.message}`);
        return 1;
      }
      throw e;
    }
    fs.chmodSync(out, 0o600);
    ctx.err(`warning: ${out} ${PERSONAL_DATA_WARNING}`);
    const summary = { contract, sha256: scan.sha256, size: scan.size, mediaType: scan.mediaType, file: out };
    if (ctx.json) printJson(ctx, summary);
    else ctx.out(`wrote the scan of ${contract} (${scan.mediaType}, ${scan.size} bytes, sha256 ${scan.sha256}) to ${out}`);
    return 0;
  },
};

export const scanCommands: Command[] = [get];

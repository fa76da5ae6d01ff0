/**
 * `k2 files keys | re-encrypt` (README "Personal data and connections", documents/README.md "Key
 * rotation"): which payload key encrypts each stored scan and GKB file, and rewriting the files
 * under an older key with the current one before the older key leaves K2_PAYLOAD_KEYS. Names
 * (sha256 addresses, batch labels) and counts only.
 */
import { fileSpaces, IN_CLEAR, keyUsage, reEncryptFiles, type ReEncryptReport } from '../documents/re-encrypt';
import { EXIT, type CliContext, type Command } from './command';
import { printJson, printTable } from './output';

const STORE_NOTE = "Needs the file store: run it where the worker's K2_DATA_DIR (fs) or K2's database (pg) is, with the worker's K2_PAYLOAD_KEYS.";

const keys: Command = {
  path: ['files', 'keys'],
  summary: 'which payload key encrypts the stored scans and GKB files, with counts',
  usage: 'files keys [--json]',
  description: [
    `Counts the stored files by the key id in their header (${IN_CLEAR}: written before encryption, or by the demo without keys).`,
    'A key may leave K2_PAYLOAD_KEYS once no file (and no history still read) needs it; `files re-encrypt` moves files to the current key.',
    STORE_NOTE,
  ].join('\n'),
  options: {},
  async run(_args, ctx) {
    const usage = await keyUsage(await fileSpaces(ctx.config, await ctx.db()));
    if (ctx.json) printJson(ctx, usage);
    else {
      const configured = new Set(ctx.config.payloadKeys.map((k) => k.id));
      const rows = Object.entries(usage).flatMap(([space, byKey]) =>
        Object.entries(byKey).map(([keyId, files]) => ({
          space,
          key: keyId,
          files,
          configured: keyId === IN_CLEAR ? '-' : configured.has(keyId) ? 'yes' : 'NO',
        })),
      );
      printTable(ctx, ['space', 'key', 'files', 'configured'], rows);
      ctx.out(`current key (encrypts from now on): ${ctx.config.payloadKeys[0]?.id ?? 'none (demo: files are written in clear)'}`);
    }
    return EXIT.ok;
  },
};

const reEncrypt: Command = {
  path: ['files', 're-encrypt'],
  summary: 'rewrites stored scans and GKB files under an older key (or in clear) with the current key',
  usage: 'files re-encrypt [--dry-run] [--json]',
  description: [
    'Every file not encrypted with the first of K2_PAYLOAD_KEYS is decrypted, checked (a scan against its sha256),',
    'encrypted with it and put back under its name atomically; readers see the old bytes or the new. Safe to run again',
    'and while workers run. A GKB file waits until its batch has uploaded it (until then a retried build may replace it).',
    'Exit 1 when a file could not be rewritten (each is listed, the others are done).',
    STORE_NOTE,
  ].join('\n'),
  options: { 'dry-run': { type: 'boolean', description: 'count what would be rewritten; write nothing' } },
  async run({ values }, ctx) {
    if (ctx.config.payloadKeys.length === 0) {
      ctx.err('k2 files re-encrypt: no payload keys (K2_PAYLOAD_KEYS or K2_PAYLOAD_KEYS_FILE): nothing to encrypt with');
      return EXIT.failed;
    }
    const dryRun = values['dry-run'] === true;
    const report = await reEncryptFiles(await fileSpaces(ctx.config, await ctx.db()), ctx.config.payloadKeys, {
      dryRun,
      onFile: (done) => {
        if (done % 500 === 0) ctx.err(`files re-encrypt: ${done} looked at`);
      },
    });
    printReport(ctx, report, dryRun);
    return report.failed.length > 0 ? EXIT.failed : EXIT.ok;
  },
};

function printReport(ctx: CliContext, report: ReEncryptReport, dryRun: boolean): void {
  if (ctx.json) return printJson(ctx, { dryRun, ...report });
  ctx.out(
    `${dryRun ? 'would rewrite' : 'rewritten'} ${report.rewritten} file(s) with key ${report.keyId}; ${report.current} already under it; ${report.heldBack.length} held back; ${report.failed.length} failed`,
  );
  if (report.heldBack.length) printTable(ctx, ['space', 'file', 'why'], report.heldBack);
  if (report.failed.length) printTable(ctx, ['space', 'file', 'error'], report.failed);
}

export const filesCommands: Command[] = [keys, reEncrypt];

/**
 * GKB batch files: <Records> of <Contract>s (GKB document §3.1), written record by record to disk,
 * split at the package limits, validated against K2's XSD and zipped (the document accepts an XML
 * file or a ZIP holding it, §1 / §4).
 *
 * Limits (document §4 "Процесс загрузки данных", DOMAIN.md §5): a package is at most 100 MB and at
 * most 10,000 records; larger batches become several files. The document also asks for 10,000-50,000
 * contracts per file; the hard 10,000-record package limit wins.
 *
 * Memory: contracts are written in chunks of up to WRITE_CHUNK_BYTES (512 KiB of UTF-8, one
 * stream write per chunk instead of one per contract; stream backpressure respected), plus per file
 * the contract codes (≤ maxRecordsPerFile; their line numbers are found only for a file that fails
 * the XSD). Validation streams the finished
 * file from disk in one long-lived validator worker (integrations/gkb/xsd.ts), so this process never
 * holds a whole file, and the peak depends on the file limits, not on the batch size.
 *
 * At rest (issue 13): with `fileKeys` the ZIP K2 keeps is encrypted on its way to disk
 * (documents/encryption.ts); its sha256 and size stay those of the plaintext ZIP, the bytes GKB
 * receives (the upload decrypts it). With keys the XML, personal data in clear, has no name on disk:
 * it is unlinked as soon as it is opened and read back (validator, ZIP) through the open file, so it
 * is gone once the file is done, failed or its process died (XmlScratch).
 */
import { createHash } from 'node:crypto';
import { close as fsClose, createReadStream, createWriteStream, fstat, open as fsOpen, type WriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import * as yazl from 'yazl';
import { encryptStage, type FileKey } from '../../documents/encryption';
import { writeContractXml, type ContractRecord } from '../../domain/gkb/contract-record';
import { validateGkbXmlFd, type GkbXsdResult } from './xsd';

/** The file K2 built is not one GKB takes (the XSD, the file type, the size limit): a defect or bad data, not a passing fault. */
export class GkbFileInvalidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GkbFileInvalidError';
  }
}

export const GKB_MAX_RECORDS_PER_PACKAGE = 10_000;
export const GKB_MAX_PACKAGE_BYTES = 100 * 1024 * 1024;

export const XML_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<Records>\n';
export const XML_FOOTER = '</Records>\n';

export interface BatchFileInfo {
  /** The uploaded file's name (Latin only, §4.1.1 "не принимается наименование на кириллице"). */
  fileName: string;
  zipPath: string;
  /** Where the XML was built: the demo's named file; with keys it never had a lasting name and is gone. */
  xmlPath: string;
  /** sha256 (hex) of the ZIP, the file that is uploaded (the plaintext, also when it is kept encrypted). */
  sha256: string;
  records: number;
  /** Size of the (plaintext) ZIP in bytes. */
  bytes: number;
  xmlBytes: number;
  /** ContractCode of every record, in file order (to match GKB's per-record import results). */
  contractCodes: string[];
  /** Where the time went for this file: writing the XML (includes producing the records), XSD, ZIP. */
  timingsMs: { write: number; validate: number; zip: number };
}

export interface WriteBatchFilesOptions {
  records: AsyncIterable<ContractRecord> | Iterable<ContractRecord>;
  dir: string;
  /** The batch id; file names are fileNameFor(baseName, part). */
  baseName: string;
  /** Default and maximum 10,000 (GKB package limit). */
  maxRecordsPerFile?: number;
  /** Limit on the XML size (the ZIP is never larger for XML). Default and maximum 100 MiB. */
  maxBytes?: number;
  /** File type the records were built for: selects the XSD. Default 1. */
  fileType?: 1 | 3;
  /** Time stamp of the ZIP entry (pass a fixed one for reproducible files). Default: now. */
  mtime?: Date;
  /** config.payloadKeys: the ZIP is kept encrypted with the first. None (the demo only): kept in clear. */
  fileKeys?: readonly FileKey[];
}

// ---------------------------------------------------------------------------------------------
// File names
// ---------------------------------------------------------------------------------------------

/** Russian and Kazakh Cyrillic → Latin, so a batch id typed in Cyrillic still gives a valid name. */
const TRANSLIT: Record<string, string> = {
  а: 'a',
  б: 'b',
  в: 'v',
  г: 'g',
  д: 'd',
  е: 'e',
  ё: 'e',
  ж: 'zh',
  з: 'z',
  и: 'i',
  й: 'y',
  к: 'k',
  л: 'l',
  м: 'm',
  н: 'n',
  о: 'o',
  п: 'p',
  р: 'r',
  с: 's',
  т: 't',
  у: 'u',
  ф: 'f',
  х: 'kh',
  ц: 'ts',
  ч: 'ch',
  ш: 'sh',
  щ: 'shch',
  ъ: '',
  ы: 'y',
  ь: '',
  э: 'e',
  ю: 'yu',
  я: 'ya',
  ә: 'a',
  ғ: 'g',
  қ: 'q',
  ң: 'n',
  ө: 'o',
  ұ: 'u',
  ү: 'u',
  һ: 'h',
  і: 'i',
};

/** Cyrillic transliterated, spaces → "_"; throws if anything else outside [A-Za-z0-9._-] remains. */
export function latinFileNamePart(s: string): string {
  let out = '';
  for (const ch of s.trim()) {
    const lower = ch.toLowerCase();
    if (lower in TRANSLIT) {
      const t = TRANSLIT[lower];
      out += ch !== lower && t ? t[0].toUpperCase() + t.slice(1) : t;
    } else if (/\s/.test(ch)) out += '_';
    else out += ch;
  }
  if (!out || !/^[A-Za-z0-9._-]+$/.test(out)) {
    throw new RangeError(`GKB file names must be Latin letters, digits, ".", "_" or "-" (GKB document §4.1.1); cannot use ${JSON.stringify(s)}`);
  }
  return out;
}

/** `K2_<batchId>_<part>.zip`, part numbered from 1. */
export function fileNameFor(batchId: string, part: number): string {
  if (!Number.isSafeInteger(part) || part < 1) throw new RangeError(`part must be a positive integer, got ${part}`);
  return `K2_${latinFileNamePart(batchId)}_${part}.zip`;
}

// ---------------------------------------------------------------------------------------------
// One file as chunks
// ---------------------------------------------------------------------------------------------

/** The XML of one file, chunk by chunk: header, one chunk per <Contract>, footer. */
export async function* contractXmlChunks(records: AsyncIterable<ContractRecord> | Iterable<ContractRecord>): AsyncGenerator<string> {
  yield XML_HEADER;
  for await (const record of records) yield writeContractXml(record, 1);
  yield XML_FOOTER;
}

// ---------------------------------------------------------------------------------------------
// Batch files
// ---------------------------------------------------------------------------------------------

/**
 * Where a file's XML lives while it is built, validated and zipped. With keys it has no name on
 * disk: unlinked as soon as it is opened, it is reachable only through this process's open file and
 * is gone when the process closes it or dies, so a crashed build leaves no personal data in clear.
 * Without keys (the demo) it is a named file, kept for inspection when it fails the XSD.
 */
interface XmlScratch {
  /** Its name while it is opened; with keys it has none afterwards. */
  path: string;
  out: WriteStream;
  /** The whole XML from its start, as a stream. */
  read(): Readable;
  size(): Promise<number>;
  validate(fileType: 1 | 3): Promise<GkbXsdResult>;
  /** Closes it: the unnamed one disappears, the named one stays. */
  close(): Promise<void>;
}

async function openXmlScratch(xmlPath: string, unnamed: boolean): Promise<XmlScratch> {
  // A plain fd, not a FileHandle: a FileHandle's close() waits for streams that never release it when autoClose is off.
  const fd = unnamed ? await promisify(fsOpen)(xmlPath, 'wx+', 0o600) : await promisify(fsOpen)(xmlPath, 'w+');
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= promisify(fsClose)(fd));
  if (unnamed) {
    try {
      await unlink(xmlPath);
    } catch (err) {
      await close();
      throw err;
    }
  }
  return {
    path: xmlPath,
    out: createWriteStream('', { fd, autoClose: false, highWaterMark: WRITE_HIGH_WATER_MARK }),
    read: () => createReadStream('', { fd, start: 0, autoClose: false }),
    size: async () => (await promisify(fstat)(fd)).size,
    validate: (fileType) => validateGkbXmlFd(fd, { fileType }),
    close,
  };
}

interface OpenPart {
  part: number;
  fileName: string;
  xml: XmlScratch;
  zipPath: string;
  out: WriteStream;
  /** UTF-8 of the contracts not yet handed to the stream: pending[0, pendingBytes). */
  pending: Buffer;
  pendingBytes: number;
  bytes: number;
  contractCodes: string[];
  startedAt: number;
}

/**
 * Contracts are encoded (UTF-8) into chunks of this many bytes (~190 contracts) before one stream
 * write: a write per contract (~2.7 KB) costs a stream round trip each and, with the default 16 KiB
 * high-water mark, a wait for 'drain' every few contracts. Encoding each contract straight into the
 * chunk also gives its byte length (for the size limit) without a separate Buffer.byteLength pass,
 * and the stream gets bytes, not a string to convert again.
 */
const WRITE_CHUNK_BYTES = 512 * 1024;
/** The XML stream's buffer: a few chunks, so encoding the next chunk overlaps with the disk write. */
const WRITE_HIGH_WATER_MARK = 2 * WRITE_CHUNK_BYTES;

async function write(out: WriteStream, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** Hands the pending bytes to the stream; the stream keeps that Buffer, so a new one is started. */
async function flushPending(p: OpenPart): Promise<void> {
  if (p.pendingBytes === 0) return;
  const chunk = p.pending.subarray(0, p.pendingBytes);
  p.pending = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
  p.pendingBytes = 0;
  await write(p.out, chunk);
}

/** Appends encoded bytes to the part's pending chunk, writing the chunk out when it is full. */
async function appendBytes(p: OpenPart, bytes: Buffer): Promise<void> {
  if (p.pendingBytes + bytes.length > p.pending.length) await flushPending(p);
  if (bytes.length > p.pending.length) {
    await write(p.out, Buffer.from(bytes)); // a contract larger than a chunk: on its own
    return;
  }
  p.pendingBytes += bytes.copy(p.pending, p.pendingBytes);
}

/**
 * 1-based line of each contract's <Contract> tag in a written file, to name the contract in an XSD
 * error. Computed only when a file fails (streamed from disk), not for every contract written: each
 * contract starts on a line beginning with CONTRACT_LINE_START (writeContractXml at depth 1, which
 * escapes "<" and line breaks in values), and no other line does.
 */
async function contractStartLines(xml: XmlScratch): Promise<number[]> {
  const starts: number[] = [];
  let line = 0;
  // Our files hold no raw "\r" (escapeXml writes &#13;), so readline's breaks are the "\n"s.
  for await (const text of createInterface({ input: xml.read().setEncoding('utf8'), crlfDelay: Infinity })) {
    line++;
    if (text.startsWith(CONTRACT_LINE_START)) starts.push(line);
  }
  return starts;
}
const CONTRACT_LINE_START = '  <Contract ';

/**
 * Writes the records as one or more validated GKB files (XML + ZIP). Throws on the first file that
 * fails the XSD, naming the file, the lines, the contracts and the first problems; the files
 * returned before it are complete. No file is produced for zero records (<Records> needs one).
 */
export async function writeBatchFiles(options: WriteBatchFilesOptions): Promise<BatchFileInfo[]> {
  const maxRecords = options.maxRecordsPerFile ?? GKB_MAX_RECORDS_PER_PACKAGE;
  const maxBytes = options.maxBytes ?? GKB_MAX_PACKAGE_BYTES;
  const fileType = options.fileType ?? 1;
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1 || maxRecords > GKB_MAX_RECORDS_PER_PACKAGE) {
    throw new RangeError(`maxRecordsPerFile must be 1..${GKB_MAX_RECORDS_PER_PACKAGE} (GKB package limit), got ${maxRecords}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024 || maxBytes > GKB_MAX_PACKAGE_BYTES) {
    throw new RangeError(`maxBytes must be 1024..${GKB_MAX_PACKAGE_BYTES} (GKB package limit 100 MB), got ${maxBytes}`);
  }
  fileNameFor(options.baseName, 1); // reject a bad batch id before writing anything
  await mkdir(options.dir, { recursive: true });

  const headerBytes = Buffer.byteLength(XML_HEADER);
  const footerBytes = Buffer.byteLength(XML_FOOTER);
  const done: BatchFileInfo[] = [];
  let current: OpenPart | undefined;
  /** Each contract's UTF-8, before it is copied into the part's pending chunk. */
  let scratch = Buffer.allocUnsafe(64 * 1024);

  const openPart = async (part: number): Promise<OpenPart> => {
    const fileName = fileNameFor(options.baseName, part);
    const stem = fileName.replace(/\.zip$/, '');
    const xml = await openXmlScratch(path.join(options.dir, `${stem}.xml`), Boolean(options.fileKeys?.length));
    const p: OpenPart = {
      part,
      fileName,
      xml,
      zipPath: path.join(options.dir, fileName),
      out: xml.out,
      pending: Buffer.allocUnsafe(WRITE_CHUNK_BYTES),
      pendingBytes: 0,
      bytes: headerBytes,
      contractCodes: [],
      startedAt: performance.now(),
    };
    await appendBytes(p, Buffer.from(XML_HEADER));
    return p;
  };

  const finishPart = async (p: OpenPart): Promise<void> => {
    try {
      await completePart(p);
    } finally {
      await p.xml.close();
    }
  };

  const completePart = async (p: OpenPart): Promise<void> => {
    await appendBytes(p, Buffer.from(XML_FOOTER));
    await flushPending(p);
    p.out.end();
    await once(p.out, 'finish');
    const written = performance.now();
    const xmlBytes = await p.xml.size();
    // Validated from disk by the validator worker: the file is never read into this process.
    const check = await p.xml.validate(fileType);
    if (!check.valid) {
      const failure = describeXsdFailure(p, check.errors, await contractStartLines(p.xml));
      if (!options.fileKeys?.length) throw new GkbFileInvalidError(failure);
      // The XML had no name and goes when it is closed. The records stay queued: a rebuild reproduces it.
      throw new GkbFileInvalidError(`${failure} (the XML is not kept, K2 keeps no personal data in clear; building the batch again reproduces it)`);
    }
    const validated = performance.now();
    const zip = await zipFile(p.xml, xmlBytes, p.zipPath, path.basename(p.xml.path), options.mtime ?? new Date(), options.fileKeys);
    done.push({
      fileName: p.fileName,
      zipPath: p.zipPath,
      xmlPath: p.xml.path,
      sha256: zip.sha256,
      records: p.contractCodes.length,
      bytes: zip.bytes,
      xmlBytes,
      contractCodes: p.contractCodes,
      timingsMs: { write: written - p.startedAt, validate: validated - written, zip: performance.now() - validated },
    });
  };

  try {
    for await (const record of options.records) {
      if (record.fileType !== fileType) {
        throw new GkbFileInvalidError(
          `contract ${record.general.contractCode} was built for file type ${record.fileType}, this batch is type ${fileType}: one-day records need their own file (GKB document §6)`,
        );
      }
      const chunk = writeContractXml(record, 1);
      // UTF-8 is at most 3 bytes per UTF-16 unit, so the scratch buffer sized below always fits.
      if (scratch.length < chunk.length * 3) scratch = Buffer.allocUnsafe(chunk.length * 3);
      const chunkBytes = scratch.write(chunk, 0, 'utf8');
      if (headerBytes + chunkBytes + footerBytes > maxBytes) {
        throw new GkbFileInvalidError(`contract ${record.general.contractCode} alone (${chunkBytes} bytes) exceeds the file size limit of ${maxBytes} bytes`);
      }
      if (current && (current.contractCodes.length >= maxRecords || current.bytes + chunkBytes + footerBytes > maxBytes)) {
        await finishPart(current);
        current = undefined;
      }
      if (!current) current = await openPart(done.length + 1);
      current.contractCodes.push(record.general.contractCode);
      await appendBytes(current, scratch.subarray(0, chunkBytes));
      current.bytes += chunkBytes;
    }
    if (current) {
      const last = current;
      current = undefined;
      await finishPart(last);
    }
  } finally {
    if (current && !current.out.closed) current.out.destroy();
    await current?.xml.close().catch(() => undefined);
  }
  return done;
}

function describeXsdFailure(p: OpenPart, errors: string[], startLines: number[]): string {
  const first = errors.slice(0, 5).map((e) => {
    const m = /^line (\d+):/.exec(e);
    if (!m) return e;
    const code = contractAtLine(p, startLines, Number(m[1]));
    return code === undefined ? e : `${e} (contract ${code})`;
  });
  const more = errors.length > first.length ? ` … and ${errors.length - first.length} more` : '';
  return `GKB file ${p.fileName} (${p.xml.path}) fails the XSD: ${first.join('; ')}${more}`;
}

/** The contract whose XML holds `line` (binary search over the start lines). */
function contractAtLine(p: OpenPart, startLines: number[], line: number): string | undefined {
  let lo = 0;
  let hi = startLines.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (startLines[mid] <= line) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found >= 0 ? p.contractCodes[found] : undefined;
}

/** Streams the XML into a one-entry ZIP, hashing the ZIP bytes (before encryption) on the way to disk. */
async function zipFile(
  xml: XmlScratch,
  size: number,
  zipPath: string,
  entryName: string,
  mtime: Date,
  fileKeys: readonly FileKey[] | undefined,
): Promise<{ sha256: string; bytes: number }> {
  const zip = new yazl.ZipFile();
  zip.addReadStream(xml.read(), entryName, { mtime, size, compress: true });
  zip.end();
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(zip.outputStream, tap, encryptStage(fileKeys), createWriteStream(zipPath));
  return { sha256: hash.digest('hex'), bytes };
}

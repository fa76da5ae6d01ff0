/**
 * Validates GKB batch files against K2's own XSD (DOMAIN.md §8 G4) with libxml2 compiled to
 * WebAssembly (xmllint-wasm). GKB checks every file against its XSD first and rejects the whole file
 * on a structural error (document §4, step 1), so we do the same before uploading.
 *
 * Two schemas: file type 1 (gkb-records.xsd) and type 3, one-day (gkb-records-oneday.xsd, §6
 * "в отдельной схеме"); both include gkb-common.xsd.
 */
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { memoryPages } from 'xmllint-wasm';

export interface GkbXsdResult {
  valid: boolean;
  /** "line N: <libxml2 message>", in document order. Empty when valid. */
  errors: string[];
}

export interface ValidateGkbXmlOptions {
  /** Which schema: 1 credit contracts (default), 3 one-day upload. */
  fileType?: 1 | 3;
}

/**
 * The .xsd files sit beside this module in the source tree; tsc does not copy them to dist/, so a
 * compiled module (dist/integrations/gkb) looks them up in the source tree it was built from.
 */
export const GKB_SCHEMA_DIR =
  [
    path.join(__dirname, 'schema'),
    path.resolve(__dirname, '..', '..', '..', 'integrations', 'gkb', 'schema'),
    path.resolve(process.cwd(), 'integrations', 'gkb', 'schema'),
  ].find((dir) => existsSync(path.join(dir, 'gkb-records.xsd'))) ?? path.join(__dirname, 'schema');
const SCHEMA_FILES = { 1: 'gkb-records.xsd', 3: 'gkb-records-oneday.xsd' } as const;
const COMMON_FILE = 'gkb-common.xsd';

interface LoadedSchemas {
  common: string;
  byType: Record<1 | 3, string>;
}
let schemas: Promise<LoadedSchemas> | undefined;

/** Reads the XSD files once per process (they are part of the build, not configuration). */
function loadSchemas(): Promise<LoadedSchemas> {
  if (!schemas) {
    schemas = (async () => {
      const [common, one, three] = await Promise.all([
        readFile(path.join(GKB_SCHEMA_DIR, COMMON_FILE), 'utf8'),
        readFile(path.join(GKB_SCHEMA_DIR, SCHEMA_FILES[1]), 'utf8'),
        readFile(path.join(GKB_SCHEMA_DIR, SCHEMA_FILES[3]), 'utf8'),
      ]);
      return { common, byType: { 1: one, 3: three } };
    })();
    schemas.catch(() => {
      schemas = undefined; // let a later call retry a failed read
    });
  }
  return schemas;
}

const XML_FILE_NAME = 'gkb-batch.xml';
/** 64 MiB of wasm heap for the streaming validator (see below). */
const MAX_MEMORY_PAGES = 64 * memoryPages.MiB;

/**
 * Validates one GKB XML document. Resolves { valid: false, errors } for invalid or malformed XML;
 * rejects only when the validator itself fails (e.g. out of memory).
 *
 * Memory: xmllint-wasm's default heap (16 MiB initial, 32 MiB max) cannot hold the DOM of a full
 * file of 10,000 contracts (~27 MB of XML needs ~300 MB of wasm heap as a DOM; libxml2 then reports
 * the failed allocation as a parse error). We use libxml2's streaming reader (--stream) instead:
 * its heap does not depend on the document size (the input sits in the JS-side MEMFS, not in the
 * wasm heap), so a fixed 64 MiB cap is plenty; measured: a 27 MB file validates even in 16 MiB.
 */
export async function validateGkbXml(xml: string | Buffer, options: ValidateGkbXmlOptions = {}): Promise<GkbXsdResult> {
  const contents = typeof xml === 'string' ? xml : new Uint8Array(xml.buffer, xml.byteOffset, xml.byteLength);
  const bytes = typeof xml === 'string' ? Buffer.byteLength(xml) : xml.byteLength;
  return validate({ contents }, bytes, options);
}

/**
 * Validates a GKB XML file on disk, like validateGkbXml. The validator worker reads the file itself,
 * so this thread never holds it (a file may be up to 100 MB) and it is not copied between threads.
 */
export async function validateGkbXmlFile(xmlPath: string, options: ValidateGkbXmlOptions = {}): Promise<GkbXsdResult> {
  const file = await open(xmlPath, 'r');
  try {
    return await validateGkbXmlFd(file.fd, options);
  } finally {
    await file.close();
  }
}

/**
 * Validates the XML in an open file of this process (read from its start; the caller keeps it open
 * until this returns and closes it): a file with no name on disk (batch-file.ts) is read like one.
 */
export async function validateGkbXmlFd(xmlFd: number, options: ValidateGkbXmlOptions = {}): Promise<GkbXsdResult> {
  return validate({ xmlFd }, undefined, options);
}

async function validate(
  input: { contents?: string | Uint8Array; xmlFd?: number },
  bytes: number | undefined,
  options: ValidateGkbXmlOptions,
): Promise<GkbXsdResult> {
  const fileType = options.fileType ?? 1;
  if (fileType !== 1 && fileType !== 3) throw new RangeError(`no GKB schema for file type ${String(fileType)}`);
  const { common, byType } = await loadSchemas();

  let result: XmllintOutput;
  try {
    result = await runXmllint({
      ...input,
      // The same command line xmllint-wasm's validateXML({ schema, stream: true }) builds.
      args: ['--schema', SCHEMA_FILES[fileType], '--noout', '--stream', XML_FILE_NAME],
      files: [
        { fileName: SCHEMA_FILES[fileType], contents: byType[fileType] },
        { fileName: COMMON_FILE, contents: common },
      ],
      initialMemory: memoryPages.defaultInitialMemoryPages,
      maxMemory: MAX_MEMORY_PAGES,
    });
  } catch (e) {
    // xmllint exits with 1 (XMLLINT_ERR_UNCLASS) when the document cannot be parsed: not
    // well-formed XML is an answer about the file. Other codes (5 schema did not compile, 9 out of
    // memory, ...) are failures of the validator and are thrown.
    const err = e as Error & { code?: number };
    // libxml2 reports a failed allocation as an error at the current line, so check the text first.
    if (/memory/i.test(String(err.message ?? ''))) {
      const size = bytes ?? (input.xmlFd !== undefined ? `open file ${input.xmlFd}:` : '?');
      throw new Error(`GKB XSD validation ran out of memory (${size} bytes of XML, max ${MAX_MEMORY_PAGES} wasm pages): ${String(err.message).slice(0, 300)}`);
    }
    if (err.code === 1) {
      return { valid: false, errors: ['not well-formed XML', ...formatErrors(String(err.message ?? '').split('\n'))] };
    }
    throw err;
  }
  if (result.valid) return { valid: true, errors: [] };
  // As xmllint-wasm's parseErrors: every stderr line but the last two ("… fails to validate", "").
  const errors = formatErrors(result.stderr.split('\n').slice(0, -2));
  return { valid: false, errors: errors.length ? errors : [result.stderr.trim() || 'invalid (xmllint gave no message)'] };
}

// ---------------------------------------------------------------------------------------------
// The validator worker
// ---------------------------------------------------------------------------------------------
//
// xmllint-wasm's validateXML starts a new worker thread per call: a new V8 isolate, a fresh
// compilation of the 1.5 MB wasm module, the XML copied into the worker, and (glibc) often a new
// malloc arena that keeps its pages after the thread ends. Per batch file that is ~0.1 s and
// tens of MiB of RSS that grow with the number of files. Here one long-lived worker runs the same
// Emscripten module (xmllint-wasm's xmllint-node.js, a fresh instance and wasm heap per run, so no
// state is shared between runs) with the compiled WebAssembly.Module kept, one run at a time.
// The worker is unref'd while idle (it never keeps the process alive) and ends after
// WORKER_IDLE_MS without work, giving its memory back.

const WORKER_IDLE_MS = 10_000;
const MESSAGE_KEY = 'k2-gkb-xsd';

interface XmllintJob {
  contents?: string | Uint8Array;
  /** An fd of this process (worker threads share them), read from offset 0 and left open. */
  xmlFd?: number;
  args: string[];
  files: Array<{ fileName: string; contents: string }>;
  initialMemory: number;
  maxMemory: number;
}
interface XmllintOutput {
  valid: boolean;
  stderr: string;
}

/** Runs in the worker (plain JS, eval'd): one xmllint main() per message. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Module = require(workerData.xmllintPath);
const KEY = ${JSON.stringify(MESSAGE_KEY)};
let compiled;
function instantiateWasm(imports, receive) {
  compiled ??= new WebAssembly.Module(fs.readFileSync(workerData.wasmPath));
  WebAssembly.instantiate(compiled, imports).then((instance) => receive(instance, compiled), (e) => done({ exitCode: -1, stderr: 'WASM instantiate: ' + e }));
  return {};
}
let done = () => {};
parentPort.on('message', (job) => {
  if (!job || job[KEY] !== true) return;
  let stderr = '';
  let answered = false;
  done = (m) => {
    if (answered) return;
    answered = true;
    parentPort.postMessage({ [KEY]: true, id: job.id, ...m });
  };
  try {
    let inputFiles = job.files;
    let onRuntimeInitialized;
    if (job.xmlFd !== undefined) {
      // The file is read from disk as libxml2's stream reader asks for it (a character device in
      // the Emscripten FS), 1 MiB at a time: neither this thread nor the wasm heap holds it whole.
      // Reads give their position: the caller's fd may have been written up to its end.
      const fd = job.xmlFd;
      const buf = Buffer.allocUnsafe(1024 * 1024);
      let len = 0;
      let pos = 0;
      let offset = 0;
      let eof = false;
      const input = () => {
        if (pos === len) {
          if (eof) return null;
          len = fs.readSync(fd, buf, 0, buf.length, offset);
          offset += len;
          pos = 0;
          if (len === 0) {
            eof = true;
            return null;
          }
        }
        return buf[pos++];
      };
      onRuntimeInitialized = function () { this.FS_createDevice('/', job.xmlName, input); };
    } else {
      inputFiles = [{ fileName: job.xmlName, contents: job.contents }, ...job.files];
    }
    const module = {
      inputFiles,
      arguments: job.args,
      print() {},
      printErr(text) { stderr += text + '\\n'; },
      onExit(exitCode) { done({ exitCode, stderr }); },
      onAbort(reason) { done({ exitCode: -1, stderr: 'WASM Abort: ' + reason }); },
      wasmMemory: new WebAssembly.Memory({ initial: job.initialMemory, maximum: job.maxMemory }),
      instantiateWasm,
    };
    if (onRuntimeInitialized) module.onRuntimeInitialized = onRuntimeInitialized.bind(module);
    const run = Module(module);
    if (run && typeof run.catch === 'function') run.catch((e) => done({ exitCode: -1, stderr: String((e && e.message) || e) }));
  } catch (e) {
    done({ error: String((e && e.message) || e) });
  }
});
`;

let worker: Worker | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let queue: Promise<unknown> = Promise.resolve();
let nextId = 1;
const pending = new Map<number, { resolve: (m: WorkerReply) => void; reject: (e: Error) => void }>();

interface WorkerReply {
  exitCode?: number;
  stderr?: string;
  error?: string;
}

function getWorker(): Worker {
  if (worker) return worker;
  const xmllintPath = require.resolve('xmllint-wasm/xmllint-node.js');
  const w = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { xmllintPath, wasmPath: path.join(path.dirname(xmllintPath), 'xmllint.wasm') },
  });
  const failAll = (e: Error) => {
    if (worker === w) worker = undefined;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  w.on('message', (m: WorkerReply & { id?: number } & Record<string, unknown>) => {
    if (!m || m[MESSAGE_KEY] !== true || m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    p?.resolve(m);
  });
  w.on('error', failAll);
  w.on('exit', (code) => failAll(new Error(`GKB XSD validator worker exited (code ${code})`)));
  w.unref();
  worker = w;
  return w;
}

/** One xmllint run in the shared worker; runs are queued (one at a time: one wasm heap, one file). */
function runXmllint(job: XmllintJob): Promise<XmllintOutput> {
  const run = queue.then(() => runNow(job));
  queue = run.catch(() => undefined);
  return run;
}

async function runNow(job: XmllintJob): Promise<XmllintOutput> {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  const w = getWorker();
  w.ref(); // a run in progress keeps the process alive, as xmllint-wasm's own worker does
  const id = nextId++;
  try {
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ [MESSAGE_KEY]: true, id, xmlName: XML_FILE_NAME, ...job });
    });
    if (reply.error !== undefined) throw new Error(reply.error);
    const exitCode = reply.exitCode ?? -1;
    const stderr = reply.stderr ?? '';
    // xmllint-wasm: 0 valid, 3 / 4 validation error, anything else a failure of the run.
    if (exitCode === 0 || exitCode === 3 || exitCode === 4) return { valid: exitCode === 0, stderr };
    throw Object.assign(new Error(stderr), { code: exitCode });
  } finally {
    if (worker === w) {
      w.unref();
      idleTimer = setTimeout(() => {
        idleTimer = undefined;
        if (worker === w && pending.size === 0) {
          worker = undefined;
          void w.terminate();
        }
      }, WORKER_IDLE_MS);
      idleTimer.unref();
    }
  }
}

/** "gkb-batch.xml:12: element X: Schemas validity error : Element 'X': ..." → "line 12: Element 'X': ...". */
function formatErrors(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.endsWith(' validates') || /fails to validate$/.test(line) || line === '^') continue;
    const m = /^[^:]*\.xml:(\d+):\s*(?:element [^:]+:\s*)?(?:Schemas validity error\s*:\s*)?(.*)$/.exec(line);
    out.push(m ? `line ${m[1]}: ${m[2]}` : line);
  }
  return out;
}

/**
 * Validates GKB batch files against K2's own XSD (DOMAIN.md §8 G4) with libxml2 compiled to
 * WebAssembly (xmllint-wasm). GKB checks every file against its XSD first and rejects the whole file
 * on a structural error (document §4, step 1), so we do the same before uploading.
 *
 * Two schemas: file type 1 (gkb-records.xsd) and type 3, one-day (gkb-records-oneday.xsd, §6
 * "в отдельной схеме"); both include gkb-common.xsd.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { memoryPages, validateXML } from 'xmllint-wasm';

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
export const GKB_SCHEMA_DIR = [
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
  const fileType = options.fileType ?? 1;
  if (fileType !== 1 && fileType !== 3) throw new RangeError(`no GKB schema for file type ${String(fileType)}`);
  const { common, byType } = await loadSchemas();
  const contents = typeof xml === 'string' ? xml : new Uint8Array(xml.buffer, xml.byteOffset, xml.byteLength);
  const bytes = typeof xml === 'string' ? Buffer.byteLength(xml) : xml.byteLength;

  let result;
  try {
    result = await validateXML({
      xml: { fileName: XML_FILE_NAME, contents },
      schema: [{ fileName: SCHEMA_FILES[fileType], contents: byType[fileType] }],
      preload: [{ fileName: COMMON_FILE, contents: common }],
      stream: true,
      initialMemoryPages: memoryPages.defaultInitialMemoryPages,
      maxMemoryPages: MAX_MEMORY_PAGES,
    });
  } catch (e) {
    // xmllint exits with 1 (XMLLINT_ERR_UNCLASS) when the document cannot be parsed: not
    // well-formed XML is an answer about the file. Other codes (5 schema did not compile, 9 out of
    // memory, ...) are failures of the validator and are thrown.
    const err = e as Error & { code?: number };
    // libxml2 reports a failed allocation as an error at the current line, so check the text first.
    if (/memory/i.test(String(err.message ?? ''))) {
      throw new Error(`GKB XSD validation ran out of memory (${bytes} bytes of XML, max ${MAX_MEMORY_PAGES} wasm pages): ${String(err.message).slice(0, 300)}`);
    }
    if (err.code === 1) {
      return { valid: false, errors: ['not well-formed XML', ...formatErrors(String(err.message ?? '').split('\n'))] };
    }
    throw err;
  }
  if (result.valid) return { valid: true, errors: [] };
  const errors = formatErrors(result.errors.map((e) => e.rawMessage));
  return { valid: false, errors: errors.length ? errors : [result.rawOutput.trim() || 'invalid (xmllint gave no message)'] };
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

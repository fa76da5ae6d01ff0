/**
 * Structured JSON-lines logs. Personal data never reaches a log, whatever the caller passes:
 * - by field name, at any depth: IINs, names (which no shape can recognize), IBANs, secrets;
 * - by value shape, in every string (the message, values, keys, error messages and causes):
 *   12-digit IINs/BINs, Kazakhstan IBANs, and `"fullname": "…"`-like pairs quoted from an answer.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const MASK = '***';

/** Fields that carry an IIN/BIN, a person's or company's name, or an account (exact names, any case). */
const PERSONAL_FIELDS = [
  'iin',
  'bin',
  'iinbin',
  'iin_bin',
  'iinBin',
  'iinbins',
  'subjectIin',
  'identification',
  'documentNumber',
  'name',
  'names',
  'fullname',
  'full_name',
  'fullnames',
  'subjectName',
  'subject_name',
  'clientName',
  'client_name',
  'borrowerName',
  'debtorName',
  'accountName',
  'account_name',
  'surname',
  'lastName',
  'last_name',
  'firstName',
  'first_name',
  'middleName',
  'middle_name',
  'patronymic',
  'fathersName',
  'fathers_name',
  'nameParts',
  'address',
  'addresses',
  'streetName',
  'phone',
  'email',
  'iban',
  'ibans',
  'account',
  'accountNumber',
  'account_number',
];
const PERSONAL_FIELD = new RegExp(`^(${PERSONAL_FIELDS.join('|')})$`, 'i');
/** Secrets, wherever the word appears in the field's name (passwordHash, x-api-key, ssl_private_key …). */
const SECRET_FIELD = /password|passwd|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|credential|payload[-_]?keys?/i;

export function isSensitiveField(key: string): boolean {
  return PERSONAL_FIELD.test(key) || SECRET_FIELD.test(key);
}

const PERSONAL_FIELD_NAMES = PERSONAL_FIELDS.join('|');
/** `"fullname": "Иванов Иван"`, `fullname=Иванов` … as an answer or a request quoted in an error text. */
const QUOTED_JSON_PAIR = new RegExp(`("(?:${PERSONAL_FIELD_NAMES})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi');
/** The same pair in JSON that was itself put into a JSON string (`{\"fullname\":\"…\"}`). */
const QUOTED_ESCAPED_JSON_PAIR = new RegExp(`(\\\\"(?:${PERSONAL_FIELD_NAMES})\\\\"\\s*:\\s*)\\\\"(?:[^\\\\]|\\\\(?!"))*\\\\"`, 'gi');
const QUOTED_PARAM_PAIR = new RegExp(`(\\b(?:${PERSONAL_FIELD_NAMES})=)[^&\\s,;"']+`, 'gi');
/** `<Surname><Text language="RU">Иванов</Text></Surname>`, `<subjectName>…</subjectName>`: a GKB record or answer quoted in an error text. */
const QUOTED_XML_ELEMENT = new RegExp(`<((?:\\w+:)?(?:${PERSONAL_FIELD_NAMES}))(\\s[^>]*)?>[\\s\\S]*?</\\1>`, 'gi');

/** Masks every IIN/BIN, KZ IBAN and quoted personal field in a text; other text stays as it is. */
export function maskPersonalText(text: string): string {
  return text
    .replace(/"(?:[^"\\]|\\.)*"(?:\.\.\.)? is not valid JSON/g, '(text omitted) is not valid JSON') // V8 quotes the start of a malformed body
    .replace(QUOTED_JSON_PAIR, `$1"${MASK}"`)
    .replace(QUOTED_ESCAPED_JSON_PAIR, `$1\\"${MASK}\\"`)
    .replace(QUOTED_PARAM_PAIR, `$1${MASK}`)
    .replace(QUOTED_XML_ELEMENT, `<$1>${MASK}</$1>`)
    .replace(/KZ\d{2}(?: ?[0-9A-Z]{4}){4}/gi, '<IBAN>')
    .replace(/(?<!\d)\d{12}(?!\d)/g, '<IIN/BIN>');
}

/** A 12-digit integer may be an IIN/BIN that lost its leading text form. */
function maskNumber(n: number | bigint): number | bigint | string {
  const text = String(n);
  return /^\d{12}$/.test(text) ? '<IIN/BIN>' : typeof n === 'bigint' ? text : n;
}

const MAX_ITEMS = 20;

/**
 * A copy of `value` that can be logged: sensitive fields masked at any depth, personal data masked
 * in every string, errors with their causes, dates as ISO text, bytes as their length, cycles cut.
 */
export function redact(value: unknown, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return maskPersonalText(value);
  if (typeof value === 'number' || typeof value === 'bigint') return maskNumber(value);
  if (value === null || typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  try {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (value instanceof Uint8Array || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
    if (value instanceof Error) return redactError(value, seen);
    if (Array.isArray(value) || value instanceof Set) return redactItems([...value], seen);
    if (value instanceof Map)
      return redactEntries(
        [...value.entries()].map(([k, v]) => [String(k), v]),
        seen,
      );
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return redact(toJSON.call(value), seen);
    return redactEntries(Object.entries(value), seen);
  } finally {
    seen.delete(value); // the same object twice side by side is no cycle
  }
}

function redactItems(items: unknown[], seen: WeakSet<object>): unknown[] {
  const out = items.slice(0, MAX_ITEMS).map((v) => redact(v, seen));
  if (items.length > MAX_ITEMS) out.push(`[${items.length - MAX_ITEMS} more]`);
  return out;
}

function redactEntries(entries: Array<[string, unknown]>, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) out[maskPersonalText(k)] = isSensitiveField(k) ? MASK : redact(v, seen);
  return out;
}

/** Written apart (name, message, cause), or not at all: the stack repeats the message, and a Temporal failure's proto holds its payloads (personal data, only base64-encoded). */
const ERROR_FIELDS_NOT_LOGGED: ReadonlySet<string> = new Set(['name', 'message', 'cause', 'stack', 'failure']);

/** An error as data: its class name (not a personal field), masked message, own fields (type, code, details …) and its cause chain. */
function redactError(err: Error, seen: WeakSet<object>): Record<string, unknown> {
  const own: Array<[string, unknown]> = Object.entries(err).filter(([k]) => !ERROR_FIELDS_NOT_LOGGED.has(k));
  const out: Record<string, unknown> = {
    name: maskPersonalText(String(err.name)),
    message: maskPersonalText(String(err.message)),
    ...redactEntries(own, seen),
  };
  if (err.cause !== undefined) out.cause = redact(err.cause, seen);
  return out;
}

/** The log line of one event; fields that cannot be read (a throwing getter, nesting too deep for the stack) become a note, never clear text. */
export function logLine(level: Level, component: string, msg: string, fields: Record<string, unknown>): string {
  let safe: object;
  try {
    safe = redact(fields) as object;
  } catch (err) {
    safe = { fields: `[not loggable: ${err instanceof RangeError ? 'too deep' : 'unreadable'}]` };
  }
  return JSON.stringify({ ts: new Date().toISOString(), level, component, msg: maskPersonalText(msg), ...safe });
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  component: string,
  level: Level = 'info',
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Logger {
  const min = LEVELS[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    write(logLine(lvl, component, msg, { ...base, ...fields }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(component, level, { ...base, ...fields }, write),
  };
}

/** The last line of a process that failed before (or instead of) its logger: on stderr, redacted like every other line. */
export function logFatal(component: string, msg: string, err: unknown): void {
  process.stderr.write(`${logLine('error', component, msg, { err })}\n`);
}

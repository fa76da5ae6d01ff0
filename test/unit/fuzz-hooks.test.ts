/**
 * The schemathesis checks of test/fixtures/fuzz/hooks.py on hand-made answers, run by the Python of
 * the project's schemathesis (scripts/ensure-schemathesis.sh; skipped, saying so, before it is
 * installed): each passes K2's answers and fails the answer it is there for.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ERROR_CODES } from '../../api/error-codes';

const ROOT = path.join(__dirname, '..', '..');
const PYTHON = path.join(ROOT, '.tools', 'schemathesis', 'bin', 'python');
const installed = fs.existsSync(PYTHON);
if (!installed) console.warn(`fuzz-hooks.test: skipped: ${PYTHON} is missing (bash scripts/ensure-schemathesis.sh installs it)`);

/** Runs both checks on each (HTTP status, answer body, request body); '' where a check passed, else its message. */
function runChecks(cases: Array<[number, string, string]>): Array<{ answer: string; excerpt: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-fuzz-hooks-'));
  try {
    const pool = path.join(dir, 'pool.json');
    const codes = path.join(dir, 'codes.json');
    fs.writeFileSync(pool, JSON.stringify({ references: [] }));
    fs.writeFileSync(codes, JSON.stringify(Object.fromEntries(Object.values(ERROR_CODES).map((e) => [e.code, e.http]))));
    const script = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("hooks", sys.argv[1])
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)

class Request:
    def __init__(self, body): self.body = body.encode("utf-8")

class Response:
    def __init__(self, status, text, body): self.status_code, self.text, self.request = status, text, Request(body)
    def json(self): return json.loads(self.text)

def run(check, response):
    try:
        check(None, response, None)
        return ""
    except AssertionError as err:
        return str(err)

out = []
for status, text, body in json.loads(sys.stdin.read()):
    response = Response(status, text, body)
    out.append({"answer": run(hooks.k2_documented_answer, response), "excerpt": run(hooks.k2_error_text_quotes_no_body, response)})
print(json.dumps(out))
`;
    const run = spawnSync(PYTHON, ['-c', script, path.join(ROOT, 'test', 'fixtures', 'fuzz', 'hooks.py')], {
      input: JSON.stringify(cases),
      encoding: 'utf8',
      env: { ...process.env, K2_FUZZ_POOL: pool, K2_FUZZ_ERROR_CODES: codes },
    });
    if (run.status !== 0) throw new Error(`hooks.py checks failed to run: ${run.stderr}`);
    return JSON.parse(run.stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const answer = (code: number, text: string) => JSON.stringify({ error_text: text, error_code: code });
const NAME = 'Иванов Иван Иванович';

(installed ? test : test.skip)(
  'k2_documented_answer: a code of the table at its HTTP status, a text exactly on errors; k2_error_text_quotes_no_body: no excerpt of a non-JSON body',
  () => {
    const [ok, invalid, notJson, unknownCode, wrongStatus, okWithText, errorWithoutText, excerpt, positionOnly, jsonBody] = runChecks([
      [200, answer(0, ''), '[]'],
      [400, answer(1, 'item 0 field iban: mod-97 check failed'), '[{}]'],
      [200, 'POST', ''],
      [400, answer(42, 'what'), '[]'],
      [200, answer(1, 'item 0: must be a JSON object'), '[1]'],
      [200, answer(0, 'accepted'), '[]'],
      [400, answer(2, ''), 'x'],
      [400, answer(2, `the body is not valid JSON: Unexpected token 'И', ..."name": ${NAME.slice(0, 10)}"... is not valid JSON`), `{"name": ${NAME}}`],
      [400, answer(2, 'the body is not valid JSON: Unexpected token "И"'), `{"name": ${NAME}}`],
      [400, answer(1, 'item 0 field fullname: must not contain control characters'), `[{"fullname": "${NAME}"}]`],
    ]);
    expect(ok).toEqual({ answer: '', excerpt: '' });
    expect(invalid).toEqual({ answer: '', excerpt: '' });
    expect(notJson.answer).toMatch(/^HTTP 200: the body is not JSON/);
    expect(unknownCode.answer).toBe("error_code 42 is not in the README's table");
    expect(wrongStatus.answer).toBe("error_code 1 came with HTTP 200; the README's table says 400");
    expect(okWithText.answer).toMatch(/^error_code 0 with error_text 'accepted'/);
    expect(errorWithoutText.answer).toMatch(/^error_code 2 with error_text '':/);
    expect(excerpt).toEqual({ answer: '', excerpt: expect.stringMatching(/^error_text quotes the body/) });
    expect(positionOnly.excerpt).toBe('');
    expect(jsonBody.excerpt).toBe(''); // a JSON body's problems name fields, never its values
  },
);

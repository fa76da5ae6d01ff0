/** The prebuilt workflow bundle is used only while it matches the files it was built from (worker/workflow-bundle.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUNDLE_FILE, MANIFEST_FILE, bundleMismatch, bundleModules, manifestOf, workflowCode } from '../../worker/workflow-bundle';

const ROOT = path.join(__dirname, '..', '..');
const marker = (id: string) => `/***/ "${id}"\n/*!  ${id}  !*/\n(module) => {}\n`;

const roots: string[] = [];
afterAll(() => roots.forEach((root) => fs.rmSync(root, { recursive: true, force: true })));

const CONVERTER = 'dist/temporal/failure-converter.js';
const KEYS_CONVERTER = '/any/failure-converter.js';

function fixture({ withConverter = true } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-bundle-'));
  roots.push(root);
  const dist = path.join(root, 'dist');
  fs.mkdirSync(path.join(dist, 'workflows'), { recursive: true });
  fs.writeFileSync(path.join(dist, 'workflows', 'case.js'), 'exports.caseWorkflow = async () => 1;\n');
  fs.mkdirSync(path.join(root, 'node_modules', 'sdk'), { recursive: true });
  fs.writeFileSync(path.join(root, 'node_modules', 'sdk', 'index.js'), 'exports.sleep = () => 0;\n');
  fs.mkdirSync(path.join(dist, 'temporal'), { recursive: true });
  fs.writeFileSync(path.join(root, CONVERTER), 'exports.failureConverter = {};\n');
  const code = `var __TEMPORAL__;\n${marker('./dist/workflows/case.js')}${marker('./node_modules/sdk/index.js')}${marker('./dist/workflows/case.js')}${withConverter ? marker(`./${CONVERTER}`) : ''}`;
  fs.writeFileSync(path.join(dist, BUNDLE_FILE), code);
  fs.writeFileSync(path.join(dist, MANIFEST_FILE), JSON.stringify(manifestOf(code, root)));
  return { root, dist, code };
}

describe('bundleModules and manifestOf', () => {
  it("lists each module webpack's markers name once, from the root", () => {
    expect(bundleModules(fixture().code)).toEqual([CONVERTER, 'dist/workflows/case.js', 'node_modules/sdk/index.js']);
  });

  it('refuses a bundle that names no module (nothing could be verified)', () => {
    expect(() => manifestOf('var __TEMPORAL__; (() => {})()', ROOT)).toThrow(/names no module/);
  });
});

describe('bundleMismatch', () => {
  it('accepts a bundle whose modules are the files on disk', () => {
    const { root, dist } = fixture();
    expect(bundleMismatch(dist, root)).toBeNull();
  });

  it('names the module that changed since the bundle was built', () => {
    const { root, dist } = fixture();
    fs.appendFileSync(path.join(dist, 'workflows', 'case.js'), '// edited\n');
    expect(bundleMismatch(dist, root)).toBe('dist/workflows/case.js changed since the bundle was built');
  });

  it('names a dependency that changed or went away', () => {
    const { root, dist } = fixture();
    fs.rmSync(path.join(root, 'node_modules', 'sdk', 'index.js'));
    expect(bundleMismatch(dist, root)).toBe('node_modules/sdk/index.js (in the bundle) no longer exists');
  });

  it('refuses a bundle that is not the one its manifest describes, or no bundle', () => {
    const { root, dist } = fixture();
    fs.appendFileSync(path.join(dist, BUNDLE_FILE), '\n');
    expect(bundleMismatch(dist, root)).toBe(`${BUNDLE_FILE} is not the bundle its manifest describes`);
    fs.rmSync(path.join(dist, MANIFEST_FILE));
    expect(bundleMismatch(dist, root)).toBe(`no prebuilt bundle in ${dist}`);
  });
});

describe('workflowCode', () => {
  it('bundles at start when running from the TypeScript sources, whatever dist/ holds', () => {
    const code = workflowCode(path.join(ROOT, 'workflows', 'index.ts'), KEYS_CONVERTER);
    expect(code).toEqual({
      kind: 'bundled-at-start',
      options: { workflowsPath: path.join(ROOT, 'workflows', 'index.ts') },
      why: 'running from the TypeScript sources',
    });
  });

  it('uses the prebuilt bundle of a matching dist/, and bundles at start once it no longer matches', () => {
    const { root, dist } = fixture();
    const entry = path.join(dist, 'workflows', 'index.js');
    expect(workflowCode(entry, KEYS_CONVERTER, dist, root)).toMatchObject({
      kind: 'prebuilt',
      options: { workflowBundle: { codePath: path.join(dist, BUNDLE_FILE) } },
    });
    fs.appendFileSync(path.join(dist, 'workflows', 'case.js'), '// edited\n');
    expect(workflowCode(entry, KEYS_CONVERTER, dist, root)).toEqual({
      kind: 'bundled-at-start',
      options: { workflowsPath: entry },
      why: 'dist/workflows/case.js changed since the bundle was built',
    });
  });

  it("uses no bundle without K2's failure converter in it, nor for a worker without payload keys (whose failures are not encoded)", () => {
    const { root, dist } = fixture({ withConverter: false });
    const entry = path.join(dist, 'workflows', 'index.js');
    expect(workflowCode(entry, KEYS_CONVERTER, dist, root)).toMatchObject({
      kind: 'bundled-at-start',
      why: `the bundle has no ${CONVERTER}: it was not built with K2's failure converter`,
    });
    const ok = fixture();
    expect(workflowCode(path.join(ok.dist, 'workflows', 'index.js'), undefined, ok.dist, ok.root)).toMatchObject({
      kind: 'bundled-at-start',
      why: "no payload keys, so no failure converter: the prebuilt bundle carries K2's",
    });
  });

  it("the build's own dist/ has a bundle that matches it, with K2's failure converter (scripts/ensure-deps.sh builds it after tsc)", () => {
    const dist = path.join(ROOT, 'dist');
    const code = workflowCode(path.join(dist, 'workflows', 'index.js'), path.join(dist, 'temporal', 'failure-converter.js'), dist, ROOT);
    expect(code).toMatchObject({ kind: 'prebuilt' });
  });
});

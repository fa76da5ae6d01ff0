/**
 * The workflow code the worker runs: the bundle built with the rest of dist/ (scripts/bundle-workflows.ts)
 * when it matches the files it was built from, else bundled at start as the SDK does with workflowsPath.
 *
 * Why prebuilt: bundling at start loads webpack into the worker, and the memory it takes stays with the
 * process (bench/README.md, "topology"). Why verified: a bundle older than the code would run other
 * workflow code than the one on disk, which is a determinism hazard; so the manifest names every module
 * the bundle holds with its sha256, and any difference means bundling at start.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FAILURE_CONVERTER_PATH } from '../temporal/connection';

export const BUNDLE_FILE = 'workflow-bundle.js';
export const MANIFEST_FILE = 'workflow-bundle.json';

export interface BundleManifest {
  bundleSha256: string;
  /** Each module of the bundle, by its path from the repository root, with the sha256 of that file when bundled. */
  modules: Record<string, string>;
}

export type WorkflowCode =
  | { kind: 'prebuilt'; options: { workflowBundle: { codePath: string } }; sha256: string }
  | { kind: 'bundled-at-start'; options: { workflowsPath: string }; why: string };

/**
 * How K2's workflow code is bundled wherever it is (the build, the replay test, `k2 case replay`):
 * with K2's failure converter, as the worker with payload keys bundles it, so failure texts stay
 * encrypted in history.
 */
export function bundleOptions(workflowsPath: string): { workflowsPath: string; failureConverterPath: string } {
  return { workflowsPath, failureConverterPath: FAILURE_CONVERTER_PATH };
}

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/** The files webpack put in the bundle (its module markers, `/***\/ "./path"`), as paths from the root it ran in. */
export function bundleModules(code: string): string[] {
  const ids = [...code.matchAll(/^\/\*\*\*\/ "(\.\/[^"]+)"$/gm)].map((m) => m[1].slice(2));
  return [...new Set(ids)].sort();
}

/** The manifest of a bundle built in `root`; throws when the bundle names no module (webpack's output changed: nothing could be verified). */
export function manifestOf(code: string, root: string): BundleManifest {
  const files = bundleModules(code);
  if (!files.some((f) => f.endsWith('.js'))) throw new Error('the workflow bundle names no module: its manifest cannot be made, so it could never be verified');
  return { bundleSha256: sha256(code), modules: Object.fromEntries(files.map((f) => [f, sha256(fs.readFileSync(path.join(root, f)))])) };
}

/** Why the bundle in `dir` cannot be used for the files under `root` (null: it can); it must hold `required` (a path from the root). */
export function bundleMismatch(dir: string, root: string, required?: string): string | null {
  const codePath = path.join(dir, BUNDLE_FILE);
  const manifestPath = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(codePath) || !fs.existsSync(manifestPath)) return `no prebuilt bundle in ${dir}`;
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as BundleManifest;
  } catch (err) {
    return `${manifestPath} is not readable JSON (${(err as Error).message})`;
  }
  if (sha256(fs.readFileSync(codePath)) !== manifest.bundleSha256) return `${BUNDLE_FILE} is not the bundle its manifest describes`;
  const modules = Object.entries(manifest.modules ?? {});
  if (modules.length === 0) return `${MANIFEST_FILE} names no module`;
  if (required && !(required in manifest.modules)) return `the bundle has no ${required}: it was not built with K2's failure converter`;
  for (const [file, want] of modules) {
    const full = path.join(root, file);
    if (!fs.existsSync(full)) return `${file} (in the bundle) no longer exists`;
    if (sha256(fs.readFileSync(full)) !== want) return `${file} changed since the bundle was built`;
  }
  return null;
}

/**
 * Prebuilt when running from dist/ with K2's failure converter (the data converter of a worker with
 * payload keys) and the bundle matches the files; from the sources (ts-jest) always bundled at start,
 * so a test runs the code it sees.
 */
export function workflowCode(
  workflowsPath: string,
  failureConverterPath: string | undefined,
  distDir = path.join(__dirname, '..'),
  root = path.join(__dirname, '..', '..'),
): WorkflowCode {
  const bundledAtStart = (why: string): WorkflowCode => ({ kind: 'bundled-at-start', options: { workflowsPath }, why });
  if (!workflowsPath.endsWith('.js')) return bundledAtStart('running from the TypeScript sources');
  if (!failureConverterPath) return bundledAtStart("no payload keys, so no failure converter: the prebuilt bundle carries K2's");
  const why = bundleMismatch(distDir, root, path.relative(root, path.join(distDir, 'temporal', 'failure-converter.js')));
  if (why) return bundledAtStart(why);
  const codePath = path.join(distDir, BUNDLE_FILE);
  return { kind: 'prebuilt', options: { workflowBundle: { codePath } }, sha256: sha256(fs.readFileSync(codePath)) };
}

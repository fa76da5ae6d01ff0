/**
 * Builds the worker's workflow bundle into dist/ with its manifest (worker/workflow-bundle.ts says why
 * and how the worker checks it). Run after tsc: node dist/scripts/bundle-workflows.js
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../worker';
import { BUNDLE_FILE, bundleOptions, MANIFEST_FILE, manifestOf } from '../worker/workflow-bundle';

async function main() {
  const root = path.join(__dirname, '..', '..');
  const dist = path.join(__dirname, '..');
  // webpack names the modules from the directory it runs in: the manifest's paths are from the root.
  process.chdir(root);
  const silent = () => undefined;
  const { code } = await bundleWorkflowCode({
    ...bundleOptions(workflowsPath()),
    logger: { log: silent, trace: silent, debug: silent, info: silent, warn: console.warn, error: console.error },
  });
  const manifest = manifestOf(code, root);
  writeFileSync(path.join(dist, BUNDLE_FILE), code);
  writeFileSync(path.join(dist, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  console.error(
    `bundle-workflows: ${path.join('dist', BUNDLE_FILE)} (${Object.keys(manifest.modules).length} modules, sha256 ${manifest.bundleSha256.slice(0, 12)})`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

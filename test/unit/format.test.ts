/**
 * One formatter configuration, applied to every file: Prettier (.prettierrc.json) for the TypeScript,
 * JavaScript, JSON and YAML, gofmt for the Go load generator. Fix with: npm run format
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const PRETTIER = path.join(ROOT, 'node_modules', '.bin', 'prettier');

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
  return r;
}

describe('formatting', () => {
  it('Prettier finds nothing to change', () => {
    const r = run(PRETTIER, ['--list-different', '.']);
    expect({ differ: r.stdout.trim().split('\n').filter(Boolean), stderr: r.stderr.trim() }).toEqual({ differ: [], stderr: '' });
    expect(r.status).toBe(0);
  });

  it('Prettier covers the code (nothing of it is ignored)', () => {
    for (const file of ['workflows/case.ts', 'api/app.ts', 'test/unit/format.test.ts', 'docker-compose.yml', 'package.json']) {
      const r = run(PRETTIER, ['--file-info', file]);
      expect({ file, info: JSON.parse(r.stdout) }).toEqual({ file, info: { ignored: false, inferredParser: expect.any(String) } });
    }
  });

  it('gofmt finds nothing to change in the Go load generator', () => {
    const r = run('gofmt', ['-l', 'bench/loadgen']);
    expect({ differ: r.stdout.trim(), stderr: r.stderr.trim() }).toEqual({ differ: '', stderr: '' });
  });
});

/** Files of personal data the CLI writes (case history, scan get): never inside a git work tree, mode 0600, with a warning. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, privateFileProblem, writePrivateFile } from '../../cli/case-history';
import { UsageError } from '../../cli/command';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k2-cli-private-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('refused inside this repository (also through a relative path or a link into it) and inside any other git work tree', () => {
  const repo = packageRoot();
  expect(privateFileProblem(path.join(repo, 'test', 'replay', 'histories', 'case-KD1.json'), repo)).toMatch(/is inside the repository/);
  expect(privateFileProblem(path.relative(process.cwd(), path.join(repo, 'x.json')), repo)).toMatch(/is inside the repository/);
  fs.symlinkSync(path.join(repo, 'test'), path.join(dir, 'link'));
  expect(privateFileProblem(path.join(dir, 'link', 'x.json'), repo)).toMatch(/is inside the repository/);
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  execFileSync('git', ['init', '-q', other]);
  expect(privateFileProblem(path.join(other, 'x.json'), repo)).toMatch(/inside a git work tree/);
  expect(privateFileProblem(path.join(dir, 'x.json'), repo)).toBeUndefined();
});

test('written with mode 0600 and a warning; an existing file only with --force; nothing written when refused', () => {
  const warnings: string[] = [];
  const file = path.join(dir, 'case.json');
  const old = process.umask(0o000);
  try {
    writePrivateFile(file, '{}', { repoRoot: packageRoot(), force: false, err: (l) => warnings.push(l) });
  } finally {
    process.umask(old);
  }
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(warnings).toEqual([`warning: ${file} holds personal data (the loan: IIN, name, IBAN): keep it off shared drives and out of git, delete it when done`]);
  expect(() => writePrivateFile(file, '{"x":1}', { repoRoot: packageRoot(), force: false, err: () => undefined })).toThrow(UsageError);
  expect(fs.readFileSync(file, 'utf8')).toBe('{}');
  writePrivateFile(file, '{"x":1}', { repoRoot: packageRoot(), force: true, err: () => undefined });
  expect(fs.readFileSync(file, 'utf8')).toBe('{"x":1}');
  const inRepo = path.join(packageRoot(), 'k2-cli-test-should-not-exist.json');
  expect(() => writePrivateFile(inRepo, '{}', { repoRoot: packageRoot(), force: false, err: () => undefined })).toThrow(/inside the repository/);
  expect(fs.existsSync(inRepo)).toBe(false);
});

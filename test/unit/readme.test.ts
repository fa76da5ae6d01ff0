/**
 * README.md stays in step with the code: its configuration table is exactly the one generated from
 * CONFIG_KEYS (scripts/config-table.ts), and its first two commands are the quick start.
 * Regenerate the table with: npx tsc -p tsconfig.json && node dist/scripts/config-table.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, configTableMarkdown } from '../../scripts/config-table';
import { CONFIG_KEYS } from '../../config';

const README = path.join(__dirname, '..', '..', 'README.md');

function readme(): string {
  if (!fs.existsSync(README)) throw new Error(`${README} does not exist: the README must contain the configuration table and the quick start`);
  return fs.readFileSync(README, 'utf8').replace(/\r\n/g, '\n');
}

/** Command lines of the fenced shell blocks, in order (prompts "$ " stripped; comments and blank lines skipped). */
function fencedCommands(text: string): string[] {
  const commands: string[] = [];
  const fence = /^(```|~~~)[ \t]*([\w+-]*)[^\n]*\n([\s\S]*?)^\1[ \t]*$/gm;
  for (const m of text.matchAll(fence)) {
    const lang = m[2].toLowerCase();
    if (!['', 'bash', 'sh', 'shell', 'console', 'zsh', 'shell-session'].includes(lang)) continue;
    for (const raw of m[3].split('\n')) {
      const line = raw.trim().replace(/^\$\s+/, '');
      if (line && !line.startsWith('#')) commands.push(line);
    }
  }
  return commands;
}

describe('configTableMarkdown', () => {
  it('has a header and one row per configuration key, in order', () => {
    const lines = configTableMarkdown().split('\n');
    expect(lines[0]).toBe('| Variable | Default | Meaning |');
    expect(lines[1]).toBe('| --- | --- | --- |');
    const keys = lines.slice(2).map((l) => /^\| `([A-Z0-9_]+)` \|/.exec(l)?.[1]);
    expect(keys).toEqual(Object.keys(CONFIG_KEYS));
  });

  it('renders defaults and escapes table syntax', () => {
    const table = configTableMarkdown();
    expect(table).toContain('| `K2_API_PORT` | `8080` | Port of the K2 HTTP API. |');
    expect(table).toContain('| `K2_API_PASSWORD` | *(empty)* |');
    // Issue 13: no secret has a working default; the demo is off unless asked for.
    expect(table).toContain('| `GKB_PASSWORD` | *(empty)* |');
    expect(table).toContain('| `K2_DEMO` | `false` |');
    expect(table).toContain('debug \\| info \\| warn \\| error.');
    for (const line of table.split('\n')) expect(line.replace(/\\\|/g, '').split('|')).toHaveLength(5);
  });
});

describe('README.md', () => {
  it('contains exactly the configuration table generated from CONFIG_KEYS', () => {
    const text = readme();
    const start = text.indexOf(CONFIG_TABLE_START);
    const end = text.indexOf(CONFIG_TABLE_END);
    expect({ start: start >= 0, end: end > start }).toEqual({ start: true, end: true });
    expect(text.indexOf(CONFIG_TABLE_START, start + 1)).toBe(-1);
    const table = text.slice(start + CONFIG_TABLE_START.length, end).trim();
    // On a mismatch: paste the output of `node dist/scripts/config-table.js` between the markers.
    expect(table).toBe(configTableMarkdown());
  });

  it('starts with `npm run up` and `npm test` as its first two fenced commands', () => {
    expect(fencedCommands(readme()).slice(0, 2)).toEqual(['npm run up', 'npm test']);
  });
});

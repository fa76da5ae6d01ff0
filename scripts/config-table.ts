/**
 * Prints the README's configuration table (markdown: variable | default | meaning) from CONFIG_KEYS.
 *   npx tsc -p tsconfig.json && node dist/scripts/config-table.js
 * The README holds it between <!-- config-table:start --> and <!-- config-table:end -->;
 * test/unit/readme.test.ts fails when the two differ.
 */
import { CONFIG_KEYS } from '../config';

export const CONFIG_TABLE_START = '<!-- config-table:start -->';
export const CONFIG_TABLE_END = '<!-- config-table:end -->';

/** Makes text safe inside a markdown table cell: pipes escaped, HTML-looking text not taken as HTML. */
function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r?\n/g, ' ');
}

function code(text: string): string {
  // A code span cannot escape a backtick; use a longer fence when the value contains one.
  const fence = text.includes('`') ? '``' : '`';
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replace(/\|/g, '\\|')}${pad}${fence}`;
}

/** The table, one row per CONFIG_KEYS entry in declaration order, without a trailing newline. */
export function configTableMarkdown(): string {
  const rows = Object.entries(CONFIG_KEYS).map(([key, { default: value, doc }]) => {
    const shown = value === '' ? '*(empty)*' : code(value);
    return `| ${code(key)} | ${shown} | ${cell(doc)} |`;
  });
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The table wrapped in its README markers, ready to paste. */
export function configTableSection(): string {
  return `${CONFIG_TABLE_START}\n${configTableMarkdown()}\n${CONFIG_TABLE_END}`;
}

if (require.main === module) {
  process.stdout.write(`${process.argv.includes('--with-markers') ? configTableSection() : configTableMarkdown()}\n`);
}

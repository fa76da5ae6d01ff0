import fs from 'node:fs';
import path from 'node:path';

/** Every file below `root` (its `.tmp` folders skipped), as paths relative to `root`. */
export function filesBelow(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.tmp') walk(p);
      } else out.push(path.relative(root, p));
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out.sort();
}

/**
 * Files written whole by writers that share a folder: the runners of a group's sandboxes are
 * each pid 2 in their own namespace and write the group's provider state side by side.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, tempHome } from './support/cli.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A process that believes it is pid 2 and rewrites `file` `n` times; resolves with its failures. */
function writer(file: string, tag: string, n: number): Promise<string> {
  const script = `
    Object.defineProperty(process, 'pid', { value: 2 });
    const { writeFileAtomic } = await import(${JSON.stringify(path.join(ROOT, 'dist/shared/atomic-file.js'))});
    let failed = 0;
    for (let i = 0; i < ${n}; i++) {
      try { writeFileAtomic(${JSON.stringify(file)}, JSON.stringify({ tag: ${JSON.stringify(tag)}, i }), 0o600); }
      catch { failed++; }
    }
    process.stdout.write(String(failed));`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', () => resolve(out));
  });
}

describe('writeFileAtomic', () => {
  it('two writers of one file with the same pid never fail nor leave it torn', async () => {
    dir = tempHome('polyclaw-atomic-');
    const file = path.join(dir, 'auth.json');
    const failures = await Promise.all([writer(file, 'a', 2000), writer(file, 'b', 2000)]);
    expect(failures).toEqual(['0', '0']);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ i: 1999 });
    expect(fs.readdirSync(dir)).toEqual(['auth.json']); // no temporary left behind
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  }, 30_000);
});

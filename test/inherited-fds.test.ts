/**
 * `polyclaw up` closes the descriptors it inherited, so no child (no sandbox) can read them at
 * /proc/self/fd/N. Run in a child process of its own (the built code, as `polyclaw up` runs
 * it): the test runner's own descriptors are not ours to close.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempHome } from './support/cli.js';

describe('descriptors inherited by the host process', () => {
  it('are closed at start: a child spawned after cannot read them; stdio and our own stay', () => {
    const dir = tempHome();
    const secret = path.join(dir, 'secret.txt');
    fs.writeFileSync(secret, 'topsecret');
    try {
      const dist = path.join(ROOT, 'dist');
      const script = `
        import { execFileSync } from 'node:child_process';
        import { closeInheritedFds } from ${JSON.stringify(`${dist}/host/inherited-fds.js`)};
        import { createLogger } from ${JSON.stringify(`${dist}/shared/log.js`)};
        const peek = () => execFileSync('/bin/sh', ['-c', 'cat /proc/self/fd/100 2>/dev/null || echo none']).toString().trim();
        const before = peek();
        const closed = closeInheritedFds({ log: createLogger({ level: 'error' }) });
        console.log(JSON.stringify({ before, closed, after: peek() }));`;
      // As `polyclaw up 100<file` from a shell (and whatever the test runner left open) starts it.
      const r = spawnSync(
        '/bin/bash',
        ['-c', 'exec "$0" --input-type=module -e "$1" 100<"$2"', process.execPath, script, secret],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { before: string; closed: number[]; after: string };
      expect([out.before, out.after]).toEqual(['topsecret', 'none']);
      expect(out.closed).toContain(100);
      expect(out.closed.every((n) => n > 2)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

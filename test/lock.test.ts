/** One host per data dir: a live host blocks a second; a stale or reused pid does not. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/host/lock.js';
import { tempHome } from './support/cli.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('host lock', () => {
  it('is taken once, and released only by its owner', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    const release = acquireLock(file);
    expect(fs.readFileSync(file, 'utf8')).toBe(String(process.pid));
    release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('takes over the lock of a dead host (kill -9 leaves the file behind)', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    fs.writeFileSync(file, '999999');
    acquireLock(file)();
  });

  it('is not blocked by an unrelated live process that reused the pid', async () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    const other = spawn('/bin/sleep', ['30']);
    try {
      fs.writeFileSync(file, String(other.pid));
      acquireLock(file)();
    } finally {
      other.kill();
    }
  });

  it('refuses while a real host process holds it', async () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    // A process whose command line looks like `polyclaw up`.
    const fake = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', '/x/dist/cli/main.js', 'up']);
    try {
      await new Promise((r) => setTimeout(r, 100));
      fs.writeFileSync(file, String(fake.pid));
      expect(() => acquireLock(file)).toThrow(/already running/);
    } finally {
      fake.kill();
    }
  });
});

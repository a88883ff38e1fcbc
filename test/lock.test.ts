/**
 * One host per data dir: a live host blocks a second; a stale or reused pid does not; a lock
 * being written counts as held; of two starters at once, at most one ever holds it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/host/lock.js';
import { ROOT, tempHome } from './support/cli.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A pid that surely belongs to no process: one that has just exited. */
function deadPid(): number {
  return spawnSync('/bin/true').pid!;
}

/**
 * Two processes that look like `polyclaw up` (so each counts the other as a live host) take the
 * lock at the same moment: each loads the built lock, says "ready", waits for "go", then tries.
 * A winner keeps holding the lock until killed. Resolves with how many won.
 */
async function race(file: string): Promise<{ wins: number; outcomes: string[] }> {
  const lockUrl = pathToFileURL(path.join(ROOT, 'dist', 'host', 'lock.js')).href;
  const code = `
    import(${JSON.stringify(lockUrl)}).then(({ acquireLock }) => {
      process.stdout.write('ready\\n');
      process.stdin.once('data', () => {
        let out;
        try { acquireLock(${JSON.stringify(file)}); out = 'won'; }
        catch (err) { out = 'lost:' + (err.code ?? err.message); }
        process.stdout.write(out + '\\n');
        if (out !== 'won') process.exit(0);
      });
    });`;
  const kids = [0, 1].map(() => spawn(process.execPath, ['-e', code, '/x/dist/cli/main.js', 'up']));
  try {
    const lines = kids.map((k) => {
      let buf = '';
      const waiters: Array<() => void> = [];
      k.stdout.on('data', (d) => {
        buf += d;
        for (const w of waiters.splice(0)) w();
      });
      return async (n: number) => {
        while (buf.split('\n').length <= n) await new Promise<void>((r) => waiters.push(r));
        return buf.split('\n')[n - 1]!;
      };
    });
    await Promise.all(lines.map((l) => l(1)));
    for (const k of kids) k.stdin.write('go\n');
    const outcomes = await Promise.all(lines.map((l) => l(2)));
    return { wins: outcomes.filter((o) => o === 'won').length, outcomes };
  } finally {
    for (const k of kids) k.kill('SIGKILL');
    await Promise.all(
      kids.map((k) => (k.exitCode ?? k.signalCode) !== null || new Promise((r) => k.on('exit', r))),
    );
  }
}

describe('host lock', () => {
  it('is taken once, and released only by its owner', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    const release = acquireLock(file);
    expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+$`));
    release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('takes over the lock of a dead host (kill -9 leaves the file behind)', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    fs.writeFileSync(file, String(deadPid()));
    acquireLock(file)();
  });

  it('counts an empty lock file (a starter still writing it) as held', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    fs.writeFileSync(file, '');
    expect(() => acquireLock(file)).toThrow(expect.objectContaining({ code: 'already_running' }));
    expect(fs.readFileSync(file, 'utf8')).toBe('');
  });

  it('takes over an empty lock file old enough to be abandoned', () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    fs.writeFileSync(file, '');
    const old = new Date(Date.now() - 10 * 60_000);
    fs.utimesSync(file, old, old);
    const release = acquireLock(file);
    expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+$`));
    release();
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

  it('refuses while a host started any other way holds it (a wrapper script, a renamed process)', async () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    const lockUrl = pathToFileURL(path.join(ROOT, 'dist', 'host', 'lock.js')).href;
    // Its command line names neither polyclaw nor `up`: only the lock says what it is.
    const code = `import(${JSON.stringify(lockUrl)}).then(({ acquireLock }) => {
      acquireLock(${JSON.stringify(file)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
    const host = spawn(process.execPath, ['-e', code]);
    try {
      await new Promise<void>((resolve, reject) => {
        host.stdout.once('data', () => resolve());
        host.once('exit', (c) => reject(new Error(`the holder exited ${c}`)));
      });
      expect(() => acquireLock(file)).toThrow(/already running/);
    } finally {
      host.kill('SIGKILL');
    }
  });

  it('is not blocked by a live process that reused the pid of the lock it names', async () => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', '/x/dist/cli/main.js', 'up']);
    try {
      await new Promise((r) => setTimeout(r, 100));
      fs.writeFileSync(file, `${other.pid} 1`); // the host that wrote it started at another time
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

  it.each([
    ['no lock', false],
    ['the lock of a dead host', true],
  ])('lets at most one of two starters at once win, from %s', { timeout: 60_000 }, async (_, stale) => {
    dir = tempHome();
    const file = path.join(dir, 'host.lock');
    for (let round = 0; round < 10; round++) {
      fs.rmSync(file, { force: true });
      if (stale) fs.writeFileSync(file, String(deadPid()));
      const r = await race(file);
      expect(r.wins, `round ${round}: ${r.outcomes.join(', ')}`).toBe(1);
    }
  });
});

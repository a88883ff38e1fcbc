/** Starting a sandbox's process tree when the start itself goes wrong: nothing else is signalled, nothing survives. */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SandboxSpec } from '../src/sandbox/runtime.js';
import { MARKER_ENV, marker, startTree, type KillFn } from '../src/sandbox/tree.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome, waitFor } from './support/cli.js';

const log = createLogger({ level: 'error' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function spec(): SandboxSpec {
  return {
    id: randomUUID().slice(0, 12),
    installId: `tree-${randomUUID().slice(0, 8)}`,
    mounts: [],
    env: {},
    command: [],
    cwd: '/',
    limits: { memoryMb: 256, cpus: 1, pids: 64 },
  };
}

/** Processes carrying this sandbox's marker in their environment. */
function carrying(mark: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`${MARKER_ENV}=${mark}`);
      } catch {
        return false;
      }
    });
}

describe('sandbox process tree', () => {
  it('a spawn that fails signals no process at all and ends as a start failure', async () => {
    const home = tempHome('polyclaw-tree-');
    dirs.push(home);
    const lines: string[] = [];
    const quiet = createLogger({ level: 'error', sink: (l) => lines.push(l) });
    const sent: Array<[number, string]> = [];
    const kill: KillFn = (pid, sig) => void sent.push([pid, sig]);
    // A missing working directory fails the spawn itself, with or without the cgroup wrapper.
    const h = startTree({
      argv: ['/nonexistent/binary'],
      env: {},
      cwd: path.join(home, 'missing'),
      spec: spec(),
      runDir: path.join(home, 'run'),
      log: quiet,
      kill,
    });
    const info = await h.exited;
    expect(info.code).not.toBe(0);
    expect(lines.join('\n')).toMatch(/sandbox failed to start.*ENOENT/);
    h.kill();
    await h.stop(10);
    expect(sent.filter(([pid]) => Math.abs(pid) <= 1)).toEqual([]);
    expect(fs.readdirSync(path.join(home, 'run'))).toEqual([]);
  });

  it.each([
    ['its run folder is a file', (run: string) => fs.writeFileSync(run, 'x')],
    [
      'its pid record cannot be written',
      (run: string, record: string) => fs.mkdirSync(record, { recursive: true }),
    ],
  ])('a sandbox whose start fails because %s leaves no process behind', async (_why, breakRun) => {
    const home = tempHome('polyclaw-tree-');
    dirs.push(home);
    const s = spec();
    const mark = marker(s);
    const runDir = path.join(home, 'run');
    breakRun(runDir, path.join(runDir, `${s.id}.json`));
    try {
      expect(() =>
        startTree({
          argv: ['sleep', '30'],
          env: { PATH: '/usr/bin:/bin', [MARKER_ENV]: mark },
          spec: s,
          runDir,
          log,
        }),
      ).toThrow();
      await waitFor(() => carrying(mark).length === 0, 2000, 'no process left of the failed start');
    } finally {
      for (const pid of carrying(mark)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('bwrap sandbox environment', () => {
  it('reaches the sandbox as given, never through arguments other local users can read', async () => {
    const home = tempHome('polyclaw-tree-');
    dirs.push(home);
    const runtime = runtimeRegistry.get('bwrap')({ log, runDir: path.join(home, 'run') });
    const s: SandboxSpec = {
      ...spec(),
      env: { PATH: '/usr/bin:/bin', POLYCLAW_GATEWAY_TOKEN: 'pcgw_secret_token_value', LANG: 'C.UTF-8' },
      command: ['/bin/sh', '-c', 'env; exec sleep 30'],
    };
    const h = runtime.start(s);
    let out = '';
    h.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('POLYCLAW_GATEWAY_TOKEN='), 10_000, 'sandbox env');
      const args = fs.readFileSync(`/proc/${h.pid}/cmdline`, 'latin1');
      expect(args).toContain('--unshare-net');
      expect(args).not.toContain('pcgw_secret_token_value');
      const env = Object.fromEntries(
        out
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toEqual({ ...s.env, [MARKER_ENV]: marker(s), PWD: '/' });
    } finally {
      await h.stop(1000);
    }
  });
});

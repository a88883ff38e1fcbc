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
  it('reaches the sandbox exactly as given, never through arguments other local users can read', async () => {
    const home = tempHome('polyclaw-tree-');
    dirs.push(home);
    // Started from a folder of the host's, as `polyclaw up` is: its path must not leak in as PWD.
    const cwd = process.cwd();
    process.chdir(home);
    try {
      const runtime = runtimeRegistry.get('bwrap')({ log, runDir: path.join(home, 'run') });
      const s: SandboxSpec = {
        ...spec(),
        env: { PATH: '/usr/bin:/bin', POLYCLAW_GATEWAY_TOKEN: 'pcgw_secret_token_value', LANG: 'C.UTF-8' },
        cwd: '/tmp',
      };
      // env itself as the sandbox's command (a shell inside would set PWD on its own).
      const r = await runtime.exec({ ...s, command: ['/usr/bin/env'] }, { timeoutMs: 10_000 });
      const env = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toEqual({ ...s.env, [MARKER_ENV]: marker(s), PWD: '/tmp' });
      const h = runtime.start({ ...s, command: ['/bin/sleep', '30'] });
      try {
        await waitFor(() => fs.existsSync(`/proc/${h.pid}/cmdline`), 5000, 'started');
        const args = fs.readFileSync(`/proc/${h.pid}/cmdline`, 'latin1');
        expect(args).toContain('--unshare-net');
        expect(args).toContain(marker(s)); // orphan cleanup finds it there
        expect(args).not.toContain('pcgw_secret_token_value');
      } finally {
        await h.stop(1000);
      }
    } finally {
      process.chdir(cwd);
    }
  });
});

/**
 * bubblewrap runtime (default on Linux). New user, pid, ipc, uts, net and cgroup namespaces;
 * the agent runs as an unprivileged uid with no capabilities; the filesystem is a read-only
 * system view plus exactly the mount table; /tmp is private; the network is loopback only.
 * --die-with-parent ties the sandbox to the host: kill -9 of the host takes it down too.
 * The environment is exactly the spec's: bwrap is spawned with it alone (see bwrapEnv).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PolyclawError } from '../shared/errors.js';
import { settleOverlayTargets } from './overlay-targets.js';
import { registerRuntime } from './registry.js';
import type { RuntimeDeps, SandboxSpec } from './runtime.js';
import { MARKER_ENV, marker, ProcessTreeRuntime } from './tree.js';

const run = promisify(execFile);

/** System paths shown read-only; symlinks (merged /usr) are recreated as symlinks. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const ETC_ENTRIES = [
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'localtime',
  'timezone',
  'hosts',
  'nsswitch.conf',
  'alternatives',
  'mime.types',
];
export const SANDBOX_UID = 1000;

export function findBwrap(): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, 'bwrap');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not in this PATH entry
    }
  }
  return null;
}

let userns: string[] | null = null;

/**
 * `--disable-userns` where this bwrap has it (0.8 on): no user namespace inside the sandbox, so
 * the agent gets no namespace-root capabilities that open kernel interfaces (nf_tables and the
 * like) to its exploits. Asked of the binary once.
 */
function disableUserns(): string[] {
  if (userns) return userns;
  const r = spawnSync(findBwrap() ?? 'bwrap', ['--help'], { encoding: 'utf8', timeout: 5000 });
  const help = `${r.stdout ?? ''}${r.stderr ?? ''}`; // a bwrap that cannot run fails its start anyway
  userns = help.includes('--disable-userns') ? ['--disable-userns'] : [];
  return userns;
}

export function bwrapArgs(
  spec: SandboxSpec,
  execPath = process.execPath,
  onUnsettled: (target: string, why: string) => void = () => undefined,
): string[] {
  const a = [
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-net',
    '--unshare-cgroup-try',
    ...disableUserns(),
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'polyclaw',
    '--uid',
    String(SANDBOX_UID),
    '--gid',
    String(SANDBOX_UID),
  ];
  for (const dir of SYSTEM_DIRS) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) a.push('--symlink', fs.readlinkSync(dir), dir);
    else a.push('--ro-bind', dir, dir);
  }
  // Node itself when it lives outside the system dirs (nvm, /opt, ~/bin): the binary alone is
  // all it needs to run the runner; its folder may be a home or an install holding the data dir.
  if (!SYSTEM_DIRS.some((d) => execPath.startsWith(d + '/'))) a.push('--ro-bind', execPath, execPath);
  for (const e of ETC_ENTRIES) {
    const p = path.join('/etc', e);
    if (fs.existsSync(p)) a.push('--ro-bind', p, p);
  }
  // A data folder inside the system view (POLYCLAW_HOME under /usr, an install under /usr/lib
  // run from its folder) would show the central DB, the vault key and every group: an empty
  // folder goes over it. The session's and group's own folders are bound from the host side.
  for (const h of spec.hidden ?? []) {
    const real = fs.existsSync(h) ? fs.realpathSync(h) : path.resolve(h);
    if ([...SYSTEM_DIRS, '/etc'].some((d) => real === d || real.startsWith(d + '/'))) a.push('--tmpfs', real);
  }
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--dir', '/workspace');
  const rw = spec.mounts.filter((m) => m.mode === 'rw').map((m) => m.target);
  const unsettled = settleOverlayTargets(spec.mounts.filter((m) => fs.existsSync(m.source)));
  for (const u of unsettled) onUnsettled(u.mount.target, u.why);
  const left = new Set(unsettled.map((u) => u.mount));
  for (const m of spec.mounts) {
    if (left.has(m)) continue;
    if (!fs.existsSync(m.source)) {
      // A read-only mount over part of a writable one (inbound.db, inbox/ over the session
      // dir) is what keeps that part from the sandbox: without it the part would be writable.
      if (m.mode === 'ro' && rw.some((t) => m.target.startsWith(t + '/')))
        throw new PolyclawError('sandbox', `the read-only overlay ${m.target} has no source (${m.source})`);
      continue;
    }
    a.push(m.mode === 'ro' ? '--ro-bind' : '--bind', m.source, m.target);
  }
  // The root bwrap builds is a tmpfs: make it read-only too, leaving only the rw mounts and /tmp writable.
  a.push('--remount-ro', '/');
  // The environment comes from bwrap's own (bwrapEnv). A shell in front of bwrap (the cgroup
  // wrapper) adds PWD (a host path), and bash SHLVL: those are set or cleared here. The marker is
  // no secret and goes in the arguments too, where orphan cleanup can always read it (a setuid
  // bwrap's environment is not readable).
  a.push('--unsetenv', 'SHLVL', '--unsetenv', 'OLDPWD', '--unsetenv', '_');
  a.push('--setenv', 'PWD', spec.cwd, '--setenv', MARKER_ENV, marker(spec));
  a.push('--chdir', spec.cwd, '--', ...spec.command);
  return a;
}

/**
 * The sandbox's environment, given to bwrap as its own (which it passes on), never as
 * `--setenv` arguments: any local user can read a process's arguments (/proc/PID/cmdline),
 * only its owner its environment, and the gateway token is in it.
 */
export function bwrapEnv(spec: SandboxSpec): Record<string, string> {
  return { ...spec.env, [MARKER_ENV]: marker(spec) };
}

class BwrapRuntime extends ProcessTreeRuntime {
  readonly name = 'bwrap';
  readonly isolating = true;

  constructor(deps: RuntimeDeps) {
    super(deps, 'bwrap');
  }

  async available() {
    const bin = findBwrap();
    if (!bin)
      return { ok: false as const, reason: 'bubblewrap is not installed (apt-get install bubblewrap)' };
    try {
      const { stdout } = await run(bin, ['--version']);
      // A real probe: user namespaces can be disabled even where the binary exists.
      await run(bin, ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--', '/bin/true'], {
        timeout: 5000,
      });
      return { ok: true as const, version: stdout.trim() };
    } catch (err) {
      return {
        ok: false as const,
        reason: `bubblewrap cannot create namespaces here: ${(err as Error).message.split('\n')[0]}`,
      };
    }
  }

  protected launch(spec: SandboxSpec) {
    const args = bwrapArgs(spec, process.execPath, (target, why) =>
      this.log.warn('an overlay is left out of the sandbox: its mount point could not be made', {
        target,
        why,
      }),
    );
    return { argv: [findBwrap() ?? '/usr/bin/bwrap', ...args], env: bwrapEnv(spec) };
  }
}

registerRuntime('bwrap', (deps) => new BwrapRuntime(deps));

/**
 * Resource limits through cgroups, when this host lets us create them: cgroup v2
 * (memory.max, pids.max, cpu.max) or v1 (memory, pids, cpu controllers). The sandbox joins
 * its cgroups in a tiny shell wrapper *before* exec, so no child is ever forked outside them.
 * Every cgroup is named polyclaw-<install>-<sandbox>: orphan cleanup can find exactly ours.
 * The CPU cgroup is made even when its quota cannot bind (a limit of the whole machine): it
 * makes each sandbox one entity to the scheduler, so a sandbox running many processes does not
 * crowd out one running few. (Leaving it out measured no faster: Claude turns A/B 1.02, noise.)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../shared/log.js';
import type { Limits } from './runtime.js';

const ROOT = '/sys/fs/cgroup';

export interface CgroupSet {
  /** Directories created for this sandbox. */
  dirs: string[];
  /** cgroup.procs files the wrapper writes its pid into. */
  procsFiles: string[];
}

type Layout = { kind: 'v2'; base: string } | { kind: 'v1'; memory: string; pids: string; cpu: string } | null;

let cachedLayout: Layout | undefined;

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export function detectLayout(root = ROOT): Layout {
  if (cachedLayout !== undefined && root === ROOT) return cachedLayout;
  let layout: Layout = null;
  const controllers = path.join(root, 'cgroup.controllers');
  if (fs.existsSync(controllers)) {
    const have = fs.readFileSync(controllers, 'utf8').split(/\s+/);
    if (['memory', 'pids', 'cpu'].every((c) => have.includes(c)) && writable(root))
      layout = { kind: 'v2', base: root };
  } else if (['memory', 'pids', 'cpu'].every((c) => writable(path.join(root, c)))) {
    layout = {
      kind: 'v1',
      memory: path.join(root, 'memory'),
      pids: path.join(root, 'pids'),
      cpu: path.join(root, 'cpu'),
    };
  }
  if (root === ROOT) cachedLayout = layout;
  return layout;
}

export function cgroupName(installId: string, sandboxId: string): string {
  return `polyclaw-${installId}-${sandboxId}`;
}

/** Create and configure the cgroups; null when this host offers none (limits then not enforced). */
export function createCgroups(name: string, limits: Limits, log: Logger, root = ROOT): CgroupSet | null {
  const layout = detectLayout(root);
  if (!layout) return null;
  const memBytes = String(limits.memoryMb * 1024 * 1024);
  const period = 100_000;
  const quota = String(Math.max(1000, Math.round(limits.cpus * period)));
  try {
    if (layout.kind === 'v2') {
      const dir = path.join(layout.base, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'memory.max'), memBytes);
      fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
      fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${period}`);
      return { dirs: [dir], procsFiles: [path.join(dir, 'cgroup.procs')] };
    }
    const mem = path.join(layout.memory, name);
    const pids = path.join(layout.pids, name);
    const cpu = path.join(layout.cpu, name);
    for (const d of [mem, pids, cpu]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(mem, 'memory.limit_in_bytes'), memBytes);
    fs.writeFileSync(path.join(pids, 'pids.max'), String(limits.pids));
    fs.writeFileSync(path.join(cpu, 'cpu.cfs_period_us'), String(period));
    fs.writeFileSync(path.join(cpu, 'cpu.cfs_quota_us'), quota);
    return { dirs: [mem, pids, cpu], procsFiles: [mem, pids, cpu].map((d) => path.join(d, 'cgroup.procs')) };
  } catch (err) {
    log.warn('could not create cgroups; sandbox limits not enforced', { err });
    return null;
  }
}

export function cgroupPids(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kill everything left in the cgroups and remove them. */
export function destroyCgroups(dirs: string[], log: Logger): void {
  for (const dir of dirs) {
    for (const pid of cgroupPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') log.warn('kill in cgroup failed', { pid, err });
      }
    }
  }
  for (const dir of dirs) {
    for (let i = 0; i < 20; i++) {
      try {
        fs.rmdirSync(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || i === 19) {
          log.warn('could not remove cgroup', { dir, err });
          break;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
}

/** Cgroup directories of this install (leftovers after a crash). */
export function installCgroups(installId: string): string[] {
  const layout = detectLayout();
  if (!layout) return [];
  const bases = layout.kind === 'v2' ? [layout.base] : [layout.memory, layout.pids, layout.cpu];
  const prefix = `polyclaw-${installId}-`;
  return bases.flatMap((b) => {
    try {
      return fs
        .readdirSync(b)
        .filter((n) => n.startsWith(prefix))
        .map((n) => path.join(b, n));
    } catch {
      return [];
    }
  });
}

/** argv prefix that joins the cgroups, then execs the rest of argv. */
export function joinWrapper(cg: CgroupSet | null): string[] {
  if (!cg) return [];
  const joins = cg.procsFiles.map((f) => `echo $$ > '${f}' || exit 97`).join('; ');
  return ['/bin/sh', '-c', `${joins}; exec "$@"`, 'polyclaw-sandbox'];
}

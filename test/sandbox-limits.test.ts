import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCgroups, detectLayout, joinWrapper } from '../src/sandbox/limits.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

const log = createLogger({ level: 'error' });
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A cgroup filesystem laid out as v1 (one hierarchy per controller) or v2 (one unified tree). */
function fakeRoot(kind: 'v1' | 'v2'): string {
  const root = tempHome('cgroup-');
  roots.push(root);
  if (kind === 'v2') fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  else for (const c of ['memory', 'pids', 'cpu']) fs.mkdirSync(path.join(root, c));
  return root;
}

const read = (...p: string[]) => fs.readFileSync(path.join(...p), 'utf8');

describe('sandbox cgroups', () => {
  it('v1: memory, pids and CPU cgroups with their limits, all joined before exec', () => {
    const root = fakeRoot('v1');
    expect(detectLayout(root)?.kind).toBe('v1');
    const cg = createCgroups('polyclaw-i-a', { memoryMb: 256, cpus: 1.5, pids: 64 }, log, root)!;
    expect(cg.dirs.map((d) => path.relative(root, d))).toEqual([
      'memory/polyclaw-i-a',
      'pids/polyclaw-i-a',
      'cpu/polyclaw-i-a',
    ]);
    expect(read(root, 'memory/polyclaw-i-a/memory.limit_in_bytes')).toBe(String(256 * 1024 * 1024));
    expect(read(root, 'pids/polyclaw-i-a/pids.max')).toBe('64');
    expect(read(root, 'cpu/polyclaw-i-a/cpu.cfs_quota_us')).toBe('150000');
    const wrapper = joinWrapper(cg);
    for (const d of cg.dirs) expect(wrapper[2]).toContain(`echo $$ > '${d}/cgroup.procs' || exit 97`);
    expect(wrapper[2]).toMatch(/exec "\$@"$/);
  });

  it('v2: one cgroup with memory.max, pids.max and cpu.max', () => {
    const root = fakeRoot('v2');
    expect(detectLayout(root)?.kind).toBe('v2');
    const cg = createCgroups('polyclaw-i-b', { memoryMb: 128, cpus: 0.5, pids: 32 }, log, root)!;
    expect(cg.dirs).toEqual([path.join(root, 'polyclaw-i-b')]);
    expect(read(cg.dirs[0]!, 'memory.max')).toBe(String(128 * 1024 * 1024));
    expect(read(cg.dirs[0]!, 'pids.max')).toBe('32');
    expect(read(cg.dirs[0]!, 'cpu.max')).toBe('50000 100000');
  });

  it('no cgroups where the controllers are missing: nothing to join, the sandbox still starts', () => {
    const root = tempHome('cgroup-');
    roots.push(root);
    fs.mkdirSync(path.join(root, 'memory'));
    expect(detectLayout(root)).toBeNull();
    expect(createCgroups('polyclaw-i-c', { memoryMb: 64, cpus: 1, pids: 8 }, log, root)).toBeNull();
    expect(joinWrapper(null)).toEqual([]);
  });
});

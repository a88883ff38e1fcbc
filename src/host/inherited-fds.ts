/**
 * Descriptors the host process inherited from whatever started it (a supervisor's pipe,
 * socket activation, `polyclaw up 3<file`) pass on to every child it spawns, sandboxes
 * included, where the agent reads them at /proc/self/fd/N: only close-on-exec ones stay
 * behind, and Node marks its own but cannot mark inherited ones. `polyclaw up` closes them at
 * start, keeping stdin, stdout, stderr and Node's IPC channel. A descriptor is told apart by
 * its flags in /proc/self/fdinfo (O_CLOEXEC).
 */
import fs from 'node:fs';
import type { Logger } from '../shared/log.js';

const O_CLOEXEC = 0o2000000;

export interface FdDeps {
  /** Folder listing the process's descriptors (default /proc/self/fd). */
  fdDir?: string;
  /** Folder with their flags (default /proc/self/fdinfo). */
  infoDir?: string;
  close?: (fd: number) => void;
  env?: NodeJS.ProcessEnv;
  log: Logger;
}

/** Close the inherited descriptors above stderr; returns the ones closed. */
export function closeInheritedFds(d: FdDeps): number[] {
  const fdDir = d.fdDir ?? '/proc/self/fd';
  const infoDir = d.infoDir ?? '/proc/self/fdinfo';
  const keep = new Set([0, 1, 2]);
  const channel = Number((d.env ?? process.env).NODE_CHANNEL_FD);
  if (Number.isInteger(channel)) keep.add(channel);
  let names: string[];
  try {
    names = fs.readdirSync(fdDir);
  } catch (err) {
    d.log.warn('cannot list inherited descriptors; none closed', { err });
    return [];
  }
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || keep.has(fd)) continue;
    let flags: number;
    try {
      const m = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`${infoDir}/${fd}`, 'utf8'));
      if (!m) continue;
      flags = parseInt(m[1]!, 8);
    } catch {
      continue; // gone since the listing (the listing's own descriptor)
    }
    if (flags & O_CLOEXEC) continue;
    try {
      (d.close ?? fs.closeSync)(fd);
      closed.push(fd);
    } catch (err) {
      d.log.warn('cannot close an inherited descriptor', { fd, err });
    }
  }
  if (closed.length) d.log.info('closed descriptors inherited from the starting process', { fds: closed });
  return closed;
}

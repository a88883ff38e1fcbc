/**
 * Overlay mount points inside writable mounts are settled by the host before bwrap runs.
 *
 * Why: a mount over part of a writable mount (the composed CLAUDE.md or AGENTS.md, a provider's
 * config folder, over the group folder) needs its mount point to exist, and bwrap creates a
 * missing one itself — following symlinks, out of its new root into the host's. The sandbox
 * writes the group folder, and a name not mounted in one sandbox (AGENTS.md under Claude) can
 * be planted as a link that a later sandbox (after a change of provider) would follow: bwrap
 * would create files or folders anywhere the host can write, and mount the overlay there
 * instead of where the agent reads it.
 *
 * Invariants: the entry is settled by path without following links (lstat, unlink, O_NOFOLLOW
 * create); an entry of the wrong kind — a link, a file where a folder belongs — is removed (its
 * link, never what it points to) and made afresh, empty. Those names are the overlays': nothing
 * the agent keeps there is ever visible to it. An overlay whose source is its own mount point
 * (inbound.db over the session folder) is the host's own file and is left alone. Left open: a
 * swap by another running sandbox of the same group in the moment between this and bwrap's mount.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Mount } from './runtime.js';

/** The writable mount a target lies strictly inside (the innermost one), if any. */
function writableParent(mounts: Mount[], target: string): Mount | undefined {
  return mounts
    .filter((p) => p.mode === 'rw' && target.startsWith(p.target + '/'))
    .sort((a, b) => b.target.length - a.target.length)[0];
}

function settle(p: string, kind: 'file' | 'dir'): void {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st && (kind === 'file' ? st.isFile() : st.isDirectory())) return;
  if (st) fs.rmSync(p, { recursive: true, force: true }); // a link goes, not what it points to
  if (kind === 'dir') fs.mkdirSync(p);
  else {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    fs.closeSync(fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644));
  }
}

/** Make each overlay's mount point inside a writable mount a real entry of its kind. */
export function settleOverlayTargets(mounts: Mount[]): void {
  for (const m of mounts) {
    const parent = writableParent(mounts, m.target);
    if (!parent) continue;
    const rel = path.posix.relative(parent.target, m.target).split('/');
    const host = path.join(parent.source, ...rel);
    if (path.resolve(m.source) === path.resolve(host)) continue;
    let cur = parent.source;
    rel.forEach((part, i) => {
      cur = path.join(cur, part);
      settle(cur, i < rel.length - 1 || !m.file ? 'dir' : 'file');
    });
  }
}

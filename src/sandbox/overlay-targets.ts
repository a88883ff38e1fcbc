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
 * Invariants: the entry is settled by path without following links (lstat, rename, O_NOFOLLOW
 * create); an entry of the wrong kind — a link, a file where a folder belongs — is moved aside
 * (NAME.displaced-…, a link without what it points to) and made afresh, empty. An overlay whose
 * mount point cannot be made is left out of the sandbox, never mounted through a link. An overlay whose source is its own mount point
 * (inbound.db over the session folder) is the host's own file and is left alone. A swap by
 * another running sandbox of the same group between this and bwrap's mount cannot happen: in
 * one built for the same provider each such name is a mount point (a rename fails, EBUSY), and
 * sandboxes of a group built for different providers never run at once (session-manager's
 * mustWait).
 */
import { randomUUID } from 'node:crypto';
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
  // Moved aside, never deleted: a link goes without what it points to, and what the agent
  // kept under that name stays in its folder (a removal could also fail on a folder it made
  // read-only). The name is new, so nothing is overwritten.
  if (st) fs.renameSync(p, `${p}.displaced-${randomUUID().slice(0, 8)}`);
  if (kind === 'dir') fs.mkdirSync(p);
  else {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    fs.closeSync(fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644));
  }
}

/**
 * Make each overlay's mount point inside a writable mount a real entry of its kind. Returns the
 * overlays whose mount point could not be made (`why` says why): those are left out of the
 * sandbox — it starts without them — rather than mounted where a link would take them.
 */
export function settleOverlayTargets(mounts: Mount[]): Array<{ mount: Mount; why: string }> {
  const unsettled: Array<{ mount: Mount; why: string }> = [];
  for (const m of mounts) {
    const parent = writableParent(mounts, m.target);
    if (!parent) continue;
    const rel = path.posix.relative(parent.target, m.target).split('/');
    const host = path.join(parent.source, ...rel);
    if (path.resolve(m.source) === path.resolve(host)) continue;
    try {
      let cur = parent.source;
      rel.forEach((part, i) => {
        cur = path.join(cur, part);
        settle(cur, i < rel.length - 1 || !m.file ? 'dir' : 'file');
      });
    } catch (err) {
      unsettled.push({ mount: m, why: (err as Error).message });
    }
  }
  return unsettled;
}

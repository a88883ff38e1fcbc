/**
 * The mount table of ARCHITECTURE §4, computed per sandbox start. Only these paths (plus the
 * read-only system view the runtime adds) exist inside an isolating sandbox: never the data
 * dir beyond this session's and group's folders, never the user's home, never another group.
 */
import fs from 'node:fs';
import path from 'node:path';
import { INBOUND_FILE, INBOUND_JOURNAL } from '../shared/session-db.js';
import type { Mount } from './runtime.js';

export const SANDBOX_APP = '/app';
export const SANDBOX_AGENT = '/workspace/agent';
export const SANDBOX_SESSION = '/workspace/session';

export interface MountInput {
  installDir: string;
  groupDir: string;
  sessionDir: string;
  /** Shared skills folder, mounted read-only when it exists. */
  skillsDir?: string;
  /** Provider surfaces and allowlisted extra mounts. */
  extra?: Mount[];
}

export function buildMounts(input: MountInput): Mount[] {
  const m: Mount[] = [];
  // The install, piecewise: a data dir inside the install tree must never become visible.
  for (const part of ['dist', 'node_modules', 'package.json']) {
    const src = path.join(input.installDir, part);
    if (fs.existsSync(src))
      m.push({
        source: src,
        target: path.posix.join(SANDBOX_APP, part),
        mode: 'ro',
        file: part.endsWith('.json'),
      });
  }
  if (input.skillsDir && fs.existsSync(input.skillsDir))
    m.push({ source: input.skillsDir, target: `${SANDBOX_APP}/skills`, mode: 'ro' });
  m.push({ source: input.groupDir, target: SANDBOX_AGENT, mode: 'rw' });
  m.push({ source: input.sessionDir, target: SANDBOX_SESSION, mode: 'rw' });
  // Host-written parts of the session dir, over the rw mount: the queue and its journal, and inbox/.
  m.push({
    source: path.join(input.sessionDir, INBOUND_FILE),
    target: `${SANDBOX_SESSION}/${INBOUND_FILE}`,
    mode: 'ro',
    file: true,
  });
  m.push({
    source: path.join(input.sessionDir, INBOUND_JOURNAL),
    target: `${SANDBOX_SESSION}/${INBOUND_JOURNAL}`,
    mode: 'ro',
    file: true,
  });
  m.push({ source: path.join(input.sessionDir, 'inbox'), target: `${SANDBOX_SESSION}/inbox`, mode: 'ro' });
  m.push(...(input.extra ?? []));
  return m;
}

/** For a non-isolating runtime, the host path behind a sandbox path. */
export function hostPathFor(mounts: Mount[], target: string): string {
  let best: Mount | null = null;
  for (const m of mounts) {
    if (
      (target === m.target || target.startsWith(m.target + '/')) &&
      (!best || m.target.length > best.target.length)
    )
      best = m;
  }
  if (!best) return target;
  return path.join(best.source, path.posix.relative(best.target, target));
}

/**
 * Skill links: a folder of symlinks, one per skill the group selected, pointing at the shared
 * skills mounted read-only in the sandbox (/app/skills/<name>). Links of deselected skills are
 * removed; anything that is not a link (the agent's own files) is never touched. The folder is
 * the sandbox's to write, so it is used through a handle checked to be that folder (confined.ts):
 * a sandbox that made it (or a folder above it) a symlink cannot steer the host's listing,
 * removals and links into a host folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { folderInside } from '../shared/confined.js';
import { PolyclawError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

export const SANDBOX_SKILLS = '/app/skills';

/**
 * Keep the links of `skills` in the folder `rel` under `root` (a mount root the host trusts).
 * When the sandbox put something else where a folder on the way belongs (a file at .agents),
 * the links are skipped with a warning: a throw here would fail every start of the group, and
 * no sandbox could start to repair it.
 */
export function linkSkills(root: string, rel: string, skills: string[], log: Logger): void {
  let dir: ReturnType<typeof folderInside>;
  try {
    dir = folderInside(root, rel);
  } catch (err) {
    if (!(err instanceof PolyclawError) || err.code !== 'path_refused') throw err;
    log.warn('skills not linked: the sandbox put something else where their folder goes', {
      folder: rel,
      err: err.message,
    });
    return;
  }
  try {
    const want = new Set(skills.map((s) => s.replace(/[^A-Za-z0-9_.-]/g, '_')));
    for (const name of fs.readdirSync(dir.path))
      if (!want.has(name) && isLink(path.join(dir.path, name))) fs.rmSync(path.join(dir.path, name));
    for (const name of want) {
      const link = path.join(dir.path, name);
      if (!fs.existsSync(link) && !isLink(link)) fs.symlinkSync(`${SANDBOX_SKILLS}/${name}`, link);
    }
  } finally {
    dir.close();
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Skill links: a folder of symlinks, one per skill the group selected, pointing at the shared
 * skills mounted read-only in the sandbox (/app/skills/<name>). Links of deselected skills are
 * removed; anything that is not a link (the agent's own files) is never touched.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SANDBOX_SKILLS = '/app/skills';

export function linkSkills(dir: string, skills: string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const want = new Set(skills.map((s) => s.replace(/[^A-Za-z0-9_.-]/g, '_')));
  for (const name of fs.readdirSync(dir))
    if (!want.has(name) && isLink(path.join(dir, name))) fs.rmSync(path.join(dir, name));
  for (const name of want) {
    const link = path.join(dir, name);
    if (!fs.existsSync(link) && !isLink(link)) fs.symlinkSync(`${SANDBOX_SKILLS}/${name}`, link);
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

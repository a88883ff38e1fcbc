/** A random id per data dir: names this install's sandboxes and cgroups so cleanup never touches another's. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

export function installId(file: string): string {
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[a-f0-9]{8,32}$/.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomBytes(6).toString('hex');
  fs.writeFileSync(file, id, { mode: 0o600 });
  return id;
}

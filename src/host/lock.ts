/**
 * One host per data directory. The lock file holds the owner's pid; it is taken with O_EXCL,
 * and a lock whose pid is no longer a live polyclaw process (kill -9) is taken over.
 */
import fs from 'node:fs';
import { PolyclawError } from '../shared/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A pid reused by an unrelated process must not block the start: only a `polyclaw up` counts.
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const isPolyclaw = args.some((a) => a.endsWith('polyclaw') || a.endsWith('cli/main.js'));
    return isPolyclaw && args.includes('up');
  } catch {
    return true;
  }
}

export function acquireLock(file: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file, { force: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new PolyclawError(
          'already_running',
          `another Polyclaw host (pid ${pid}) is already running on this POLYCLAW_HOME`,
        );
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new PolyclawError('already_running', `could not take the host lock ${file}`);
}

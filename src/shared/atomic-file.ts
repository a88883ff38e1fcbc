/**
 * Files written whole or not at all. The temporary name is random: several writers may share
 * a folder — each sandbox's runner is pid 2 in its own namespace, and the sandboxes of one
 * group share its provider state — so a pid-named temporary collided, one writer renaming away
 * the file another was still writing. It is created new (O_EXCL, O_NOFOLLOW), so a link or FIFO
 * planted at the name fails the open instead of being written through.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';

/** `data` in a new file beside `file`; returns its name. */
export function writeTemp(file: string, data: string | Buffer, mode = 0o644): string {
  const tmp = `${file}.${randomUUID()}.tmp`;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, data); // all of it: one write(2) may write less (a filling disk)
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return tmp;
}

/** Replace `file` with `data` in one rename. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = writeTemp(file, data, mode);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

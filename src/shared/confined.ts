/**
 * Host access to files and folders a sandbox can write (the session dir, the group folder, its
 * Claude config dir). The sandbox can turn any component into a symlink (outbox/x -> /, or
 * outbox itself), put a FIFO where a file was, or swap either between a host check and a host
 * use — and several sandboxes of one group run at once, so "the sandbox is stopped" is no
 * guarantee. So every decision is made on a descriptor, never on a path checked before:
 *  - a file is resolved to an O_PATH descriptor (last component not followed), judged by fstat
 *    (type, size) and by its /proc link (where it really is), and only then is that very inode
 *    opened through the link — nothing that blocks or acts on open (a FIFO, a device) is opened;
 *  - a folder is resolved the same way and then used as /proc/self/fd/N/…, which names that
 *    inode whatever happens to its path afterwards.
 * Linux only (like the sandbox); elsewhere the checks fall back to O_NOFOLLOW and realpath.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PolyclawError } from './errors.js';

/** The largest file one message carries, either way (send_file, an agent CLI's output, agent to agent). */
export const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;

/** The one wording of a file over a size limit (code 'file_too_large'). */
export const tooLarge = (what: string, bytes: number, limit = MAX_ATTACHMENT_BYTES) =>
  new PolyclawError(
    'file_too_large',
    `${what} is ${(bytes / 1048576).toFixed(1)} MB; the limit is ${limit / 1048576} MB`,
  );

/** Linux's O_PATH: a descriptor naming a file without opening it. */
const O_PATH = 0o10000000;
const LINUX = process.platform === 'linux';
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;
const read = promisify(fs.read);

/** Where descriptor `fd` (opened for `abs`) really is. */
const realOf = (fd: number, abs: string) =>
  LINUX ? fs.readlinkSync(`/proc/self/fd/${fd}`) : fs.realpathSync(abs);

const inside = (real: string, root: string) => real === root || real.startsWith(root + path.sep);

/**
 * Open `rel` (relative to `dir`) for reading when it is a regular file of at most `max` bytes
 * whose real location is under <real dir>/<sub>/. Throws PolyclawError 'path_refused' (outside
 * <sub>/ by name), 'file_missing' (absent, not a regular file, or really elsewhere) or
 * 'file_too_large'. The caller closes the returned descriptor.
 */
function openInside(dir: string, sub: string, rel: string, max: number): { fd: number; size: number } {
  const root = path.join(dir, sub);
  const abs = path.resolve(dir, rel);
  if (!abs.startsWith(root + path.sep)) throw new PolyclawError('path_refused', `${rel} is outside ${sub}/`);
  const missing = () =>
    new PolyclawError('file_missing', `${rel} is missing or not a regular file inside ${sub}/`);
  let pfd: number;
  try {
    pfd = fs.openSync(abs, (LINUX ? O_PATH : O_RDONLY | O_NONBLOCK) | O_NOFOLLOW);
  } catch {
    throw missing();
  }
  try {
    const st = fs.fstatSync(pfd);
    if (!st.isFile()) throw missing();
    if (!inside(realOf(pfd, abs), path.join(fs.realpathSync(dir), sub))) throw missing();
    if (st.size > max) throw tooLarge(rel, st.size, max);
    if (!LINUX) return { fd: pfd, size: st.size };
    const fd = fs.openSync(`/proc/self/fd/${pfd}`, O_RDONLY | O_NONBLOCK);
    fs.closeSync(pfd);
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(pfd);
    throw err;
  }
}

/** Whether `openInside` accepts the file now (throws its errors). */
export function checkInside(dir: string, sub: string, rel: string, max = MAX_ATTACHMENT_BYTES): void {
  fs.closeSync(openInside(dir, sub, rel, max).fd);
}

/**
 * The bytes of a file `openInside` accepts, read from that descriptor: at most the size fstat
 * gave (a file the sandbox keeps growing cannot make the host read past the limit).
 */
export async function readInside(
  dir: string,
  sub: string,
  rel: string,
  max = MAX_ATTACHMENT_BYTES,
): Promise<Buffer> {
  const { fd, size } = openInside(dir, sub, rel, max);
  try {
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await read(fd, buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** `readInside`, synchronously (for small files read while composing a sandbox's start). */
export function readInsideSync(dir: string, sub: string, rel: string, max = MAX_ATTACHMENT_BYTES): Buffer {
  const { fd, size } = openInside(dir, sub, rel, max);
  try {
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The folder `rel` under `root` (a folder the host trusts: a mount root), made real: each
 * missing component is created, a component the sandbox turned into a symlink is removed (the
 * link, not its target) and created as a folder; anything else that is not a folder refuses
 * (PolyclawError 'path_refused'). Returns a handle whose `path` (/proc/self/fd/N on Linux) names
 * that folder's inode for as long as it is open: use it for every access, then close().
 */
export function folderInside(root: string, rel: string): { path: string; close(): void } {
  let cur = root;
  for (const part of path.normalize(rel).split(path.sep).filter(Boolean)) {
    if (part === '..') throw new PolyclawError('path_refused', `${rel} leaves ${root}`);
    cur = path.join(cur, part);
    const st = fs.lstatSync(cur, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) fs.rmSync(cur);
    else if (st && !st.isDirectory())
      throw new PolyclawError('path_refused', `${path.relative(root, cur)} is not a folder`);
    if (!st?.isDirectory()) fs.mkdirSync(cur);
  }
  const fd = fs.openSync(cur, (LINUX ? O_PATH : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW);
  try {
    if (realOf(fd, cur) !== path.join(fs.realpathSync(root), path.normalize(rel)))
      throw new PolyclawError('path_refused', `${rel} moved while it was being opened`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { path: LINUX ? `/proc/self/fd/${fd}` : cur, close: () => fs.closeSync(fd) };
}

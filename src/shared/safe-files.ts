/**
 * Attachment folders (inbox/<msg>/, outbox/<msg>/) are shared with an untrusted sandbox, so
 * every write refuses: names that are not a single plain path segment, any symlink on the way,
 * and a file that already exists (O_EXCL + O_NOFOLLOW: no check-then-write race).
 * Every host read of a sandbox-written file is decided on the open descriptor, never on a path
 * checked before: the sandbox can turn any component into a symlink (outbox/x -> /, or outbox
 * itself) or swap a file between a check and a read, and the host must not follow it out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PolyclawError } from './errors.js';

/** The largest file one message carries, either way (send_file, an agent CLI's output, agent to agent). */
export const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;

/** The one wording of a file over MAX_ATTACHMENT_BYTES (code 'file_too_large'). */
export const tooLarge = (what: string, bytes: number) =>
  new PolyclawError(
    'file_too_large',
    `${what} is ${(bytes / 1048576).toFixed(1)} MB; the limit is ${MAX_ATTACHMENT_BYTES / 1048576} MB`,
  );

const SAFE_SEGMENT = /^[^/\\\0]{1,200}$/;

export function assertSafeSegment(name: string, what: string): void {
  if (!SAFE_SEGMENT.test(name) || name === '.' || name === '..') {
    throw new PolyclawError(
      'path_refused',
      `${what} "${name}" is not a plain file name (one name, no slashes, not . or ..)`,
    );
  }
}

/** Refuse if any component from root (exclusive) to target (inclusive) is a symlink. */
function assertNoSymlinks(root: string, target: string): void {
  const rel = path.relative(root, target);
  let cur = root;
  if (fs.lstatSync(root).isSymbolicLink()) throw new PolyclawError('path_refused', `${root} is a symlink`);
  for (const part of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (st.isSymbolicLink()) throw new PolyclawError('path_refused', `refusing symlink at ${part}`);
  }
}

/**
 * Write `data` as root/<folder>/<name>, creating the folder. Returns the absolute path written.
 * Throws PolyclawError('path_refused') for traversal, symlinks or an existing file.
 */
export function writeAttachment(root: string, folder: string, name: string, data: Buffer | string): string {
  assertSafeSegment(folder, 'folder');
  assertSafeSegment(name, 'file name');
  const dir = path.join(root, folder);
  const file = path.join(dir, name);
  if (path.dirname(file) !== dir || path.dirname(dir) !== root) {
    throw new PolyclawError('path_refused', `"${folder}/${name}" escapes ${path.basename(root)}/`);
  }
  fs.mkdirSync(root, { recursive: true });
  assertNoSymlinks(root, dir);
  fs.mkdirSync(dir, { recursive: true });
  assertNoSymlinks(root, file);
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o644,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new PolyclawError('path_refused', `"${folder}/${name}" already exists`);
    if (code === 'ELOOP') throw new PolyclawError('path_refused', `refusing symlink at "${folder}/${name}"`);
    throw err;
  }
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Linux's O_PATH: a descriptor naming a file without opening it (no device or FIFO side effects). */
const O_PATH = 0o10000000;
const LINUX = process.platform === 'linux';

/**
 * Open `rel` (relative to `dir`) for reading when it is a regular file of at most
 * MAX_ATTACHMENT_BYTES whose real location is under <real dir>/<sub>/. On Linux the path is
 * first resolved to an O_PATH descriptor (last component not followed) and everything is
 * decided on it — its type and size by fstat, its location by its /proc link — before that
 * very inode is opened through the link: a symlink in any component, a FIFO, a device or a swap
 * after an earlier check can neither lead outside nor make the host open something that
 * blocks or acts on open. Elsewhere: O_NOFOLLOW | O_NONBLOCK and a realpath check (racy).
 * Throws PolyclawError 'path_refused' / 'file_missing' / 'file_too_large'.
 */
async function openInside(
  dir: string,
  sub: string,
  rel: string,
): Promise<{ fh: fs.promises.FileHandle; size: number }> {
  const root = path.join(dir, sub);
  const abs = path.resolve(dir, rel);
  if (!abs.startsWith(root + path.sep)) throw new PolyclawError('path_refused', `${rel} is outside ${sub}/`);
  const missing = () =>
    new PolyclawError('file_missing', `${rel} is missing or not a regular file inside ${sub}/`);
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let ph: fs.promises.FileHandle;
  try {
    ph = await fs.promises.open(abs, (LINUX ? O_PATH : O_RDONLY | O_NONBLOCK) | O_NOFOLLOW);
  } catch {
    throw missing();
  }
  try {
    const st = await ph.stat();
    if (!st.isFile()) throw missing();
    const real = LINUX
      ? await fs.promises.readlink(`/proc/self/fd/${ph.fd}`)
      : await fs.promises.realpath(abs);
    if (!real.startsWith(path.join(await fs.promises.realpath(dir), sub) + path.sep)) throw missing();
    if (st.size > MAX_ATTACHMENT_BYTES) throw tooLarge(rel, st.size);
    if (!LINUX) return { fh: ph, size: st.size };
    const fh = await fs.promises.open(`/proc/self/fd/${ph.fd}`, O_RDONLY | O_NONBLOCK);
    await ph.close();
    return { fh, size: st.size };
  } catch (err) {
    await ph.close();
    throw err;
  }
}

/** Whether `openInside` accepts the file now (throws its errors). */
export async function checkInside(dir: string, sub: string, rel: string): Promise<void> {
  await (await openInside(dir, sub, rel)).fh.close();
}

/**
 * The bytes of a file `openInside` accepts, read from that descriptor: at most the size fstat
 * gave (a file the sandbox keeps growing cannot make the host read past the limit).
 */
export async function readInside(dir: string, sub: string, rel: string): Promise<Buffer> {
  const { fh, size } = await openInside(dir, sub, rel);
  try {
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

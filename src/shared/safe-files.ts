/**
 * Attachment folders (inbox/<msg>/, outbox/<msg>/) are shared with an untrusted sandbox, so
 * every write refuses: names that are not a single plain path segment, any symlink on the way,
 * and a file that already exists (O_EXCL + O_NOFOLLOW: no check-then-write race).
 * Host reads of sandbox-written files: confined.ts.
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
  // 200 bytes, not characters: a file system takes at most 255 bytes per name.
  if (!SAFE_SEGMENT.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > 200) {
    throw new PolyclawError(
      'path_refused',
      `${what} "${name}" is not a plain file name (one name of at most 200 bytes, no slashes, not . or ..)`,
    );
  }
}

/**
 * The names a message's files are stored under, one per name given, in order: each a plain
 * segment (the last one of a path, control characters and NUL dropped, at most 200 bytes of
 * whole characters with its extension kept, "file" when nothing is left) and unique within the message
 * ("image.png", "image-2.png", …). Platforms name files freely — two pasted screenshots are
 * both "image.png" — and a name is no reason to lose a message.
 */
export function storedNames(names: string[]): string[] {
  const taken = new Set<string>();
  return names.map((raw) => {
    // eslint-disable-next-line no-control-regex
    let base = (raw.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
    if (base === '' || base === '.' || base === '..') base = 'file';
    const dot = base.lastIndexOf('.');
    const ext = dot > 0 && base.length - dot <= 20 ? base.slice(dot) : '';
    const stem = base.slice(0, base.length - ext.length);
    const fit = (suffix: string) => {
      // Whole characters, at most 200 bytes: a file system's limit is in bytes (255 on Linux).
      const chars = [...stem.slice(0, 400)].slice(0, 200);
      while (chars.length > 0 && Buffer.byteLength(chars.join('') + suffix + ext) > 200) chars.pop();
      return chars.join('') + suffix + ext;
    };
    // One name to a file system that ignores case or Unicode normalization (macOS) is one here.
    const key = (s: string) => s.normalize('NFC').toLowerCase();
    let name = fit('');
    for (let n = 2; taken.has(key(name)); n++) name = fit(`-${n}`);
    taken.add(key(name));
    return name;
  });
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

/**
 * One host per data directory: the lock file holds the owner's pid and start time. Invariants:
 *  - a lock appears whole or not at all: the pid goes into a private temp file that is then
 *    hard-linked into place (link fails when the name exists, so exactly one starter wins);
 *  - a lock that is not a pid (empty, unreadable, damaged) counts as held: only an older
 *    Polyclaw wrote it in two steps, which takes microseconds. Once it is ABANDONED_MS old no one
 *    is still writing it, and it is taken over like a stale one;
 *  - a stale lock (its owner is gone, e.g. after kill -9, or its pid is now another process's)
 *    is never deleted in place: the holder of the takeover claim (a second lock, taken the same way) moves it aside
 *    to a unique name, checks it moved the very file it judged stale (else puts it back), and
 *    then links its own. So two starters that saw the same stale lock cannot remove each other's
 *    fresh one. Left open: a claimer killed mid-takeover whose stale claim is then cleared by
 *    three starters at once in the same microseconds.
 *  - only the owner removes its lock, and only while the file there is the one it linked.
 * A kill -9 in the middle of taking the lock can leave a small `host.lock.new-…` file behind;
 * it is harmless.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { PolyclawError } from '../shared/errors.js';

/** A lock that is not a pid and older than this is abandoned, not being written. */
export const ABANDONED_MS = 60_000;
const ATTEMPTS = 5;

/** What a lock path held when looked at: enough to tell whether it was replaced since. */
interface Seen {
  dev: number;
  ino: number;
  mtimeMs: number;
  text: string | null;
}

/** When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); null when unknown. */
function startOf(pid: number | 'self'): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces and parentheses: field 3 onwards.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** What a lock holds: the owner's pid and, where /proc tells it, when that process started. */
const lockText = () => [process.pid, startOf('self')].filter((x) => x !== null).join(' ');

/**
 * Whether the lock's owner still runs. A pid reused by another process must not block the
 * start, so a lock naming its start time is live only while that pid started then — however
 * the host was launched (a wrapper, an embedder, a supervisor that renames it). A lock without
 * one (an older Polyclaw's) counts only a process whose command line is `polyclaw up`.
 */
function alive(pid: number, start: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start !== null) {
    const now = startOf(pid);
    return now === null || now === start;
  }
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const isPolyclaw = args.some((a) => a.endsWith('polyclaw') || a.endsWith('cli/main.js'));
    return isPolyclaw && args.includes('up');
  } catch {
    return true;
  }
}

const isCode = (err: unknown, code: string) => (err as NodeJS.ErrnoException).code === code;

/** Null when nothing is there; text null when it cannot be read. */
function look(file: string): Seen | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    try {
      const st = fs.lstatSync(file);
      return { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, text: null };
    } catch (e) {
      if (isCode(e, 'ENOENT')) return null;
      throw e;
    }
  }
  try {
    const st = fs.fstatSync(fd);
    return { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, text: fs.readFileSync(fd, 'utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

const same = (a: Seen, b: Seen) =>
  a.dev === b.dev && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.text === b.text;

/** The owner a lock names: "PID START" (START since this format), or null when it names none. */
function ownerIn(seen: Seen): { pid: number; start: string | null } | null {
  const m = /^(\d+)(?: (\d+))?$/.exec(seen.text?.trim() ?? '');
  const pid = m ? Number(m[1]) : 0;
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, start: m![2] ?? null } : null;
}

const pidIn = (seen: Seen): number | null => ownerIn(seen)?.pid ?? null;

/** live: a running host holds it; held: not a pid yet and recent; stale: free to take over. */
function verdict(seen: Seen): 'live' | 'held' | 'stale' {
  const owner = ownerIn(seen);
  if (owner === null) return Date.now() - seen.mtimeMs > ABANDONED_MS ? 'stale' : 'held';
  return owner.pid !== process.pid && alive(owner.pid, owner.start) ? 'live' : 'stale';
}

function linkNew(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (err) {
    if (isCode(err, 'EEXIST')) return false;
    throw err;
  }
}

const uniqueName = (file: string, tag: string) =>
  `${file}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Moves `seen` out of `file`; anything else found there instead is put back untouched. */
function moveAside(file: string, seen: Seen): void {
  const aside = uniqueName(file, 'stale');
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return;
    throw err;
  }
  const moved = look(aside);
  // A newer file took its place after we looked: restore it. If yet another appeared meanwhile
  // it keeps the name (the case the header leaves open).
  if (!moved || !same(moved, seen)) linkNew(aside, file);
  fs.rmSync(aside, { force: true });
}

function removeIfSame(file: string, ino: number): void {
  const now = look(file);
  if (now?.ino === ino) fs.rmSync(file, { force: true });
}

const running = (message: string) => new PolyclawError('already_running', message);

/** Under the takeover claim, moves the stale lock aside; throws when another starter is at it. */
function takeOver(file: string, stale: Seen, mine: string, myIno: number): void {
  const claim = `${file}.takeover`;
  if (!linkNew(mine, claim)) {
    const c = look(claim);
    if (c && verdict(c) === 'stale') moveAside(claim, c);
    else if (c)
      throw running(
        'another Polyclaw host is starting on this POLYCLAW_HOME (taking over the lock of one that stopped)',
      );
    return;
  }
  try {
    const now = look(file);
    if (now && same(now, stale)) moveAside(file, now);
  } finally {
    removeIfSame(claim, myIno);
  }
}

/** Takes the host lock or throws already_running; returns the release function. */
export function acquireLock(file: string): () => void {
  const mine = uniqueName(file, 'new');
  fs.writeFileSync(mine, lockText(), { mode: 0o600, flag: 'wx' });
  try {
    const myIno = fs.statSync(mine).ino;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (linkNew(mine, file)) return () => release(file, myIno);
      const seen = look(file);
      if (!seen) continue;
      const v = verdict(seen);
      if (v === 'live')
        throw running(`another Polyclaw host (pid ${pidIn(seen)}) is already running on this POLYCLAW_HOME`);
      if (v === 'held')
        throw running(
          `the host lock ${file} is empty or unreadable: another Polyclaw host may be starting; try again in a minute`,
        );
      takeOver(file, seen, mine, myIno);
    }
    throw running(`could not take the host lock ${file}: other starters kept changing it`);
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

/** Whether a host holds the lock at `file` now, or is taking it (a lock not yet written). */
export function lockHeld(file: string): boolean {
  const seen = look(file);
  return seen !== null && verdict(seen) !== 'stale';
}

function release(file: string, ino: number): void {
  const now = look(file);
  if (now?.ino === ino && pidIn(now) === process.pid) fs.rmSync(file, { force: true });
}

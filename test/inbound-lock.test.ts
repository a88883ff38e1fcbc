/**
 * A sandbox mounts inbound.db read-only, but a read-only handle can still hold SQLite's shared
 * lock, and while it does no host write to the file can commit. The host's one thread must not
 * wait out the whole busy timeout at every write (stalling every session and channel), nor lose
 * the write: the sandbox holding the lock is stopped and the write goes through.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionQueue, type RunnerLine } from '../src/host/session-queue.js';
import { INBOUND_FILE } from '../src/shared/session-db.js';
import { TERMINAL as routing } from './support/meta.js';
import { tempHome } from './support/cli.js';

let dir: string;
let host: SessionQueue;
const lockers: ChildProcess[] = [];

beforeEach(() => {
  dir = tempHome('polyclaw-inlock-');
  host = new SessionQueue(path.join(dir, 'session'));
});
afterEach(() => {
  for (const c of lockers.splice(0)) c.kill('SIGKILL');
  host.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Another process (as an agent in the sandbox) opens inbound.db read-only and keeps a read open. */
async function holdReadLock(): Promise<ChildProcess> {
  const code = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1], { readonly: true });
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM messages_in').get();
    process.stdout.write('locked\\n');
    setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ['-e', code, path.join(host.dir, INBOUND_FILE)], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  lockers.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout!.once('data', () => resolve());
    c.once('exit', (code) => reject(new Error(`locker exited ${code}`)));
  });
  return c;
}

/** The sandbox's line: stopping it kills the locker, as stopping a sandbox kills its processes. */
function lineFor(locker: () => ChildProcess) {
  const stops: string[] = [];
  const line: RunnerLine = {
    tell: () => false,
    stop: (why) => {
      stops.push(why);
      locker().kill('SIGKILL');
    },
  };
  return { line, stops };
}

const send = (text: string) =>
  host.enqueue({ kind: 'chat', trigger: true, routing, content: { text, attachments: [] } });

describe('a sandbox holding inbound.db locked', () => {
  it('is stopped, and the host write it blocked goes through: a message queued, a message settled', async () => {
    let locker = await holdReadLock();
    const { line, stops } = lineFor(() => locker);
    host.attachRunner(line);
    const m = send('hello');
    expect(host.get(m.id)?.status).toBe('pending');
    expect(stops).toEqual([expect.stringMatching(/kept inbound\.db locked/)]);
    locker = await holdReadLock();
    expect(host.markDone(m.id, 'completed')).toBe(true);
    expect(host.get(m.id)?.status).toBe('completed');
    expect(stops).toHaveLength(2);
  }, 20_000);

  it('with no sandbox to stop, the write fails with the lock error, and nothing is half-written', async () => {
    await holdReadLock();
    expect(() => send('hello')).toThrow(/database is locked/);
    for (const c of lockers.splice(0)) c.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    expect(host.pending()).toEqual([]);
  }, 20_000);
});

/** Concurrency cap, FIFO queueing, idle stop and orphan cleanup of sandboxes. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxPool } from '../src/host/sandbox-pool.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import type { ExitInfo, SandboxHandle, SandboxSpec } from '../src/sandbox/runtime.js';
import { createLogger } from '../src/shared/log.js';
import { processAlive, tempHome, waitFor } from './support/cli.js';

const log = createLogger({ level: 'error' });

function fakeHandle(id: string): SandboxHandle & { exit: () => void } {
  let resolve!: (i: ExitInfo) => void;
  const exited = new Promise<ExitInfo>((r) => (resolve = r));
  const exit = () => resolve({ code: 0, signal: null });
  return {
    id,
    pid: 1,
    exited,
    exit,
    stop: async () => (exit(), exited),
    kill: exit,
    stdin: { end: exit } as unknown as NodeJS.WritableStream,
    stdout: null,
    stderr: null,
  };
}

describe('sandbox pool', () => {
  it('runs at most N at once, queues the rest FIFO, and evicts an idle one to make room', async () => {
    const started: string[] = [];
    const busy = new Set(['a', 'b']);
    const handles = new Map<string, ReturnType<typeof fakeHandle>>();
    const pool = new SandboxPool({
      maxConcurrent: 2,
      idleTimeoutMs: 60_000,
      log,
      start: (s) => {
        started.push(s);
        const h = fakeHandle(s);
        handles.set(s, h);
        return h;
      },
      onExit: () => undefined,
      onStartFailed: () => undefined,
      isBusy: (s) => busy.has(s),
    });
    pool.request('a');
    pool.request('b');
    pool.request('c');
    pool.request('d');
    expect(started).toEqual(['a', 'b']);
    expect(pool.waitingCount()).toBe(2);
    busy.delete('a');
    handles.get('b')!.exit();
    await waitFor(() => started.length === 3, 1000, 'c started');
    expect(started).toEqual(['a', 'b', 'c']);
    // d waits; a is idle, so a new request evicts it.
    pool.request('d');
    await waitFor(() => started.includes('d'), 1000, 'd started');
    expect(pool.isRunning('a')).toBe(false);
    await pool.stopAll();
  });

  it('a waiter gets the slot as soon as a busy session goes idle, and a session waiting on its own stop evicts no one', async () => {
    const started: string[] = [];
    const stopped: string[] = [];
    const busy = new Set(['a']);
    const pool = new SandboxPool({
      maxConcurrent: 1,
      idleTimeoutMs: 60_000,
      log,
      start: (s) => {
        started.push(s);
        const h = fakeHandle(s);
        void h.exited.then(() => stopped.push(s));
        return h;
      },
      onExit: () => undefined,
      onStartFailed: () => undefined,
      isBusy: (s) => busy.has(s),
    });
    pool.request('a');
    pool.request('b'); // a is busy: b waits
    expect(started).toEqual(['a']);
    busy.delete('a'); // a's turn ends; no new request comes
    pool.makeRoom();
    await waitFor(() => started.length === 2, 1000, 'b started');
    expect(started).toEqual(['a', 'b']);

    // Under the cap, a session whose sandbox is still stopping waits for it alone.
    const roomy = new SandboxPool({
      maxConcurrent: 8,
      idleTimeoutMs: 60_000,
      log,
      start: (s) => {
        started.push(s);
        const h = fakeHandle(s);
        h.stop = async () => h.exited; // stops only when told it has exited
        h.stdin = { end: () => undefined } as unknown as NodeJS.WritableStream;
        void h.exited.then(() => stopped.push(s));
        return h;
      },
      onExit: () => undefined,
      onStartFailed: () => undefined,
      isBusy: () => false,
    });
    roomy.request('s');
    roomy.request('t');
    void roomy.stop('s');
    roomy.request('s');
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).not.toContain('t');
  });

  it('a session waiting for its own sandbox to stop keeps its place when another slot frees first', async () => {
    const started: string[] = [];
    const handles = new Map<string, ReturnType<typeof fakeHandle>>();
    const pool = new SandboxPool({
      maxConcurrent: 2,
      idleTimeoutMs: 60_000,
      log,
      start: (s) => {
        started.push(s);
        const h = fakeHandle(s);
        h.stop = async () => h.exited; // exits only when told to
        h.stdin = { end: () => undefined } as unknown as NodeJS.WritableStream;
        handles.set(s, h);
        return h;
      },
      onExit: () => undefined,
      onStartFailed: () => undefined,
      isBusy: () => true,
    });
    pool.request('a');
    pool.request('b');
    void pool.stop('a');
    pool.request('a'); // waits for its old sandbox to go
    handles.get('b')!.exit();
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual(['a', 'b']);
    handles.get('a')!.exit();
    await waitFor(() => started.length === 3, 1000, 'a started again');
    expect(started).toEqual(['a', 'b', 'a']);
    handles.get('a')!.exit();
    await pool.stopAll();
  });

  it('stops a sandbox idle for idleTimeoutMs but never a busy one', async () => {
    let busy = true;
    const exits: string[] = [];
    const pool = new SandboxPool({
      maxConcurrent: 4,
      idleTimeoutMs: 50,
      log,
      start: (s) => fakeHandle(s),
      onExit: (s) => exits.push(s),
      onStartFailed: () => undefined,
      isBusy: () => busy,
    });
    pool.request('a');
    await new Promise((r) => setTimeout(r, 150));
    expect(pool.isRunning('a')).toBe(true);
    busy = false;
    await waitFor(() => exits.includes('a'), 1000, 'idle stop');
    await pool.stopAll();
  });
});

describe('sandbox pool: retire (group settings changed)', () => {
  function retirePool(isBusy: (s: string) => boolean) {
    const exits: string[] = [];
    const started: string[] = [];
    const pool = new SandboxPool({
      maxConcurrent: 4,
      idleTimeoutMs: 60_000,
      log,
      start: (s) => (started.push(s), fakeHandle(s)),
      onExit: (s) => exits.push(s),
      onStartFailed: () => undefined,
      isBusy,
    });
    return { pool, exits, started };
  }

  it('stops an idle sandbox at once, and the next request starts a fresh one', async () => {
    const { pool, exits, started } = retirePool(() => false);
    pool.request('a');
    pool.retire('a');
    expect(pool.isRunning('a')).toBe(false);
    await waitFor(() => exits.includes('a'), 1000, 'retired stop');
    pool.request('a');
    expect(started).toEqual(['a', 'a']);
    expect(pool.isRunning('a')).toBe(true);
    await pool.stopAll();
  });

  it('keeps a busy sandbox until its turn is over, then stops it within the recheck', async () => {
    let busy = true;
    const { pool, exits } = retirePool(() => busy);
    pool.request('a');
    pool.retire('a');
    await new Promise((r) => setTimeout(r, 700));
    expect(pool.isRunning('a')).toBe(true);
    expect(exits).toEqual([]);
    busy = false;
    const t0 = Date.now();
    await waitFor(() => exits.includes('a'), 1000, 'stop after the turn');
    expect(Date.now() - t0).toBeLessThan(600); // the recheck, not the 60 s idle timeout
    await pool.stopAll();
  });

  it('never stops a retiring sandbox while it is busy, even when touched or retired again', async () => {
    const busyUntil = Date.now() + 800;
    const stoppedAt: number[] = [];
    const { pool } = retirePool(() => Date.now() < busyUntil);
    pool.request('a');
    const h = pool.handle('a')!;
    const stop = h.stop;
    h.stdin!.end = (() => (stoppedAt.push(Date.now()), void stop())) as never;
    pool.retire('a');
    await new Promise((r) => setTimeout(r, 200));
    pool.touch('a'); // new work for the busy sandbox
    pool.retire('a');
    await waitFor(() => stoppedAt.length > 0, 2000, 'retired stop');
    expect(stoppedAt[0]).toBeGreaterThanOrEqual(busyUntil);
    expect(stoppedAt).toHaveLength(1);
    await pool.stopAll();
  });

  it('ignores sessions without a running sandbox', async () => {
    const { pool, started } = retirePool(() => false);
    pool.retire('nobody');
    expect(started).toEqual([]);
    await pool.stopAll();
  });
});

describe('orphan cleanup', () => {
  let home: string | null = null;
  afterEach(() => home && fs.rmSync(home, { recursive: true, force: true }));

  it('kills sandboxes a dead host left behind, only those of this install', async () => {
    home = tempHome();
    const runDir = path.join(home, 'run');
    const runtime = runtimeRegistry.get('process')({ log, runDir });
    const spec = (installId: string, id: string): SandboxSpec => ({
      id,
      installId,
      mounts: [],
      env: {},
      command: ['/bin/sleep', '60'],
      cwd: home!,
      limits: { memoryMb: 256, cpus: 1, pids: 64 },
    });
    const mine = runtime.start(spec('aaaa1111', 'one'));
    const theirs = runtime.start(spec('bbbb2222', 'two'));
    expect(fs.readdirSync(runDir).sort()).toEqual(['one.json', 'two.json']);
    // A new host of install aaaa1111 starts: only its own orphan goes.
    expect(await runtime.cleanupOrphans('aaaa1111')).toBe(1);
    await mine.exited;
    expect(processAlive(theirs.pid)).toBe(true);
    theirs.kill();
    await theirs.exited;
    expect(fs.readdirSync(runDir)).toEqual([]);
  });
});

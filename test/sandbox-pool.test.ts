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

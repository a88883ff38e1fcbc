/**
 * At most N sandboxes run at once; further sessions wait in FIFO order. While someone waits,
 * the least recently active idle sandbox is stopped to make room (on each request, and each
 * time a turn may have ended: see makeRoom). A sandbox with no activity
 * for idleTimeoutMs is stopped; a busy one (a turn in flight) never is.
 *
 * A sandbox is retired when the settings it was built from change: stopped now if idle, else
 * re-checked every RETIRE_RECHECK_MS and stopped as soon as it is no longer busy. Invariant: no
 * path (idle, eviction, retirement) stops a busy sandbox; only stopAll, an explicit stop and
 * the stuck-turn kill do. Work arriving after the stop starts a fresh sandbox through request().
 */
import type { Logger } from '../shared/log.js';
import type { ExitInfo, SandboxHandle } from '../sandbox/runtime.js';

/** How often a retiring sandbox that is still busy is checked again. */
export const RETIRE_RECHECK_MS = 250;

export interface PoolDeps {
  maxConcurrent: number;
  idleTimeoutMs: number;
  log: Logger;
  now?: () => number;
  /** Start the sandbox of a session (throws if it cannot be built). */
  start(sessionId: string): SandboxHandle;
  /**
   * Called once per sandbox exit, whatever the cause. `requested` is true when the pool stopped
   * it (idle, eviction, retirement, stop, stopAll); false when it ended on its own or was killed.
   */
  onExit(sessionId: string, info: ExitInfo, handle: SandboxHandle, requested: boolean): void;
  /** The sandbox could not even be built: the session's due work must be failed or retried. */
  onStartFailed(sessionId: string, err: unknown): void;
  /** Does this session have a turn in flight or due work? Busy sandboxes are not stopped. */
  isBusy(sessionId: string): boolean;
  /**
   * Must this session's sandbox wait for others to be gone first (given the sessions with a
   * sandbox, stopping ones included)? It waits in line like a session waiting for a slot.
   */
  mustWait?(sessionId: string, running: string[]): boolean;
}

interface Entry {
  handle: SandboxHandle;
  lastActive: number;
  idleTimer: NodeJS.Timeout | null;
  stopping: boolean;
  /** Its settings changed: stop it as soon as it is not busy. */
  retiring: boolean;
  startedAt: number;
}

export class SandboxPool {
  private running = new Map<string, Entry>();
  private waiting: string[] = [];
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly d: PoolDeps) {
    this.now = d.now ?? Date.now;
  }

  isRunning(sessionId: string): boolean {
    const e = this.running.get(sessionId);
    return !!e && !e.stopping;
  }

  handle(sessionId: string): SandboxHandle | null {
    return this.running.get(sessionId)?.handle ?? null;
  }

  list(): Array<{ sessionId: string; pid: number; startedAt: number; lastActive: number }> {
    return [...this.running].map(([sessionId, e]) => ({
      sessionId,
      pid: e.handle.pid,
      startedAt: e.startedAt,
      lastActive: e.lastActive,
    }));
  }

  waitingCount(): number {
    return this.waiting.length;
  }

  /** Make sure the session has a sandbox, now or when a slot frees up. */
  request(sessionId: string): void {
    if (this.closed) return;
    const e = this.running.get(sessionId);
    if (e && !e.stopping) return this.touch(sessionId);
    if (e?.stopping || this.running.size >= this.d.maxConcurrent || this.held(sessionId)) {
      if (!this.waiting.includes(sessionId)) this.waiting.push(sessionId);
      this.makeRoom();
      return;
    }
    this.launch(sessionId);
  }

  touch(sessionId: string): void {
    const e = this.running.get(sessionId);
    if (!e || e.stopping) return;
    e.lastActive = this.now();
    if (e.idleTimer) clearTimeout(e.idleTimer);
    const delay = e.retiring ? RETIRE_RECHECK_MS : this.d.idleTimeoutMs;
    e.idleTimer = setTimeout(() => this.idle(sessionId), delay);
    e.idleTimer.unref();
  }

  /** The sandbox's settings changed: stop it now if idle, else as soon as its turn is over. */
  retire(sessionId: string): void {
    const e = this.running.get(sessionId);
    if (!e || e.stopping) return;
    e.retiring = true;
    this.idle(sessionId);
  }

  async stop(sessionId: string, graceMs = 3000): Promise<void> {
    const e = this.running.get(sessionId);
    if (!e) return;
    e.stopping = true;
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.handle.stdin?.end();
    const timer = setTimeout(() => void e.handle.stop(1000), graceMs);
    await e.handle.exited;
    clearTimeout(timer);
  }

  /** The session is gone: it stops waiting, and a sandbox it has is killed. */
  drop(sessionId: string): void {
    this.waiting = this.waiting.filter((s) => s !== sessionId);
    const e = this.running.get(sessionId);
    if (!e) return;
    e.stopping = true;
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.handle.kill();
  }

  async stopAll(): Promise<void> {
    this.closed = true;
    this.waiting = [];
    await Promise.all([...this.running.keys()].map((s) => this.stop(s)));
  }

  private launch(sessionId: string): void {
    let handle: SandboxHandle;
    try {
      handle = this.d.start(sessionId);
    } catch (err) {
      this.d.log.error('sandbox start failed', { session: sessionId, err });
      this.d.onStartFailed(sessionId, err);
      return;
    }
    const entry: Entry = {
      handle,
      lastActive: this.now(),
      idleTimer: null,
      stopping: false,
      retiring: false,
      startedAt: this.now(),
    };
    this.running.set(sessionId, entry);
    this.touch(sessionId);
    void handle.exited.then((info) => {
      if (entry.idleTimer) clearTimeout(entry.idleTimer);
      if (this.running.get(sessionId) === entry) this.running.delete(sessionId);
      this.d.onExit(sessionId, info, handle, entry.stopping);
      this.next();
    });
  }

  /** Launch waiters in FIFO order; one whose old sandbox is still stopping keeps its place. */
  private next(): void {
    for (const s of [...this.waiting]) {
      if (this.closed || this.running.size >= this.d.maxConcurrent) return;
      if (this.running.has(s) || this.held(s)) continue;
      this.waiting = this.waiting.filter((w) => w !== s);
      this.launch(s);
    }
  }

  private held(sessionId: string): boolean {
    return this.d.mustWait?.(sessionId, [...this.running.keys()]) ?? false;
  }

  private idle(sessionId: string): void {
    const e = this.running.get(sessionId);
    if (!e || e.stopping) return;
    if (this.d.isBusy(sessionId)) return this.touch(sessionId);
    const why = e.retiring ? 'stopping sandbox: its group settings changed' : 'stopping idle sandbox';
    this.d.log.info(why, { session: sessionId });
    void this.stop(sessionId);
  }

  /**
   * Someone waits for a slot: stop the least recently active idle sandbox, unless sandboxes
   * already stopping will free enough. Called on each request and again whenever a session's
   * turn may have ended, so a waiter does not wait for an idle timeout that a busy session keeps
   * pushing back. Under the cap (a session waiting only for its own sandbox to stop) nothing is
   * stopped.
   */
  makeRoom(): void {
    if (this.closed || this.running.size < this.d.maxConcurrent) return;
    const freeing = [...this.running.values()].filter((e) => e.stopping).length;
    if (this.waiting.length > freeing) this.evictIdle();
  }

  private evictIdle(): void {
    const candidates = [...this.running]
      .filter(([s, e]) => !e.stopping && !this.d.isBusy(s))
      .sort((a, b) => a[1].lastActive - b[1].lastActive);
    const victim = candidates[0];
    if (victim) {
      this.d.log.info('stopping idle sandbox to make room', { session: victim[0] });
      void this.stop(victim[0]);
    }
  }
}

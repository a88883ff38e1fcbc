/**
 * Event-driven wakeups. A Doorbell watches a file or directory with fs.watch (inotify on
 * Linux; it sees writes made through any bind mount of the same inode) and resolves wait()
 * on the first change. SQLite stays the source of truth: a ring is only a hint to look, and
 * the caller's safety timeout covers a missed event.
 */
import fs from 'node:fs';
import type { Logger } from './log.js';

export class Doorbell {
  private watcher: fs.FSWatcher | null = null;
  private waiters: Array<() => void> = [];
  private rung = false;

  constructor(
    private readonly target: string,
    private readonly log: Logger,
    private readonly filter: (filename: string | null) => boolean = () => true,
  ) {}

  start(): void {
    try {
      this.watcher = fs.watch(this.target, { persistent: false }, (_event, filename) => {
        if (this.filter(filename ? String(filename) : null)) this.ring();
      });
    } catch (err) {
      // fs.watch throws when it cannot start (inotify limits used up: ENOSPC, EMFILE). A bell
      // is only a hint: the caller's safety poll still brings the work, more slowly.
      this.log.warn('doorbell watch could not start; relying on the safety poll', {
        target: this.target,
        err,
      });
      return;
    }
    this.watcher.on('error', (err) =>
      this.log.warn('doorbell watch failed; relying on the safety poll', { target: this.target, err }),
    );
  }

  ring(): void {
    this.rung = true;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves on the next ring (or at once if one came since the last wait), or after timeoutMs. */
  wait(timeoutMs: number): Promise<'rung' | 'timeout'> {
    if (this.rung) {
      this.rung = false;
      return Promise.resolve('rung');
    }
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.waiters = this.waiters.filter((w) => w !== done);
          resolve('timeout');
        },
        Math.max(0, timeoutMs),
      );
      const done = () => {
        clearTimeout(timer);
        this.rung = false;
        resolve('rung');
      };
      this.waiters.push(done);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    this.ring();
  }
}

/** A fake clock with timer functions for the scheduler: time moves only when a test advances it. */
import type { TimerFns } from '../../src/host/scheduler.js';

export class FakeClock {
  private timers: Array<{ id: number; at: number; fn: () => void }> = [];
  private seq = 0;
  /** Timers fire this many ms after their due time (a busy event loop). */
  lateness = 0;

  constructor(public now: number) {}

  readonly fns: TimerFns = {
    set: (fn, ms) => {
      const id = ++this.seq;
      this.timers.push({ id, at: this.now + Math.max(0, ms), fn });
      return id;
    },
    clear: (h) => {
      this.timers = this.timers.filter((t) => t.id !== h);
    },
  };

  get pending(): number {
    return this.timers.length;
  }

  /**
   * The machine sleeps for `ms` (a laptop's lid closed): the wall clock moves on, timers do not
   * run meanwhile and come due that much later, as Node's monotonic timers do.
   */
  suspend(ms: number): void {
    this.now += ms;
    for (const t of this.timers) t.at += ms;
  }

  /** Move time forward by `ms`, running every timer that comes due, in order. Bounded. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let i = 0; i < 100_000; i++) {
      const next = this.timers
        .filter((t) => t.at + this.lateness <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.now = Math.max(this.now, next.at + this.lateness);
      next.fn();
    }
    this.now = end;
  }
}

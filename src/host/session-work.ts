/**
 * The host's work per session, in order: one promise chain per session (nothing of a session
 * runs twice at once — delivery, settlement and recovery assume it), and the timers that come
 * back to it later (retries, delivery backoff), which a closing host clears.
 * Invariants:
 *  - a failure of one piece of work is logged and the chain goes on: it never stops the
 *    session's later work, nor takes the host down from a timer;
 *  - once a session is deleted its queued work does not run, and work under way that meets its
 *    closed queue is the delete, not a host error;
 *  - one delivery wake per session at the earliest time asked for (kickLater): a row in backoff
 *    asks again on every pass, and each ask must not add a timer.
 */
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { MAX_TIMER_MS } from './config.js';

export class SessionWork {
  private chains = new Map<string, Promise<void>>();
  private timers = new Set<NodeJS.Timeout>();
  /** When each session's delivery wake is due (kickLater). */
  private readonly kickAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly deleted: (sessionId: string) => boolean,
  ) {}

  /** Run `fn` after the session's earlier work; resolves when it has run (or failed, logged). */
  serial(sessionId: string, fn: () => Promise<void> | void): Promise<void> {
    const prev = this.chains.get(sessionId) ?? Promise.resolve();
    const next = prev
      .then(() => (this.deleted(sessionId) ? undefined : fn()))
      .catch((err) =>
        this.deleted(sessionId)
          ? this.log.debug('work of a deleted session ended', { session: sessionId, err })
          : this.log.error('session work failed', { session: sessionId, err }),
      );
    this.chains.set(sessionId, next);
    void next.then(() => {
      if (this.chains.get(sessionId) === next) this.chains.delete(sessionId);
    });
    return next;
  }

  /** Whether the session has work running or a delivery wake set. */
  busy(sessionId: string): boolean {
    return this.chains.has(sessionId) || this.kickAt.has(sessionId);
  }

  /** Wake the session's delivery (`kick`) in `ms`, unless an earlier wake is set already. */
  kickLater(sessionId: string, ms: number, kick: (sessionId: string) => void): void {
    const at = Date.now() + Math.max(0, ms);
    const due = this.kickAt.get(sessionId);
    if (due !== undefined && due <= at && due >= Date.now()) return;
    this.kickAt.set(sessionId, at);
    this.after(ms, () => {
      if (this.kickAt.get(sessionId) === at) this.kickAt.delete(sessionId);
      kick(sessionId);
    });
  }

  /** `fn` in `ms` (nothing once closed); a throw is logged, never thrown out of the timer. */
  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        try {
          fn();
        } catch (err) {
          this.log.error('timed session work failed', { err: errorMessage(err) });
        }
      },
      // A backoff of a large base can outgrow what a timer can wait (it would fire at once):
      // waking at the limit instead finds the row not due yet and asks again.
      Math.min(Math.max(0, ms), MAX_TIMER_MS),
    );
    this.timers.add(t);
  }

  forget(sessionId: string): void {
    this.kickAt.delete(sessionId);
  }

  /** No timer fires, nor is set, after this (the host is stopping). */
  stopTimers(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** No timer fires after this; resolves when the work under way has run. */
  async close(): Promise<void> {
    this.stopTimers();
    await Promise.all([...this.chains.values()]);
  }
}

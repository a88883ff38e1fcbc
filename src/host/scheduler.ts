/**
 * The scheduler: event-driven, ONE timer armed on the earliest next_run_at of any active task
 * series and re-armed after every change; a timer is never longer than MAX_TIMER_MS, a safety
 * net for wall-clock jumps, the machine's sleep and setTimeout's 24.8-day limit.
 *
 * Invariants:
 * - Recurrence comes from the scheduled instant, never the fire time: the next occurrence is
 *   the first cron slot after the one that fired, in the task's timezone (no drift). When the
 *   host was down (or the timer ran late) past several slots, the series fires ONCE and then
 *   continues with the first slot after now — missed slots are not replayed one by one.
 * - Firing is idempotent: the inbound row carries the series id and its scheduled instant, and
 *   is enqueued only if no row for that (series, instant) exists; then next_run_at advances.
 *   A crash between the two re-fires nothing on restart.
 * - The sandbox sees its group's tasks through a mirror in each session's inbound.db, refreshed
 *   on every change (and written by the session manager when a queue is first opened).
 */
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Db } from './db/open.js';
import type { OutboundRow, SessionQueue } from './session-queue.js';
import { getGroup } from './store/groups.js';
import { getSession, listSessions, type Session } from './store/sessions.js';
import {
  dueTasks,
  earliestRun,
  listGroupTasks,
  pruneFinishedTasks,
  toMirror,
  updateTask,
  type Task,
} from './store/tasks.js';
import { applyTaskAction, TaskRefused } from './task-actions.js';
import { taskAnswer } from './task-routing.js';
import { nextCronRun } from '../shared/schedule.js';

/**
 * The longest the one timer sleeps. Node's timers run on a clock that stops while the machine
 * sleeps, so after a suspend a run falls due on the wall clock while the timer still waits for
 * its remainder: a minute bounds how late that makes it.
 */
export const MAX_TIMER_MS = 60_000;

/** What the scheduler needs from the session manager. */
export interface SchedulerSessions {
  queueFor(session: Session): SessionQueue;
  /** The session's queue if it is open (closed queues get the mirror when they open). */
  openQueue(sessionId: string): SessionQueue | undefined;
  wake(sessionId: string): void;
}

export interface TimerFns {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: TimerFns = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface SchedulerDeps {
  db: Db;
  log: Logger;
  sessions: SchedulerSessions;
  /** Timezone of groups that set none. */
  defaultTimezone: string;
  now?: () => number;
  timers?: TimerFns;
  maxTimerMs?: number;
}

/** A task that can never fire as it stands: paused, and the agent told why. */
class CannotFire extends Error {}

/** A task that failed to fire for another reason is tried again this much later. */
export const FIRE_RETRY_MS = 60_000;
export class Scheduler {
  private readonly now: () => number;
  private readonly timers: TimerFns;
  private readonly log: Logger;
  private timer: unknown = null;
  private stopped = true;

  constructor(private readonly d: SchedulerDeps) {
    this.now = d.now ?? Date.now;
    this.timers = d.timers ?? realTimers;
    this.log = d.log;
  }

  /** Fire what came due while the host was down (once per series), then arm the timer. */
  start(): void {
    this.stopped = false;
    this.safeTick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  /**
   * A 'system' outbound row carrying a task action, from `session`'s sandbox. Refusals are told
   * to the agent as a system message in its session; the caller records the row as handled.
   */
  handleAction(session: Session, queue: SessionQueue, row: OutboundRow): void {
    const action = row.content.action;
    if (!action) return;
    const group = getGroup(this.d.db, session.agentGroupId);
    try {
      const task = applyTaskAction(
        {
          db: this.d.db,
          now: this.now(),
          agentGroupId: group.id,
          sessionId: session.id,
          timezone: group.timezone ?? this.d.defaultTimezone,
          approval: group.approval,
          routing: row.routing,
        },
        action,
      );
      this.log.info('task action applied', { session: session.id, action: action.type, task: task.id });
    } catch (caught) {
      // Anything else that goes wrong is refused too: thrown, the row would stop the session's
      // delivery on every pass, and nothing of it would be delivered or settled again.
      const err =
        caught instanceof TaskRefused
          ? caught
          : new TaskRefused(`the host could not apply it: ${errorMessage(caught)}`);
      if (err !== caught) this.log.error('task action failed', { session: session.id, err: caught });
      this.log.warn('task action refused', { session: session.id, action: action.type, reason: err.message });
      queue.enqueue({
        kind: 'system',
        trigger: false,
        routing: row.routing,
        content: {
          text: `Your ${action.type} request (seq ${row.seq}) was refused: ${err.message}`,
          attachments: [],
          refused: { seq: row.seq },
        },
      });
      queue.markActionsHandled(row.seq);
      return;
    }
    this.changed(group.id);
    queue.markActionsHandled(row.seq); // after the mirror: never neither mirrored nor requested
  }

  /** Tasks of a group changed: drop old finished ones, refresh the mirror in its open sessions, re-arm. */
  changed(agentGroupId: string): void {
    this.prune(agentGroupId);
    this.mirror(agentGroupId);
    this.arm();
  }

  private prune(agentGroupId: string): void {
    const n = pruneFinishedTasks(this.d.db, agentGroupId, this.now());
    if (n > 0) this.log.info('old finished tasks deleted', { group: agentGroupId, count: n });
  }

  /** Write the group's tasks into every open session queue of the group. */
  mirror(agentGroupId: string): void {
    const tasks = listGroupTasks(this.d.db, agentGroupId).map(toMirror);
    for (const s of listSessions(this.d.db, agentGroupId)) this.d.sessions.openQueue(s.id)?.setTasks(tasks);
  }

  private arm(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const next = earliestRun(this.d.db);
    if (next === null) return;
    const delay = Math.min(Math.max(0, next - this.now()), this.d.maxTimerMs ?? MAX_TIMER_MS);
    this.timer = this.timers.set(() => {
      this.timer = null;
      this.safeTick();
    }, delay);
  }

  /** A tick that cannot throw out of a timer callback: on failure it logs and tries again later. */
  private safeTick(): void {
    try {
      this.tick();
    } catch (err) {
      this.log.error('scheduler tick failed; trying again in a minute', { err: errorMessage(err) });
      if (this.stopped) return;
      if (this.timer !== null) this.timers.clear(this.timer);
      this.timer = this.timers.set(() => {
        this.timer = null;
        this.safeTick();
      }, 60_000);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    const groups = new Set<string>();
    for (const t of dueTasks(this.d.db, this.now())) {
      try {
        this.fire(t);
      } catch (err) {
        // One broken task must not stop the others, nor spin the timer. One that can never
        // fire as it is (no chat to answer in) is paused and the agent told; anything else
        // (a full disk, a locked file) is tried again a minute later.
        if (err instanceof CannotFire) {
          this.log.error('task cannot fire; pausing it', { task: t.id, err: err.message });
          updateTask(this.d.db, t.agentGroupId, t.id, { status: 'paused' }, this.now());
          this.tellPaused(t, err.message);
        } else {
          this.log.error('task could not fire; trying again in a minute', {
            task: t.id,
            err: errorMessage(err),
          });
          this.retryLater(t);
        }
      }
      groups.add(t.agentGroupId);
    }
    for (const g of groups) {
      this.prune(g);
      this.mirror(g);
    }
    this.arm();
  }

  /** The agent hears that its task was paused, and why, as a note in the task's session. */
  private tellPaused(t: Task, reason: string): void {
    try {
      const q = this.d.sessions.queueFor(getSession(this.d.db, t.sessionId));
      q.enqueue({
        kind: 'system',
        trigger: false,
        routing: t.routing ?? { channelType: 'internal', platformId: 'scheduler', threadId: null },
        content: {
          text: `Your task "${t.id}" was paused: it could not fire (${reason}). Resume it with resume_task once that is fixed, or cancel it.`,
          attachments: [],
        },
      });
    } catch (err) {
      this.log.error('could not tell the agent its task was paused', { task: t.id, err: errorMessage(err) });
    }
  }

  private fire(t: Task): void {
    const now = this.now();
    const runAt = t.nextRunAt!;
    const session = getSession(this.d.db, t.sessionId);
    const q = this.d.sessions.queueFor(session);
    const { routing, allowed } = taskAnswer(this.d.db, t);
    if (!routing) throw new CannotFire(`session ${session.id} has no chat to answer in`);
    if (!allowed)
      throw new CannotFire(`its group may no longer post to ${routing.channelType}:${routing.platformId}`);
    // Worked out before the run is queued: a series that cannot go on queues nothing.
    const next = this.nextAfter(t, runAt, now);
    if (!q.hasTaskRun(t.id, runAt)) {
      q.enqueue({
        kind: 'task',
        trigger: true,
        routing,
        seriesId: t.id,
        content: { text: t.prompt, attachments: [], task: { id: t.id, runAt, script: t.script } },
      });
    }
    this.advance(t, next, now);
    this.log.info('task fired', {
      task: t.id,
      session: session.id,
      scheduledFor: runAt,
      lateMs: now - runAt,
    });
    this.d.sessions.wake(session.id);
  }

  /** The series' next run after the one at `runAt` (null: none); a stored cron that no longer reads cannot fire. */
  private nextAfter(t: Task, runAt: number, now: number): number | null {
    if (!t.cron) return null;
    try {
      const next = nextCronRun(t.cron, t.timezone, runAt);
      return next !== null && next <= now ? nextCronRun(t.cron, t.timezone, now) : next;
    } catch (err) {
      throw new CannotFire(errorMessage(err));
    }
  }

  private advance(t: Task, next: number | null, now: number): void {
    updateTask(
      this.d.db,
      t.agentGroupId,
      t.id,
      { lastRunAt: now, nextRunAt: next, status: next === null ? 'done' : 'active' },
      now,
    );
  }

  /**
   * After a passing failure (a full disk, a locked file): a run that was queued before it is not
   * queued again, so the series moves on as fire would have; one that was not is tried again a
   * minute later, also when its queue cannot be read now (firing the same run again queues it
   * at most once).
   */
  private retryLater(t: Task): void {
    const now = this.now();
    try {
      const q = this.d.sessions.queueFor(getSession(this.d.db, t.sessionId));
      if (q.hasTaskRun(t.id, t.nextRunAt!)) return this.advance(t, this.nextAfter(t, t.nextRunAt!, now), now);
    } catch (err) {
      // Left as it is, it would stay the earliest due task and every tick would stop at it.
      this.log.error('task queue unreadable; trying the task again in a minute', {
        task: t.id,
        err: errorMessage(err),
      });
    }
    updateTask(this.d.db, t.agentGroupId, t.id, { nextRunAt: now + FIRE_RETRY_MS }, now);
  }
}

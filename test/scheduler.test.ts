/**
 * The scheduler with a fake clock, a real central DB, real session queues and the real
 * Delivery hook: actions are written as 'system' outbound rows exactly as a tool writes them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCentralDb, type Db } from '../src/host/db/open.js';
import { Delivery } from '../src/host/delivery.js';
import { FIRE_RETRY_MS, Scheduler, type SchedulerSessions } from '../src/host/scheduler.js';
import { SessionQueue, type InboundRow } from '../src/host/session-queue.js';
import { getDelivery } from '../src/host/store/deliveries.js';
import { createGroup, getGroupByName } from '../src/host/store/groups.js';
import {
  createWiring,
  deleteWiring,
  ensureMessagingGroup,
  wiringsForMessagingGroup,
} from '../src/host/store/messaging.js';
import { resolveSession, type Session } from '../src/host/store/sessions.js';
import {
  FINISHED_TASK_GRACE_MS,
  getTask,
  insertTask,
  KEEP_FINISHED_TASKS,
  listGroupTasks,
  updateTask,
} from '../src/host/store/tasks.js';
import { MAX_LIVE_TASKS } from '../src/shared/task-rules.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { createLogger } from '../src/shared/log.js';
import type { Routing, SystemAction } from '../src/shared/messages.js';
import { localWallTime } from '../src/shared/wall-time.js';
import { FakeClock } from './support/fake-clock.js';
import { tempHome, waitFor } from './support/cli.js';

const log = createLogger({ level: 'error' });
const T0 = Date.parse('2026-03-27T12:00:00Z');
const HOUR = 3_600_000;
const routing = { channelType: 'fake', platformId: 'room', threadId: null };
const elsewhere = { channelType: 'fake', platformId: 'elsewhere', threadId: null };

let dir: string;
let db: Db;
let clock: FakeClock;
let mine: Session;
let theirs: Session;
let queues: Map<string, SessionQueue>;
let runners: RunnerQueue[];
let woken: string[];
let sessions: SchedulerSessions;
let scheduler: Scheduler;
let delivery: Delivery;

function newScheduler(opts: { real?: boolean } = {}): Scheduler {
  scheduler?.stop();
  scheduler = new Scheduler({
    db,
    log,
    sessions,
    defaultTimezone: 'UTC',
    ...(opts.real ? {} : { now: () => clock.now, timers: clock.fns }),
  });
  return scheduler;
}

beforeEach(() => {
  dir = tempHome('polyclaw-sched-');
  db = openCentralDb(':memory:');
  clock = new FakeClock(T0);
  const g = createGroup(db, 'g', { provider: 'mock', timezone: 'Europe/Paris' });
  const other = createGroup(db, 'other', { provider: 'mock' });
  const mg = ensureMessagingGroup(db, 'fake', 'room');
  const mg2 = ensureMessagingGroup(db, 'fake', 'elsewhere');
  createWiring(db, mg.id, g.id, { engageMode: 'mention' });
  createWiring(db, mg2.id, other.id, { engageMode: 'mention' });
  mine = resolveSession(db, g.id, 'shared', mg.id, null).session;
  theirs = resolveSession(db, other.id, 'shared', mg2.id, null).session;
  queues = new Map();
  runners = [];
  woken = [];
  sessions = {
    queueFor: (s) => {
      let q = queues.get(s.id);
      if (!q) {
        q = new SessionQueue(path.join(dir, s.id), () => clock.now);
        queues.set(s.id, q);
      }
      return q;
    },
    openQueue: (id) => queues.get(id),
    wake: (id) => woken.push(id),
  };
  newScheduler();
  delivery = new Delivery({
    db,
    log,
    channels: new Map(),
    maxAttempts: 3,
    baseDelayMs: 100,
    now: () => clock.now,
    later: () => {},
    onAction: (s, q, row) => scheduler.handleAction(s, q, row),
  });
  scheduler.start();
});
afterEach(() => {
  scheduler.stop();
  for (const r of runners) r.close();
  for (const q of queues.values()) q.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Write the action as a tool does (a 'system' outbound row, from the session's chat unless
 * `from` says otherwise) and let the host process it.
 */
async function act(action: SystemAction, s: Session = mine, from?: Routing): Promise<void> {
  const q = sessions.queueFor(s);
  let r = runners.find((x) => x.sessionDir === q.dir);
  if (!r) {
    r = new RunnerQueue(q.dir, () => clock.now);
    runners.push(r);
  }
  const chat = from ?? (s === theirs ? elsewhere : routing);
  r.commit([{ kind: 'system', inReplyTo: null, routing: chat, content: { text: '', action } }], []);
  expect(await delivery.process(s, q)).toBe(true);
}

const schedule = (id: string, spec: { at?: string; cron?: string; script?: string; prompt?: string }) =>
  act({
    type: 'schedule_task',
    task: {
      id,
      prompt: spec.prompt ?? `do ${id}`,
      at: spec.at ?? null,
      cron: spec.cron ?? null,
      script: spec.script ?? null,
    },
  });
const inbound = (s: Session = mine): InboundRow[] => sessions.queueFor(s).pending();
const taskRuns = (s: Session = mine) => inbound(s).filter((m) => m.kind === 'task');
const notices = (s: Session = mine) =>
  inbound(s)
    .filter((m) => m.kind === 'system')
    .map((m) => m.content.text);
const isoAt = (ms: number) => new Date(ms).toISOString();

describe('scheduler timing', () => {
  it('fires a one-shot within 50 ms of its due time, once, then marks it done', async () => {
    const due = T0 + 10_000;
    await schedule('once', { at: isoAt(due) });
    expect(clock.pending).toBe(1); // one timer, armed on the due time
    clock.advance(9_999);
    expect(taskRuns()).toHaveLength(0);
    clock.advance(1);
    const runs = taskRuns();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.timestamp - due).toBeLessThan(50);
    expect(runs[0]).toMatchObject({
      trigger: true,
      routing,
      content: { text: 'do once', task: { id: 'once', runAt: due } },
    });
    expect(woken).toContain(mine.id);
    expect(getTask(db, mine.agentGroupId, 'once')).toMatchObject({
      status: 'done',
      nextRunAt: null,
      lastRunAt: due,
    });
    clock.advance(10 * HOUR);
    expect(taskRuns()).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('fires a one-shot on time with real timers too', async () => {
    newScheduler({ real: true }).start();
    clock.now = Date.now(); // the action's "now" for the delivery path
    const due = Date.now() + 300;
    await schedule('real', { at: isoAt(due) });
    await waitFor(() => taskRuns().length === 1, 3000, 'the task to fire');
    const fired = taskRuns()[0]!;
    // The queue stamps rows with the (frozen) fake clock, so measure with the task row instead.
    expect(getTask(db, mine.agentGroupId, 'real')!.lastRunAt! - due).toBeGreaterThanOrEqual(0);
    // 50 ms is the goal (met by the fake-clock test); real timers get slack for a loaded CI machine.
    expect(getTask(db, mine.agentGroupId, 'real')!.lastRunAt! - due).toBeLessThan(250);
    expect(fired.content.task?.runAt).toBe(due);
  });

  it('keeps a 02:30 daily job and a 09:00 daily job right across the March DST change in Paris', async () => {
    await schedule('night', { cron: '30 2 * * *' });
    await schedule('morning', { cron: '0 9 * * *' });
    clock.advance(4 * 24 * HOUR);
    const at = (id: string) =>
      taskRuns()
        .filter((m) => m.content.task?.id === id)
        .map((m) => isoAt(m.content.task!.runAt!));
    expect(at('night')).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 02:30 does not exist: first valid time after the gap (03:00 CEST)
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
    expect(at('morning').map((x) => localWallTime(Date.parse(x), 'Europe/Paris'))).toEqual([
      '2026-03-28 09:00',
      '2026-03-29 09:00',
      '2026-03-30 09:00',
      '2026-03-31 09:00',
    ]);
  });

  it('keeps a 02:30 daily job to one run on the October fall-back day', async () => {
    clock.now = Date.parse('2026-10-23T12:00:00Z');
    newScheduler().start();
    await schedule('night', { cron: '30 2 * * *' });
    clock.advance(3 * 24 * HOUR);
    expect(taskRuns().map((m) => isoAt(m.content.task!.runAt!))).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // the first of the two 02:30s
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('computes recurrence from the scheduled time, not the fire time (no drift)', async () => {
    clock.lateness = 700; // every timer fires 0.7 s late
    await schedule('hourly', { cron: '0 * * * *' });
    clock.advance(5 * HOUR + 1000);
    const runs = taskRuns();
    expect(runs).toHaveLength(5);
    for (const r of runs) {
      expect(new Date(r.content.task!.runAt!).getUTCMinutes()).toBe(0);
      expect(r.content.task!.runAt! % HOUR).toBe(0);
      expect(r.timestamp - r.content.task!.runAt!).toBe(700); // late by the same amount, never more
    }
    expect(getTask(db, mine.agentGroupId, 'hourly')!.nextRunAt! % HOUR).toBe(0);
  });

  it('fires runs missed while the host was down once at start-up, then continues on schedule', async () => {
    await schedule('hourly', { cron: '0 * * * *' });
    await schedule('oneshot', { at: isoAt(T0 + 2 * HOUR) });
    scheduler.stop(); // the host goes down for 5.5 hours
    clock.now += 5.5 * HOUR;
    newScheduler().start();
    const runs = taskRuns();
    expect(runs.map((r) => r.content.task!.id).sort()).toEqual(['hourly', 'oneshot']);
    expect(getTask(db, mine.agentGroupId, 'oneshot')!.status).toBe('done');
    expect(getTask(db, mine.agentGroupId, 'hourly')!.nextRunAt).toBe(T0 + 6 * HOUR); // first slot after now: 18:00Z
    clock.advance(0.5 * HOUR);
    expect(taskRuns().filter((r) => r.content.task!.id === 'hourly')).toHaveLength(2);
  });

  it('fires on time after the machine wakes from sleep: timers run on a clock that stops while it sleeps', async () => {
    await schedule('wake', { at: isoAt(T0 + 10 * HOUR) });
    clock.advance(30 * 60_000);
    clock.suspend(9 * HOUR + 40 * 60_000); // wakes 10 min after the run was due
    clock.advance(60_000);
    expect(taskRuns()).toHaveLength(1);
  });

  it('does not enqueue the same run twice when a crash left next_run_at behind', async () => {
    await schedule('hourly', { cron: '0 * * * *' });
    clock.advance(HOUR);
    const run = taskRuns()[0]!;
    updateTask(db, mine.agentGroupId, 'hourly', { nextRunAt: run.content.task!.runAt! }, clock.now); // as if the update was lost
    newScheduler().start();
    expect(taskRuns()).toHaveLength(1);
    expect(getTask(db, mine.agentGroupId, 'hourly')!.nextRunAt).toBe(run.content.task!.runAt! + HOUR);
  });
});

describe('task actions on the live series', () => {
  it('pause, resume, update and cancel act on the live occurrence', async () => {
    await schedule('hourly', { cron: '0 * * * *' });
    await act({ type: 'pause_task', taskId: 'hourly' });
    clock.advance(3 * HOUR);
    expect(taskRuns()).toHaveLength(0);
    expect(clock.pending).toBe(0);
    await act({ type: 'resume_task', taskId: 'hourly' });
    expect(getTask(db, mine.agentGroupId, 'hourly')).toMatchObject({
      status: 'active',
      nextRunAt: T0 + 4 * HOUR,
    });
    clock.advance(HOUR);
    expect(taskRuns()).toHaveLength(1); // slots missed while paused are not replayed
    await act({ type: 'update_task', taskId: 'hourly', patch: { cron: '30 * * * *', prompt: 'new words' } });
    expect(getTask(db, mine.agentGroupId, 'hourly')).toMatchObject({
      cron: '30 * * * *',
      at: null,
      nextRunAt: T0 + 4.5 * HOUR,
    });
    clock.advance(0.5 * HOUR);
    expect(taskRuns().map((r) => r.content.text)).toEqual(['do hourly', 'new words']);
    await act({ type: 'update_task', taskId: 'hourly', patch: { script: 'echo hi' } });
    expect(getTask(db, mine.agentGroupId, 'hourly')).toMatchObject({
      script: 'echo hi',
      cron: '30 * * * *',
      prompt: 'new words',
    });
    await act({ type: 'cancel_task', taskId: 'hourly' });
    expect(getTask(db, mine.agentGroupId, 'hourly')).toMatchObject({ status: 'cancelled', nextRunAt: null });
    expect(clock.pending).toBe(0);
    clock.advance(5 * HOUR);
    expect(taskRuns()).toHaveLength(2);
    expect(notices()).toEqual([]);
  });

  it('mirrors the group tasks into the session inbound.db for the sandbox', async () => {
    await schedule('a', { cron: '0 9 * * *', script: 'true' });
    await schedule('b', { at: '2026-12-01 09:30' });
    await act({ type: 'pause_task', taskId: 'a' });
    const r = runners[0]!;
    const rows = r.inbound.prepare('SELECT * FROM tasks ORDER BY id').all();
    expect(rows).toEqual([
      {
        id: 'a',
        prompt: 'do a',
        cron: '0 9 * * *',
        at: null,
        script: 'true',
        status: 'paused',
        next_run_at: Date.parse('2026-03-28T08:00:00Z'),
        timezone: 'Europe/Paris',
      },
      {
        id: 'b',
        prompt: 'do b',
        cron: null,
        at: '2026-12-01 09:30',
        script: null,
        status: 'active',
        next_run_at: Date.parse('2026-12-01T08:30:00Z'),
        timezone: 'Europe/Paris',
      },
    ]);
    // The other group's session never sees them.
    sessions.queueFor(theirs);
    await schedule('c', { cron: '0 8 * * *' });
    const theirRows = new RunnerQueue(sessions.queueFor(theirs).dir);
    runners.push(theirRows);
    expect(theirRows.inbound.prepare('SELECT COUNT(*) AS n FROM tasks').get()).toEqual({ n: 0 });
  });

  it('refuses bad actions with a clear message into the session, storing nothing', async () => {
    await act(
      {
        type: 'schedule_task',
        task: { id: 'theirs', prompt: 'x', at: null, cron: '0 8 * * *', script: null },
      },
      theirs,
    );
    const before = JSON.stringify(listGroupTasks(db, theirs.agentGroupId));
    const cases: Array<[SystemAction, RegExp]> = [
      [
        {
          type: 'schedule_task',
          task: { id: 'c1', prompt: 'x', at: null, cron: '61 * * * *', script: null },
        },
        /invalid cron "61 \* \* \* \*"/,
      ],
      [
        {
          type: 'schedule_task',
          task: { id: 'c2', prompt: 'x', at: '2026-03-01T09:00:00Z', cron: null, script: null },
        },
        /is in the past/,
      ],
      [
        { type: 'schedule_task', task: { id: 'c3', prompt: 'x', at: null, cron: null, script: null } },
        /give at .* or cron/,
      ],
      [
        {
          type: 'schedule_task',
          task: { id: 'c4', prompt: 'x', at: '2026-12-01 09:00', cron: '0 9 * * *', script: null },
        },
        /not both/,
      ],
      [
        {
          type: 'schedule_task',
          task: { id: 'c5', prompt: ' ', at: null, cron: '0 8 * * *', script: null },
        },
        /prompt is empty/,
      ],
      [{ type: 'cancel_task', taskId: 'nope' }, /no task "nope" in this agent group/],
      [{ type: 'cancel_task', taskId: 'theirs' }, /no task "theirs" in this agent group/],
      [{ type: 'pause_task', taskId: 'theirs' }, /no task "theirs" in this agent group/],
      [
        { type: 'update_task', taskId: 'theirs', patch: { prompt: 'hijack' } },
        /no task "theirs" in this agent group/,
      ],
    ];
    for (const [action] of cases) await act(action);
    const said = notices();
    expect(said).toHaveLength(cases.length);
    cases.forEach(([action, why], i) => {
      expect(said[i]).toMatch(new RegExp(`^Your ${action.type} request \\(seq \\d+\\) was refused: `));
      expect(said[i]).toMatch(why);
    });
    expect(
      inbound()
        .filter((m) => m.kind === 'system')
        .every((m) => !m.trigger),
    ).toBe(true);
    expect(listGroupTasks(db, mine.agentGroupId)).toEqual([]);
    expect(JSON.stringify(listGroupTasks(db, theirs.agentGroupId))).toBe(before);
  });

  it("refuses a schedule whose chat the group may not post to: a task cannot open a way into another group's chat", async () => {
    const spec = { id: 'sneak', prompt: 'x', at: null, cron: '0 8 * * *', script: null };
    await act({ type: 'schedule_task', task: spec }, mine, elsewhere);
    expect(notices()).toEqual([
      expect.stringMatching(
        /refused: this agent group may not post to fake:elsewhere; schedule the task from a chat/,
      ),
    ]);
    expect(listGroupTasks(db, mine.agentGroupId)).toEqual([]);
  });

  it('pauses a task whose stored chat its group may no longer post to, instead of running it there', async () => {
    // A session with no chat of its own answers in the chat the task was scheduled from.
    const g = getGroupByName(db, 'g')!;
    const mg = ensureMessagingGroup(db, 'fake', 'room');
    const loose = resolveSession(db, g.id, 'agent-shared', mg.id, null).session;
    await act(
      {
        type: 'schedule_task',
        task: { id: 'later', prompt: 'x', at: isoAt(T0 + 60_000), cron: null, script: null },
      },
      loose,
    );
    expect(getTask(db, mine.agentGroupId, 'later')).toMatchObject({ status: 'active', routing });
    for (const w of wiringsForMessagingGroup(db, mg.id)) deleteWiring(db, w.id);
    clock.advance(60_000);
    expect(taskRuns(loose)).toEqual([]);
    expect(getTask(db, mine.agentGroupId, 'later')).toMatchObject({ status: 'paused' });
    expect(notices(loose)).toEqual([
      expect.stringMatching(
        /^Your task "later" was paused: it could not fire \(its group may no longer post to fake:room\)/,
      ),
    ]);
    // Resuming it there is refused, so it cannot fire and pause again and again.
    await act({ type: 'resume_task', taskId: 'later' }, loose);
    expect(notices(loose).at(-1)).toMatch(
      /refused: task "later" answers in fake:room, where this agent group may no longer post/,
    );
    expect(getTask(db, mine.agentGroupId, 'later')).toMatchObject({ status: 'paused' });
  });

  it('a task that fails to fire for a passing reason (a full disk) is tried again a minute later, not paused', async () => {
    await schedule('soon', { at: isoAt(T0 + 60_000) });
    const queueFor = sessions.queueFor;
    let failures = 1;
    sessions.queueFor = (s) => {
      if (failures-- > 0) throw new Error('SQLITE_FULL: database or disk is full');
      return queueFor(s);
    };
    clock.advance(60_000);
    expect(taskRuns()).toEqual([]);
    expect(getTask(db, mine.agentGroupId, 'soon')).toMatchObject({
      status: 'active',
      nextRunAt: T0 + 120_000,
    });
    expect(notices()).toEqual([]);
    clock.advance(FIRE_RETRY_MS);
    expect(taskRuns().map((m) => m.content.task?.id)).toEqual(['soon']);
    expect(getTask(db, mine.agentGroupId, 'soon')).toMatchObject({ status: 'done' });
  });

  it("a task whose session queue stays broken does not stop other groups' tasks", async () => {
    await schedule('stuck', { at: isoAt(T0 + 60_000) });
    await act(
      {
        type: 'schedule_task',
        task: { id: 'fine', prompt: 'x', at: isoAt(T0 + 120_000), cron: null, script: null },
      },
      theirs,
    );
    const queueFor = sessions.queueFor;
    sessions.queueFor = (s) => {
      if (s.id === mine.id) throw new Error('EACCES: permission denied');
      return queueFor(s);
    };
    clock.advance(60_000);
    clock.advance(60_000);
    clock.advance(60_000);
    expect(getTask(db, theirs.agentGroupId, 'fine')).toMatchObject({ status: 'done' });
    expect(taskRuns(theirs).map((m) => m.content.task?.id)).toEqual(['fine']);
    expect(getTask(db, mine.agentGroupId, 'stuck')).toMatchObject({ status: 'active' });
    expect(getTask(db, mine.agentGroupId, 'stuck')!.nextRunAt).toBeGreaterThan(T0 + 180_000);
  });

  it('a task whose run was queued before a passing failure is not queued again', async () => {
    await schedule('once', { at: isoAt(T0 + 60_000) });
    const wake = sessions.wake;
    let failures = 1;
    sessions.wake = (id) => {
      if (failures-- > 0) throw new Error('wake failed'); // after the run was queued
      wake(id);
    };
    clock.advance(60_000);
    clock.advance(FIRE_RETRY_MS);
    clock.advance(FIRE_RETRY_MS);
    expect(taskRuns().map((m) => m.content.task?.id)).toEqual(['once']);
    expect(getTask(db, mine.agentGroupId, 'once')).toMatchObject({ status: 'done', nextRunAt: null });
  });

  it('refuses a schedule past MAX_LIVE_TASKS live tasks of the group; a cancel makes room', async () => {
    for (let i = 0; i < MAX_LIVE_TASKS; i++) {
      insertTask(
        db,
        {
          id: `t${i}`,
          agentGroupId: mine.agentGroupId,
          sessionId: mine.id,
          prompt: 'x',
          cron: '0 8 * * *',
          at: null,
          script: null,
          timezone: 'UTC',
          routing,
          status: i % 2 ? 'paused' : 'active',
          nextRunAt: T0 + HOUR,
        },
        T0,
      );
    }
    await schedule('one-more', { cron: '0 9 * * *' });
    expect(notices()).toEqual([expect.stringMatching(/already has 500 live tasks; cancel some first/)]);
    expect(getTask(db, mine.agentGroupId, 'one-more')).toBeNull();
    await act({ type: 'cancel_task', taskId: 't0' });
    await schedule('one-more', { cron: '0 9 * * *' });
    expect(getTask(db, mine.agentGroupId, 'one-more')).toMatchObject({ status: 'active' });
    expect(notices()).toHaveLength(1);
  });

  it('keeps the newest finished tasks and any finished within a day; older history goes, live ones stay', async () => {
    const add = (id: string, status: 'done' | 'cancelled' | 'paused', at: number, s: Session = mine) =>
      insertTask(
        db,
        {
          id,
          agentGroupId: s.agentGroupId,
          sessionId: s.id,
          prompt: 'x',
          cron: null,
          at: isoAt(at),
          script: null,
          timezone: 'UTC',
          routing,
          status,
          nextRunAt: null,
        },
        at,
      );
    const old = T0 - 2 * FINISHED_TASK_GRACE_MS;
    for (let i = 0; i < 150; i++) add(`old-${String(i).padStart(3, '0')}`, 'done', old + i);
    add('old-paused', 'paused', old - 1);
    for (let i = 0; i < 5; i++) add(`recent-${i}`, 'cancelled', T0 - HOUR + i);
    for (let i = 0; i < 150; i++) add(`theirs-${i}`, 'done', old + i, theirs);
    await schedule('fresh', { at: isoAt(T0 + HOUR) });
    const ids = listGroupTasks(db, mine.agentGroupId).map((t) => t.id);
    // The 5 recent ones count among the newest 100: 95 old ones are kept, the 55 oldest go.
    expect(ids.filter((id) => id.startsWith('old-0') || id.startsWith('old-1'))).toEqual(
      Array.from({ length: KEEP_FINISHED_TASKS - 5 }, (_, i) => `old-${String(i + 55).padStart(3, '0')}`),
    );
    expect(ids).toEqual(expect.arrayContaining(['old-paused', 'recent-0', 'recent-4', 'fresh']));
    expect(ids).toHaveLength(KEEP_FINISHED_TASKS + 2);
    // Another group's history is its own business.
    expect(listGroupTasks(db, theirs.agentGroupId)).toHaveLength(150);
    // The mirror the sandbox sees is the pruned list.
    const r = new RunnerQueue(sessions.queueFor(mine).dir, () => clock.now);
    runners.push(r);
    expect(r.tasks().map((t) => t.id)).toHaveLength(KEEP_FINISHED_TASKS + 2);
  });

  it('task ids are per group: the same id in another group neither collides nor leaks', async () => {
    const spec = { id: 'digest', at: null, cron: '0 8 * * *', script: null };
    await act({ type: 'schedule_task', task: { ...spec, prompt: 'their digest' } }, theirs);
    await act({ type: 'schedule_task', task: { ...spec, prompt: 'my digest' } });
    expect(notices()).toEqual([]);
    await act({ type: 'cancel_task', taskId: 'digest' });
    expect(getTask(db, mine.agentGroupId, 'digest')).toMatchObject({
      prompt: 'my digest',
      status: 'cancelled',
    });
    expect(getTask(db, theirs.agentGroupId, 'digest')).toMatchObject({
      prompt: 'their digest',
      status: 'active',
    });
    await act({ type: 'schedule_task', task: { ...spec, prompt: 'a new one' } });
    expect(notices()).toEqual([expect.stringMatching(/task id "digest" is already in use/)]);
  });

  it('a blank schedule field counts as not given, and no action the host cannot apply stops the session: it is refused and the next rows go on', async () => {
    // A blank `at` beside a cron broke the table's one-schedule check: the row threw on every
    // pass and nothing of the session was delivered or settled again.
    await schedule('blank-at', { at: '', cron: '0 9 * * *' });
    await schedule('both-blank', { at: '', cron: '' });
    await schedule('once', { at: isoAt(T0 + 2 * HOUR) });
    await act({ type: 'update_task', taskId: 'once', patch: { cron: '' } });
    await act({ type: 'update_task', taskId: 'blank-at', patch: { at: '' } });
    expect(getTask(db, mine.agentGroupId, 'blank-at')).toMatchObject({ at: null, cron: '0 9 * * *' });
    expect(getTask(db, mine.agentGroupId, 'once')).toMatchObject({ at: isoAt(T0 + 2 * HOUR), cron: null });
    // A stored schedule that no longer parses (an older build's rules, a zone since removed).
    await act({ type: 'pause_task', taskId: 'blank-at' });
    db.prepare(`UPDATE tasks SET timezone = 'Mars/Olympus_Mons' WHERE id = 'blank-at'`).run();
    await act({ type: 'resume_task', taskId: 'blank-at' });
    // Whatever else goes wrong applying an action.
    db.exec(`CREATE TRIGGER no_tasks BEFORE INSERT ON tasks BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    await schedule('later', { cron: '0 10 * * *' });
    expect(notices()).toEqual([
      expect.stringMatching(/schedule_task request .* refused: give at .* or cron/),
      expect.stringMatching(/resume_task request .* refused: .*Mars\/Olympus_Mons/),
      expect.stringMatching(/schedule_task request .* refused: the host could not apply it: disk says no/),
    ]);
    expect(getTask(db, mine.agentGroupId, 'blank-at')?.status).toBe('paused');
    // Every row was handled: the next pass has nothing left to stop on.
    const q = sessions.queueFor(mine);
    expect(q.outboundSince(0).every((r) => getDelivery(db, mine.id, r.id)?.status === 'sent')).toBe(true);
  });

  it('handles each action row once (ledger), even when delivery runs again', async () => {
    await act({ type: 'cancel_task', taskId: 'nope' });
    const q = sessions.queueFor(mine);
    const row = q.outboundSince(0)[0]!;
    expect(getDelivery(db, mine.id, row.id)?.status).toBe('sent');
    db.prepare('UPDATE sessions SET out_cursor = 0 WHERE id = ?').run(mine.id); // replay from the start
    await delivery.process(mine, q);
    expect(notices()).toHaveLength(1);
  });

  it.each([
    ['a cron series', { cron: '0 9 * * *' }],
    ['a one-shot whose time has passed since', { at: new Date(T0 + 30_000).toISOString() }],
  ])('a replayed schedule of the same task is a no-op, not a refusal: %s', async (_, spec) => {
    await schedule('x', spec);
    clock.advance(5 * 60_000);
    const q = sessions.queueFor(mine);
    const row = q.outboundSince(0)[0]!;
    db.prepare('DELETE FROM deliveries WHERE out_id = ?').run(row.id); // as if the host died before recording it
    db.prepare('UPDATE sessions SET out_cursor = 0 WHERE id = ?').run(mine.id);
    await delivery.process(mine, q);
    expect(notices()).toEqual([]);
    expect(listGroupTasks(db, mine.agentGroupId)).toHaveLength(1);
  });
});

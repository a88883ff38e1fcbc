/**
 * Scheduled task series in the central DB. Rows are validated with zod on read (the routing
 * column is JSON). Only the scheduler writes here; it decides what is valid before calling in.
 */
import { prep } from '../../shared/sql.js';
import { z } from 'zod';
import { PolyclawError } from '../../shared/errors.js';
import { RoutingSchema, type MirroredTask, type Routing } from '../../shared/messages.js';
import type { Db } from '../db/open.js';

export const TaskStatus = z.enum(['active', 'paused', 'cancelled', 'done']);
export type TaskStatus = z.infer<typeof TaskStatus>;

const RowSchema = z.object({
  id: z.string(),
  agent_group_id: z.string(),
  session_id: z.string(),
  prompt: z.string(),
  cron: z.string().nullable(),
  at: z.string().nullable(),
  script: z.string().nullable(),
  timezone: z.string(),
  routing: z.string().nullable(),
  status: TaskStatus,
  next_run_at: z.number().int().nullable(),
  last_run_at: z.number().int().nullable(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
});

export interface Task {
  id: string;
  agentGroupId: string;
  sessionId: string;
  prompt: string;
  cron: string | null;
  at: string | null;
  script: string | null;
  timezone: string;
  routing: Routing | null;
  status: TaskStatus;
  nextRunAt: number | null;
  lastRunAt: number | null;
  createdAt: number;
  updatedAt: number;
}

function fromRow(raw: unknown): Task {
  const r = RowSchema.safeParse(raw);
  if (!r.success)
    throw new PolyclawError('internal', `tasks row holds invalid data: ${r.error.issues[0]?.message}`);
  const x = r.data;
  let routing: Routing | null = null;
  if (x.routing) {
    const parsed = RoutingSchema.safeParse(JSON.parse(x.routing));
    if (!parsed.success)
      throw new PolyclawError('internal', `task ${x.id}: column routing holds invalid data`);
    routing = parsed.data;
  }
  return {
    id: x.id,
    agentGroupId: x.agent_group_id,
    sessionId: x.session_id,
    prompt: x.prompt,
    cron: x.cron,
    at: x.at,
    script: x.script,
    timezone: x.timezone,
    routing,
    status: x.status,
    nextRunAt: x.next_run_at,
    lastRunAt: x.last_run_at,
    createdAt: x.created_at,
    updatedAt: x.updated_at,
  };
}

export type NewTask = Omit<Task, 'lastRunAt' | 'createdAt' | 'updatedAt'>;

export function insertTask(db: Db, t: NewTask, now: number): Task {
  prep(
    db,
    `INSERT INTO tasks (id, agent_group_id, session_id, prompt, cron, at, script, timezone, routing, status, next_run_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    t.id,
    t.agentGroupId,
    t.sessionId,
    t.prompt,
    t.cron,
    t.at,
    t.script,
    t.timezone,
    t.routing ? JSON.stringify(t.routing) : null,
    t.status,
    t.nextRunAt,
    now,
    now,
  );
  return getTask(db, t.agentGroupId, t.id)!;
}

/** Task ids are per agent group (migration 007). */
export function getTask(db: Db, agentGroupId: string, id: string): Task | null {
  const r = prep(db, 'SELECT * FROM tasks WHERE agent_group_id = ? AND id = ?').get(agentGroupId, id);
  return r ? fromRow(r) : null;
}

export type TaskChange = Partial<
  Pick<Task, 'prompt' | 'cron' | 'at' | 'script' | 'status' | 'nextRunAt' | 'lastRunAt'>
>;

const COLUMNS: Record<keyof TaskChange, string> = {
  prompt: 'prompt',
  cron: 'cron',
  at: 'at',
  script: 'script',
  status: 'status',
  nextRunAt: 'next_run_at',
  lastRunAt: 'last_run_at',
};

export function updateTask(db: Db, agentGroupId: string, id: string, change: TaskChange, now: number): Task {
  const keys = (Object.keys(change) as Array<keyof TaskChange>).filter((k) => change[k] !== undefined);
  const sets = keys.map((k) => `${COLUMNS[k]} = ?`);
  prep(
    db,
    `UPDATE tasks SET ${[...sets, 'updated_at = ?'].join(', ')} WHERE agent_group_id = ? AND id = ?`,
  ).run(...keys.map((k) => change[k] ?? null), now, agentGroupId, id);
  const t = getTask(db, agentGroupId, id);
  if (!t) throw new PolyclawError('not_found', `no task ${id}`);
  return t;
}

export function listGroupTasks(db: Db, agentGroupId: string): Task[] {
  return prep(db, 'SELECT * FROM tasks WHERE agent_group_id = ? ORDER BY created_at, id')
    .all(agentGroupId)
    .map(fromRow);
}

/** Finished (done or cancelled) series a group keeps: list_tasks shows the newest ten. */
export const KEEP_FINISHED_TASKS = 100;
/**
 * A series finished more recently than this is kept whatever the count: a run of it queued
 * before it was cancelled must still find it cancelled in the mirror (task-script.ts).
 */
export const FINISHED_TASK_GRACE_MS = 24 * 3_600_000;

/**
 * Delete a group's finished series beyond the newest KEEP_FINISHED_TASKS (by when they
 * finished) that finished over FINISHED_TASK_GRACE_MS ago. Without this every one-shot stays
 * for ever, and each session's mirror of the group's tasks grows with it. Returns how many.
 */
export function pruneFinishedTasks(
  db: Db,
  agentGroupId: string,
  now: number,
  keep = KEEP_FINISHED_TASKS,
): number {
  const finished = `agent_group_id = ? AND status IN ('done', 'cancelled')`;
  return prep(
    db,
    `DELETE FROM tasks WHERE ${finished} AND updated_at < ? AND rowid NOT IN
       (SELECT rowid FROM tasks WHERE ${finished} ORDER BY updated_at DESC, rowid DESC LIMIT ?)`,
  ).run(agentGroupId, now - FINISHED_TASK_GRACE_MS, agentGroupId, keep).changes;
}

/** How many of the group's series can still run (active or paused). */
export function countLiveTasks(db: Db, agentGroupId: string): number {
  const r = prep(
    db,
    `SELECT COUNT(*) AS n FROM tasks WHERE agent_group_id = ? AND status IN ('active', 'paused')`,
  ).get(agentGroupId) as { n: number };
  return r.n;
}

/** Active series whose live occurrence is due at `now`. */
export function dueTasks(db: Db, now: number): Task[] {
  return prep(
    db,
    `SELECT * FROM tasks WHERE status = 'active' AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at, id`,
  )
    .all(now)
    .map(fromRow);
}

/** The earliest scheduled instant of any active series, or null when nothing is scheduled. */
export function earliestRun(db: Db): number | null {
  const r = prep(
    db,
    `SELECT MIN(next_run_at) AS m FROM tasks WHERE status = 'active' AND next_run_at IS NOT NULL`,
  ).get() as { m: number | null };
  return r.m;
}

export function toMirror(t: Task): MirroredTask {
  return {
    id: t.id,
    prompt: t.prompt,
    cron: t.cron,
    at: t.at,
    script: t.script,
    status: t.status,
    nextRunAt: t.nextRunAt,
    timezone: t.timezone,
  };
}

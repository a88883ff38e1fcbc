/**
 * Host-side validation and application of the task actions a sandbox writes (outbound rows of
 * kind 'system'). The sandbox is untrusted: every rule the tools check is checked again here,
 * and a session can only ever see or touch tasks of its own agent group: task ids are per
 * group (another group's id is simply not there), so ids neither leak nor collide across groups.
 *
 * Every action is idempotent, so a row handled again after a host crash (before the ledger
 * recorded it) changes nothing: re-scheduling the same id with the same spec, pausing a paused
 * task, resuming an active one, cancelling a cancelled one and re-applying a patch are no-ops.
 */
import { PolyclawError } from '../shared/errors.js';
import type { ApprovalPolicy, Routing, SystemAction, TaskPatch, TaskSpec } from '../shared/messages.js';
import { nextCronRun, resolveAt, validateCron } from '../shared/schedule.js';
import { MAX_LIVE_TASKS, scriptPolicyProblem, taskTextProblem } from '../shared/task-rules.js';
import type { Db } from './db/open.js';
import { mayPostTo } from './store/messaging.js';
import { taskAnswer } from './task-routing.js';
import {
  countLiveTasks,
  getTask,
  insertTask,
  updateTask,
  type Task,
  type TaskChange,
} from './store/tasks.js';

/** A refused action: `message` is one line the agent can act on. */
export class TaskRefused extends PolyclawError {
  constructor(message: string) {
    super('bad_request', message);
    this.name = 'TaskRefused';
  }
}

/** A one-shot `at` may have been valid when the tool checked it and be a moment old by now. */
export const AT_GRACE_MS = 60_000;
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

export interface ActionContext {
  db: Db;
  now: number;
  agentGroupId: string;
  sessionId: string;
  timezone: string;
  /** The group's approval policy: under 'deny' no action may set a script (task-rules.ts). */
  approval: ApprovalPolicy;
  /** The chat the action came from: tasks of sessions without a default chat answer there. */
  routing: Routing;
}

/** Apply `action` for the session in `ctx`; throws TaskRefused when it must not happen. */
export function applyTaskAction(ctx: ActionContext, action: SystemAction): Task {
  switch (action.type) {
    case 'schedule_task':
      return schedule(ctx, action.task);
    case 'cancel_task': {
      const t = owned(ctx, action.taskId);
      if (t.status === 'cancelled') return t;
      if (t.status === 'done') throw new TaskRefused(`task "${t.id}" already ran and is done`);
      return updateTask(ctx.db, t.agentGroupId, t.id, { status: 'cancelled', nextRunAt: null }, ctx.now);
    }
    case 'pause_task': {
      const t = live(owned(ctx, action.taskId));
      return t.status === 'paused'
        ? t
        : updateTask(ctx.db, t.agentGroupId, t.id, { status: 'paused' }, ctx.now);
    }
    case 'resume_task': {
      const t = live(owned(ctx, action.taskId));
      if (t.status === 'active') return t;
      const { routing: to, allowed } = taskAnswer(ctx.db, t);
      if (!allowed)
        throw new TaskRefused(
          `task "${t.id}" answers in ${to ? `${to.channelType}:${to.platformId}` : 'no chat'}, where this agent group may no longer post; cancel it and schedule a new one from a chat it may post to`,
        );
      // A cron series continues with its next slot after now; a one-shot whose time passed
      // while paused fires at once (it was missed, like a run missed while the host was down).
      const nextRunAt = t.cron ? nextRun(t.cron, t.timezone, ctx.now) : t.nextRunAt;
      return updateTask(ctx.db, t.agentGroupId, t.id, { status: 'active', nextRunAt }, ctx.now);
    }
    case 'update_task':
      return update(ctx, live(owned(ctx, action.taskId)), action.patch);
  }
}

function schedule(ctx: ActionContext, spec: TaskSpec): Task {
  if (!TASK_ID.test(spec.id))
    throw new TaskRefused(`task id "${spec.id}" must be 1-100 letters, digits, "_", ".", ":" or "-"`);
  checkText(spec.prompt, spec.script);
  checkPolicy(ctx, spec.script);
  const { channelType, platformId } = ctx.routing;
  // The stored chat is where the runs answer when the session has no chat of its own.
  if (!mayPostTo(ctx.db, ctx.agentGroupId, ctx.routing))
    throw new TaskRefused(
      `this agent group may not post to ${channelType}:${platformId}; schedule the task from a chat it may post to`,
    );
  // The same row handled again after a crash is a no-op, checked before the time: a one-shot's
  // time may have passed since it was stored (and it may have run).
  const existing = getTask(ctx.db, ctx.agentGroupId, spec.id);
  if (existing) {
    const same =
      existing.prompt === spec.prompt &&
      existing.at === spec.at &&
      existing.cron === spec.cron &&
      existing.script === spec.script;
    if (same) return existing;
    throw new TaskRefused(`task id "${spec.id}" is already in use; schedule it under a new id`);
  }
  const at = given(spec.at);
  const cron = given(spec.cron);
  const when = schedulingOf(ctx, at, cron);
  if (countLiveTasks(ctx.db, ctx.agentGroupId) >= MAX_LIVE_TASKS)
    throw new TaskRefused(
      `this agent group already has ${MAX_LIVE_TASKS} live tasks; cancel some first (list_tasks shows them)`,
    );
  return insertTask(
    ctx.db,
    {
      id: spec.id,
      agentGroupId: ctx.agentGroupId,
      sessionId: ctx.sessionId,
      prompt: spec.prompt,
      cron,
      at,
      script: spec.script,
      timezone: ctx.timezone,
      routing: ctx.routing,
      status: 'active',
      nextRunAt: when,
    },
    ctx.now,
  );
}

function update(ctx: ActionContext, t: Task, patch: TaskPatch): Task {
  // Setting one kind of schedule replaces the other unless the patch names both.
  let at = patch.at !== undefined ? given(patch.at) : t.at;
  let cron = patch.cron !== undefined ? given(patch.cron) : t.cron;
  if (given(patch.at) && patch.cron === undefined) cron = null;
  if (given(patch.cron) && patch.at === undefined) at = null;
  const prompt = patch.prompt ?? t.prompt;
  const script = patch.script !== undefined ? patch.script : t.script;
  checkText(prompt, script);
  // Only a script the patch sets: a task's other changes stay possible under a stricter policy
  // (its old script is then not run; task-script.ts).
  if (patch.script !== undefined) checkPolicy(ctx, patch.script);
  const change: TaskChange = { prompt, script, at, cron };
  if (at !== t.at || cron !== t.cron) {
    change.nextRunAt = schedulingOf({ ...ctx, timezone: t.timezone }, at, cron);
  }
  // updateTask skips undefined, so cleared values must be written as null explicitly.
  return updateTask(ctx.db, t.agentGroupId, t.id, change, ctx.now);
}

/** The first run of a schedule given as exactly one of `at` and `cron`. */
function schedulingOf(ctx: ActionContext, at: string | null, cron: string | null): number {
  if (at && cron) throw new TaskRefused('give either at (one-shot) or cron (recurring), not both');
  if (cron) {
    const bad = validateCron(cron);
    if (bad) throw new TaskRefused(bad);
    return nextRun(cron, ctx.timezone, ctx.now);
  }
  if (at) {
    const r = resolveAt(at, ctx.timezone, ctx.now - AT_GRACE_MS);
    if (!r.ok) throw new TaskRefused(r.error);
    return r.ms;
  }
  throw new TaskRefused('give at (a one-shot time) or cron (a recurring schedule)');
}

/** A schedule field as the tools mean it: blank is "not given" (the table holds exactly one). */
const given = (v: string | null | undefined): string | null => (v?.trim() ? v : null);

function nextRun(cron: string, tz: string, after: number): number {
  let n: number | null;
  try {
    n = nextCronRun(cron, tz, after);
  } catch (err) {
    // A stored schedule an older build accepted, or a zone since removed from the tz database.
    if (err instanceof PolyclawError) throw new TaskRefused(err.message);
    throw err;
  }
  if (n === null) throw new TaskRefused(`cron "${cron}" has no future run`);
  return n;
}

function checkText(prompt: string, script: string | null): void {
  const problem = taskTextProblem(prompt, script);
  if (problem) throw new TaskRefused(problem);
}

function checkPolicy(ctx: ActionContext, script: string | null): void {
  const problem = scriptPolicyProblem(ctx.approval, script);
  if (problem) throw new TaskRefused(problem);
}

/** The task, if it exists AND belongs to the caller's group; otherwise the same refusal either way. */
function owned(ctx: ActionContext, id: string): Task {
  const t = getTask(ctx.db, ctx.agentGroupId, id);
  if (!t) throw new TaskRefused(`no task "${id}" in this agent group (list_tasks shows its tasks)`);
  return t;
}

function live(t: Task): Task {
  if (t.status === 'cancelled' || t.status === 'done')
    throw new TaskRefused(`task "${t.id}" is ${t.status}; schedule a new task instead`);
  return t;
}

/**
 * Task tools: schedule_task, list_tasks, cancel_task, pause_task, resume_task, update_task.
 * They validate in the sandbox (so the model hears about a bad cron or a past time at once)
 * and write a system action the host validates again and applies; the host owns the schedule.
 */
import { z } from 'zod';
import type { SystemAction, TaskListing, TaskSpec } from '../../shared/messages.js';
import { resolveAt, validateCron } from '../../shared/schedule.js';
import {
  MAX_LIVE_TASKS,
  scriptOrNull,
  scriptPolicyProblem,
  taskTextProblem,
} from '../../shared/task-rules.js';
import { registerTool } from './registry.js';
import { defineTool, ToolError, type ToolContext } from './tool.js';

function act(ctx: ToolContext, action: SystemAction): void {
  const routing = ctx.turn()?.routing ?? ctx.meta().defaultRouting;
  if (!routing) throw new ToolError('This session has no chat to report task runs to.');
  ctx.write([
    { kind: 'system', inReplyTo: ctx.turn()?.messageId ?? null, routing, content: { text: '', action } },
  ]);
}

function when(
  ctx: ToolContext,
  at: string | undefined,
  cron: string | undefined,
): Pick<TaskSpec, 'at' | 'cron'> {
  // Models fill optional strings with "": a blank one is not given.
  at = at?.trim() ? at : undefined;
  cron = cron?.trim() ? cron : undefined;
  if (at !== undefined && cron !== undefined)
    throw new ToolError('Pass either `at` (one run) or `cron` (recurring), not both.');
  if (at !== undefined) {
    const tz = ctx.meta().timezone;
    const r = resolveAt(at, tz, ctx.now());
    if (!r.ok)
      throw new ToolError(
        `\`at\`: ${r.error}. Use ISO-8601 with an offset, or a local time "YYYY-MM-DD HH:MM" in ${tz}.`,
      );
    return { at: new Date(r.ms).toISOString(), cron: null };
  }
  if (cron !== undefined) {
    const bad = validateCron(cron);
    if (bad) throw new ToolError(`\`cron\`: ${bad}.`);
    return { at: null, cron: cron.trim() };
  }
  throw new ToolError('Pass `at` for one run or `cron` for a recurring task.');
}

/** Finished tasks shown besides the live ones: a group's history of one-shots grows without end. */
const FINISHED_SHOWN = 10;
const isFinished = (t: TaskListing) => t.status === 'done' || t.status === 'cancelled';

/** Every live task, and the newest FINISHED_SHOWN finished ones (the list is oldest first). */
function recentFirst(tasks: TaskListing[]): { shown: TaskListing[]; older: number } {
  const finished = tasks.filter(isFinished);
  const hidden = new Set(finished.slice(0, Math.max(0, finished.length - FINISHED_SHOWN)));
  return { shown: tasks.filter((t) => !hidden.has(t)), older: hidden.size };
}

const knownIds = (tasks: TaskListing[]) => {
  const { shown, older } = recentFirst(tasks);
  return shown.map((x) => x.id).join(', ') + (older > 0 ? ` and ${older} older finished` : '');
};

/**
 * The task as this session knows it, for a verb on it: unknown ids and tasks that are over are
 * refused here, as the host would refuse them, so the model never reports a change that fails.
 */
function taskFor(ctx: ToolContext, taskId: string, verb: string): TaskListing {
  const tasks = ctx.tasks();
  const t = tasks.find((x) => x.id === taskId);
  if (!t) {
    throw new ToolError(
      `No task "${taskId}" in this group.${tasks.length ? ` Known ids: ${knownIds(tasks)}.` : ' There are no tasks yet.'} Use list_tasks.`,
    );
  }
  if (t.status === 'done' && verb === 'cancel_task')
    throw new ToolError(`Task "${taskId}" already ran and is done.`);
  if ((t.status === 'done' || t.status === 'cancelled') && verb !== 'cancel_task')
    throw new ToolError(`Task "${taskId}" is ${t.status}; schedule a new task instead.`);
  return t;
}

/** `script` is the one the call sets (null: none, or left as it is). */
function checkText(ctx: ToolContext, prompt: string, script: string | null): void {
  const problem = taskTextProblem(prompt, script) ?? scriptPolicyProblem(ctx.meta().approval, script);
  if (problem) throw new ToolError(`${problem[0]!.toUpperCase()}${problem.slice(1)}.`);
}

const Prompt = z.string().describe('What the agent should do when the task runs.');
const At = z
  .string()
  .optional()
  .describe('One run: ISO-8601 with offset, or local "YYYY-MM-DD HH:MM" in the group timezone.');
const Cron = z
  .string()
  .optional()
  .describe('Recurring: 5-field cron in the group timezone, e.g. "0 9 * * 1-5".');
const Script = z
  .string()
  .optional()
  .describe(
    'Optional shell script run first; if its last JSON line is {"wakeAgent": false}, the agent is not woken. In update_task, "" removes the script.',
  );

registerTool(
  defineTool({
    name: 'schedule_task',
    description:
      'Schedule work for yourself: once at a time (`at`) or recurring (`cron`). The prompt comes back to you as a message when the task runs.',
    input: { prompt: Prompt, at: At, cron: Cron, script: Script },
    run({ prompt, at, cron, script }, ctx) {
      if (!prompt.trim())
        throw new ToolError('`prompt` is empty: say what should happen when the task runs.');
      const pre = scriptOrNull(script);
      checkText(ctx, prompt, pre);
      const live = ctx.tasks().filter((t) => t.status !== 'done' && t.status !== 'cancelled').length;
      if (live >= MAX_LIVE_TASKS)
        throw new ToolError(
          `This group already has ${MAX_LIVE_TASKS} live tasks; cancel some first (list_tasks shows them).`,
        );
      const task: TaskSpec = {
        id: `task-${ctx.newId().slice(0, 8)}`,
        prompt,
        ...when(ctx, at, cron),
        script: pre,
      };
      act(ctx, { type: 'schedule_task', task });
      return `Scheduled ${task.id} (${task.cron ? `cron "${task.cron}" in ${ctx.meta().timezone}` : `at ${task.at}`}).`;
    },
  }),
);

registerTool(
  defineTool({
    name: 'list_tasks',
    description: "List this group's scheduled tasks with their status and next run.",
    input: {},
    run(_args, ctx) {
      const tasks = ctx.tasks();
      if (tasks.length === 0) return 'No scheduled tasks.';
      const { shown, older } = recentFirst(tasks);
      const lines = shown.map(
        (t) =>
          `${t.id} [${t.status}] ${t.cron ? `cron "${t.cron}" in ${t.timezone}` : `at ${t.at}`} next=${t.nextRunAt ? new Date(t.nextRunAt).toISOString() : '-'} — ${t.prompt.slice(0, 80)}`,
      );
      if (older > 0)
        lines.push(`(and ${older} older finished task${older === 1 ? '' : 's'}, done or cancelled)`);
      return lines.join('\n');
    },
  }),
);

for (const [name, verb] of [
  ['cancel_task', 'Cancel'],
  ['pause_task', 'Pause'],
  ['resume_task', 'Resume'],
] as const) {
  registerTool(
    defineTool({
      name,
      description: `${verb} a scheduled task by id (see list_tasks).`,
      input: { taskId: z.string().describe('The task id, e.g. "task-1a2b3c4d".') },
      run({ taskId }, ctx) {
        const t = taskFor(ctx, taskId, name);
        // Cancelling twice is harmless, and said as it is: nothing is requested.
        if (name === 'cancel_task' && t.status === 'cancelled') return `Task ${taskId} is cancelled already.`;
        act(ctx, { type: name, taskId });
        return `${verb} of ${taskId} requested.`;
      },
    }),
  );
}

registerTool(
  defineTool({
    name: 'update_task',
    description: 'Change a scheduled task: its prompt, its time (`at` or `cron`) or its script.',
    input: { taskId: z.string(), prompt: Prompt.optional(), at: At, cron: Cron, script: Script },
    run({ taskId, prompt, at, cron, script }, ctx) {
      const current = taskFor(ctx, taskId, 'update_task');
      const patch: Partial<Omit<TaskSpec, 'id'>> = {};
      // Blank optional fields are not given (models fill them with ""), but for `script`,
      // where "" removes it: a blank prompt keeps the prompt, blank `at`/`cron` keep the time.
      if (prompt?.trim()) patch.prompt = prompt;
      if (at?.trim() || cron?.trim()) Object.assign(patch, when(ctx, at, cron));
      if (script !== undefined) patch.script = scriptOrNull(script);
      if (Object.keys(patch).length === 0)
        throw new ToolError('Nothing to change: pass prompt, at, cron or script.');
      checkText(ctx, patch.prompt ?? current.prompt, patch.script ?? null);
      act(ctx, { type: 'update_task', taskId, patch });
      return `Update of ${taskId} requested.`;
    },
  }),
);

import type { ApprovalPolicy } from './messages.js';

/**
 * What a scheduled task may be, checked twice: by the task tools in the sandbox, so the model
 * hears of a bad call at once and never reports a task as scheduled that the host then refuses,
 * and by the host, which owns the schedule and trusts nothing a sandbox writes.
 */
export const MAX_TASK_PROMPT = 100_000;
export const MAX_TASK_SCRIPT = 20_000;
/** Live (active or paused) series per agent group: a runaway agent cannot flood the scheduler. */
export const MAX_LIVE_TASKS = 500;

/** One line the model can act on, or null when prompt and script are fine. */
export function taskTextProblem(prompt: string, script: string | null): string | null {
  if (!prompt.trim()) return 'prompt is empty';
  if (prompt.length > MAX_TASK_PROMPT) return `prompt is longer than ${MAX_TASK_PROMPT} characters`;
  if (script !== null && !script.trim()) return 'script is blank; leave it out for no script';
  if (script && script.length > MAX_TASK_SCRIPT)
    return `script is longer than ${MAX_TASK_SCRIPT} characters; put it in a file and run that`;
  return null;
}

/** A blank script means none (models fill optional strings with ""). */
export function scriptOrNull(script: string | null | undefined): string | null {
  return script?.trim() ? script : null;
}

/**
 * A task's script is a command the agent leaves to run later, so the group's approval policy
 * holds for it as for a command run in a turn: under 'deny' no script is scheduled (and one
 * scheduled before the policy changed is not run; task-script.ts), under 'ask' each run waits
 * for an admin. One line the model can act on, or null.
 */
export function scriptPolicyProblem(policy: ApprovalPolicy, script: string | null): string | null {
  if (!script || policy !== 'deny') return null;
  return "this agent group's approval policy refuses commands, and a task script is one; schedule the task without a script";
}

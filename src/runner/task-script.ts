/**
 * Pre-script gating of scheduled task runs, inside the sandbox. A run whose series was paused
 * or cancelled after it was queued is dropped (acked completed, the agent not woken). A 'task'
 * message whose content carries a script has it run first (`/bin/sh -c script`, cwd = the
 * agent dir, 60 s timeout, output capped). If the LAST stdout line that parses as JSON is
 * `{"wakeAgent": false}`, the message is acked completed and the agent never wakes (cheap
 * polling tasks). Otherwise the agent runs with the script's output appended to the task prompt — a failing or timed-out
 * script is reported to the agent the same way, with its exit status, rather than dropped.
 *
 * The script runs in its own process group, which is killed when the shell exits or the
 * timeout passes, so a backgrounded child cannot outlive it; one that leaves the group
 * (setsid) cannot hold the turn open either: the result is taken when the shell exits. Output
 * over the cap keeps its first and last parts, so a verdict printed last after much output
 * still counts.
 *
 * A script is a command, so the group's approval policy holds for it when it runs (the policy
 * may have changed since the task was scheduled): 'bypass' runs it, 'deny' never does, 'ask'
 * runs it once an admin of the task's chat allows this run. A script that is not run still
 * wakes the agent, told why, so the task's prompt is never dropped in silence.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../shared/log.js';
import type { ApprovalPolicy } from '../shared/messages.js';
import type { PendingMessage, RunnerQueue } from './session-io.js';

export const SCRIPT_TIMEOUT_MS = 60_000;
export const SCRIPT_MAX_BYTES = 64 * 1024;

export interface ScriptResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
}

export type ScriptRunner = (
  script: string,
  opts: { cwd: string; timeoutMs: number; maxBytes: number; log: Logger },
) => Promise<ScriptResult>;

/** After the shell exits, output still in the pipes is read for at most this long. */
export const DRAIN_MS = 200;

/**
 * The first and the last half of `max` bytes of a stream, and how much fell between them: a
 * chatty script's verdict line comes last, so the tail is what must survive the cap.
 */
class Capture {
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  private total = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const half = this.max >> 1;
    const room = half - this.head.length;
    if (room > 0) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, room)]);
      chunk = chunk.subarray(room);
    }
    if (chunk.length === 0) return;
    const tail = Buffer.concat([this.tail, chunk]);
    this.tail = tail.length > this.max - half ? tail.subarray(tail.length - (this.max - half)) : tail;
  }

  get dropped(): number {
    return this.total - this.head.length - this.tail.length;
  }

  text(): string {
    if (this.dropped === 0) return Buffer.concat([this.head, this.tail]).toString('utf8');
    return `${this.head.toString('utf8')}\n[… ${this.dropped} bytes left out …]\n${this.tail.toString('utf8')}`;
  }
}

/**
 * Runs `script` with /bin/sh in its own process group; never rejects. The result is taken when
 * the shell exits (or is killed at the timeout), not when its pipes close: a child that left
 * the group (setsid) may hold them open for as long as it lives.
 */
export const runShellScript: ScriptRunner = (script, { cwd, timeoutMs, maxBytes, log }) =>
  new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', script], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout = new Capture(maxBytes);
    const stderr = new Capture(maxBytes);
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (err) {
        // ESRCH: the group is already gone, which is the normal case after a clean exit.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') log.warn('could not kill task script', { err });
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    let settled = false;
    let drain: NodeJS.Timeout | undefined;
    const settle = (exit: { code: number | null; signal: string | null }, startError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        ...exit,
        stdout: stdout.text(),
        stderr: startError ?? stderr.text(),
        timedOut,
        truncated: stdout.dropped > 0 || stderr.dropped > 0,
      });
    };
    let exit: { code: number | null; signal: string | null } = { code: null, signal: null };
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      clearTimeout(timer);
      killGroup(); // background children of the script go with it
      drain = setTimeout(() => settle(exit), DRAIN_MS);
    });
    child.on('error', (err) =>
      settle({ code: null, signal: null }, `could not start /bin/sh: ${err.message}`),
    );
    child.on('close', () => settle(exit));
  });

/** True when the last stdout line that parses as JSON is an object with wakeAgent === false. */
export function wakeAgentFalse(stdout: string): boolean {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue; // not JSON: look further up
    }
    return typeof v === 'object' && v !== null && (v as { wakeAgent?: unknown }).wakeAgent === false;
  }
  return false;
}

function describe(r: ScriptResult): string {
  const status = r.timedOut
    ? `timed out after ${SCRIPT_TIMEOUT_MS / 1000} s`
    : r.signal
      ? `killed by ${r.signal}`
      : `exit code ${r.code ?? 'unknown'}`;
  const parts = [`Output of this task's pre-script (${status}${r.truncated ? ', output truncated' : ''}):`];
  parts.push(r.stdout.trimEnd() || '(no output)');
  if (r.stderr.trim()) parts.push(`stderr:\n${r.stderr.trimEnd()}`);
  return parts.join('\n');
}

/** An admin's decision on one run's script; a refusal says why, in words for the agent. */
export type ScriptApproval = (
  m: PendingMessage,
  script: string,
) => Promise<{ allow: boolean; reason?: string }>;

export interface GateDeps {
  queue: Pick<RunnerQueue, 'ack' | 'commit' | 'heartbeat' | 'tasks'>;
  cwd: string;
  log: Logger;
  run?: ScriptRunner;
  /** The group's approval policy (default 'bypass'). */
  policy?: ApprovalPolicy;
  /** Under 'ask': puts the run's script to an admin. Without it, 'ask' runs no script. */
  approve?: ScriptApproval;
}

/** Why the policy keeps this run's script from running (a sentence), or null when it may run. */
async function refusal(m: PendingMessage, script: string, d: GateDeps): Promise<string | null> {
  const policy = d.policy ?? 'bypass';
  if (policy === 'bypass') return null;
  if (policy === 'deny') return "This agent group's approval policy refuses commands.";
  if (!d.approve) return 'Nobody could be asked to approve it.';
  const r = await d.approve(m, script);
  return r.allow ? null : (r.reason ?? 'An admin denied it.');
}

/** The ids of the batch's task series that were paused or cancelled since (the host's mirror). */
function stoppedSeries(batch: PendingMessage[], queue: Pick<RunnerQueue, 'tasks'>): Set<string> {
  if (!batch.some((m) => m.kind === 'task')) return new Set();
  return new Set(
    queue
      .tasks()
      .filter((t) => t.status === 'paused' || t.status === 'cancelled')
      .map((t) => t.id),
  );
}

/**
 * Run the pre-scripts of task messages in `batch`. Returns the batch without the tasks that
 * were gated off (already acked completed), and with script output appended to the others.
 */
export async function gateTaskScripts(batch: PendingMessage[], d: GateDeps): Promise<PendingMessage[]> {
  const kept: PendingMessage[] = [];
  const over = stoppedSeries(batch, d.queue);
  for (const m of batch) {
    if (m.kind === 'task' && over.has(m.content.task?.id ?? '')) {
      // Queued before its series was paused or cancelled (say, while a long turn ran).
      d.log.info('a run of a paused or cancelled task is dropped', { task: m.content.task?.id, seq: m.seq });
      d.queue.ack([m], 'processing');
      d.queue.commit([], [m]);
      continue;
    }
    const script = m.kind === 'task' ? m.content.task?.script : null;
    if (!script) {
      kept.push(m);
      continue;
    }
    d.queue.ack([m], 'processing');
    d.queue.heartbeat(true);
    const refused = await refusal(m, script, d);
    if (refused) {
      d.log.info('task pre-script not run', { task: m.content.task?.id, seq: m.seq, why: refused });
      const text = `${m.content.text}\n\nThis task's pre-script was not run. ${refused}`;
      kept.push({ ...m, content: { ...m.content, text } });
      continue;
    }
    const r = await (d.run ?? runShellScript)(script, {
      cwd: d.cwd,
      timeoutMs: SCRIPT_TIMEOUT_MS,
      maxBytes: SCRIPT_MAX_BYTES,
      log: d.log,
    });
    d.queue.heartbeat(true);
    if (!r.timedOut && wakeAgentFalse(r.stdout)) {
      d.log.info('task pre-script said not to wake the agent', { task: m.content.task?.id, seq: m.seq });
      d.queue.commit([], [m]);
      continue;
    }
    kept.push({ ...m, content: { ...m.content, text: `${m.content.text}\n\n${describe(r)}` } });
  }
  return kept;
}

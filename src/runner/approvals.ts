/**
 * Tool approvals under the 'ask' policy. A provider emits an `approval` event when its agent
 * wants a tool that needs permission; the desk puts it to the chat of the running turn as a
 * question (Allow / Deny) that only an admin may answer (the host enforces that), and hands
 * the decision back to the query. Invariants:
 *  - every request gets exactly one decision: the admin's answer, a deny when nobody answered
 *    within the timeout, or a deny when the turn ends first (close());
 *  - the answer arrives as an inbound 'answer' row; poll() is called on every inbound wake of
 *    the loop, so the desk needs no doorbell of its own;
 *  - while a request waits, the runner's heartbeat keeps going, so the host's stuck-turn
 *    sweep does not kill a turn that is only waiting for a person.
 */
import type { Doorbell } from '../shared/doorbell.js';
import type { Logger } from '../shared/log.js';
import { AGENT_CHANNEL, type Routing } from '../shared/messages.js';
import type { ApprovalRequest } from '../shared/provider.js';
import { questionText } from './question-text.js';
import type { PendingMessage, RunnerQueue } from './session-io.js';
import type { ScriptApproval } from './task-script.js';

export const ALLOW = 'Allow';
export const DENY = 'Deny';
const TITLE = 'Approval needed';
export const APPROVAL_TIMEOUT_MS = 10 * 60_000;
const HEARTBEAT_MS = 30_000;

export type Decide = (allow: boolean, reason?: string) => void;

interface Waiting {
  decide: Decide;
  timer: NodeJS.Timeout;
}

/** The question: which tool, and what it would do. */
export function approvalQuestion(req: ApprovalRequest): string {
  return `Allow the agent to use ${req.tool}?${req.summary ? `\n${req.summary}` : ''}`;
}

export class ApprovalDesk {
  private waiting = new Map<string, Waiting>();
  private beat: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: {
      queue: RunnerQueue;
      log: Logger;
      now?: () => number;
      timeoutMs?: number;
    },
  ) {}

  /** Ask the chat of `to`; `decide` is called once with the outcome. */
  ask(req: ApprovalRequest, to: { messageId: string; routing: Routing } | null, decide: Decide): void {
    const { queue, log } = this.d;
    if (!to) {
      decide(false, 'There is no chat to ask for approval; the tool was not run.');
      return;
    }
    // Another agent group started this turn: its chat has no person who could approve.
    if (to.routing.channelType === AGENT_CHANNEL) {
      log.info('approval denied: the turn came from another agent group', { tool: req.tool });
      decide(
        false,
        `This turn was started by another agent group (${to.routing.platformId}), where no person can approve; the tool was not run. Ask a person in a chat of your own for work that needs approval.`,
      );
      return;
    }
    const timeoutMs = this.d.timeoutMs ?? APPROVAL_TIMEOUT_MS;
    const expiresAt = (this.d.now ?? Date.now)() + timeoutMs;
    queue.commit(
      [
        {
          kind: 'question',
          inReplyTo: to.messageId,
          routing: to.routing,
          content: {
            text: questionText(TITLE, approvalQuestion(req), [ALLOW, DENY], 'admins only'),
            question: {
              questionId: req.id,
              title: TITLE,
              question: approvalQuestion(req),
              options: [ALLOW, DENY],
              expiresAt,
              adminOnly: true,
            },
          },
        },
      ],
      [],
    );
    log.info('tool approval requested', { id: req.id, tool: req.tool });
    const timer = setTimeout(() => {
      this.settle(
        req.id,
        false,
        `Nobody approved ${req.tool} within ${Math.ceil(timeoutMs / 1000)} s; it was not run.`,
      );
    }, timeoutMs);
    this.waiting.set(req.id, { decide, timer });
    this.beat ??= setInterval(() => queue.heartbeat(true), HEARTBEAT_MS);
    this.poll();
  }

  /** Look for answers to the waiting requests (after an inbound wake). */
  poll(): void {
    for (const id of [...this.waiting.keys()]) {
      const answer = this.d.queue.answer(id);
      if (answer === null) continue;
      if (answer.undelivered) {
        this.settle(
          id,
          false,
          `The approval request could not be shown (${answer.undelivered}); the tool was not run.`,
        );
        continue;
      }
      const allow = answer.text === ALLOW;
      this.settle(id, allow, allow ? undefined : 'An admin denied this tool call.');
    }
  }

  /** The turn is over: deny whatever still waits. */
  close(): void {
    for (const id of [...this.waiting.keys()])
      this.settle(id, false, 'The turn ended before anyone approved; the tool was not run.');
  }

  get pending(): number {
    return this.waiting.size;
  }

  private settle(id: string, allow: boolean, reason?: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (this.waiting.size === 0 && this.beat) {
      clearInterval(this.beat);
      this.beat = null;
    }
    this.d.log.info('tool approval settled', { id, allow });
    w.decide(allow, reason);
  }
}

/**
 * Under the 'ask' policy, a task run's pre-script waits for an admin of the task's chat, as a
 * tool call in a turn does. No query is open to pump inbound wakes, so this watches the
 * doorbell itself; nothing else of the session runs meanwhile, and a stop denies at once.
 */
export function scriptApprover(d: {
  queue: RunnerQueue;
  log: Logger;
  now?: () => number;
  timeoutMs?: number;
  doorbell: Pick<Doorbell, 'wait' | 'ring'>;
  pollMs: number;
  stopped: () => boolean;
}): ScriptApproval {
  return (m: PendingMessage, script: string) => {
    const desk = new ApprovalDesk(d);
    return new Promise((resolve) => {
      let decided = false;
      desk.ask(
        {
          // A try of its own: a retried run asks again (question ids are unique host-wide).
          id: `script-${m.id}-${m.tries}`,
          tool: `the pre-script of task ${m.content.task?.id ?? '(unknown)'}`,
          summary: `It runs before the agent wakes for the task:\n${script}`,
        },
        { messageId: m.id, routing: m.routing },
        (allow, reason) => {
          decided = true;
          // The watch below may still wait on the bell: ring it, so it ends now and no ring
          // meant for the loop is taken by it later.
          d.doorbell.ring();
          resolve({ allow, reason });
        },
      );
      const watch = async () => {
        while (!decided && !d.stopped()) {
          await d.doorbell.wait(d.pollMs);
          desk.poll();
        }
        desk.close();
      };
      watch().catch((err: unknown) => {
        d.log.error('waiting for a pre-script approval failed', { err });
        desk.close();
      });
    });
  };
}

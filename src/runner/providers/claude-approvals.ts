/**
 * The 'ask' approval policy for one Claude CLI: Claude Code calls canUseTool for a tool that
 * needs permission and waits; the request is queued here until the live query hands it out as
 * an `approval` event, and the runner's decision (decide()) resolves the CLI's wait.
 * Invariants (HeldRequests): every request is resolved exactly once — by decide(), by the CLI
 * aborting the call (signal), or by close() (deny). A deny's message is worded for the model.
 */
import { randomUUID } from 'node:crypto';
import type { CanUseTool, PermissionResult } from '@anthropic-ai/claude-agent-sdk';
import type { ApprovalRequest } from '../../shared/provider.js';
import { HeldRequests } from './held-requests.js';

const MAX_SUMMARY = 500;

/** What the person is asked about: the command, the file, or the input in short. */
export function summarizeToolInput(tool: string, input: Record<string, unknown>): string {
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  let text: string;
  if (tool === 'Bash') text = s(input.command);
  else if (s(input.file_path) || s(input.notebook_path)) text = s(input.file_path) || s(input.notebook_path);
  else if (s(input.url)) text = s(input.url);
  else text = JSON.stringify(input);
  return text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY)}…` : text;
}

export class ClaudeApprovals {
  private asks: ApprovalRequest[] = [];
  private readonly held = new HeldRequests();
  private wake: (() => void) | null = null;

  /** The canUseTool callback for the SDK options. */
  readonly canUseTool: CanUseTool = (tool, input, { signal }) =>
    new Promise<PermissionResult>((resolve) => {
      const id = randomUUID();
      this.held.hold(id, (d) => {
        this.asks = this.asks.filter((a) => a.id !== id);
        resolve(
          d.allow
            ? { behavior: 'allow', updatedInput: input }
            : { behavior: 'deny', message: d.reason ?? 'The tool call was denied.' },
        );
      });
      signal.addEventListener(
        'abort',
        () => this.held.decide(id, { allow: false, reason: 'The tool call was cancelled.' }),
        { once: true },
      );
      this.asks.push({ id, tool, summary: summarizeToolInput(tool, input) });
      this.wake?.();
    });

  /** The next request not yet handed out, if any. */
  take(): ApprovalRequest | undefined {
    return this.asks.shift();
  }

  /** Resolves when a request is queued (at once if one is). */
  next(): Promise<void> {
    if (this.asks.length) return Promise.resolve();
    return new Promise((r) => (this.wake = () => ((this.wake = null), r())));
  }

  decide(id: string, allow: boolean, reason?: string): void {
    this.held.decide(id, { allow, reason });
  }

  close(): void {
    this.held.denyAll('The session ended before anyone approved.');
    this.asks = [];
  }
}

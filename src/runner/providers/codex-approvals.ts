/**
 * Server→client requests from codex app-server (approvals, user input, elicitation, dynamic tool
 * calls) under the group's approval policy. Verified against codex 0.169 (danger-full-access):
 *  - approvalPolicy "never" (bypass): codex asks nothing; shell, patches and MCP tools just run;
 *  - approvalPolicy "untrusted" on thread/start|resume (ask, deny): EVERY shell command (even `ls`)
 *    sends item/commandExecution/requestApproval {command, commandActions, …}; an apply_patch
 *    sends item/fileChange/requestApproval {itemId} (the changed paths are only in the preceding
 *    item/started fileChange item); an MCP tool not annotated read-only sends
 *    mcpServer/elicitation/request with _meta.codex_approval_kind "mcp_tool_call". "untrusted" is
 *    refused in config.toml ("no longer supported"), so config.toml says "on-request" and the
 *    thread params say "untrusted" ("on-request" alone asks for no shell command at all: with
 *    danger-full-access there is nothing to escalate);
 *  - "decline" makes the tool fail for the model ("rejected by user") and the turn goes on;
 *    "cancel" would interrupt the whole turn, so a deny is always "decline".
 * Our own tool server is trusted in config.toml (default_tools_approval_mode = "approve"), and an
 * approval codex still asks for one of its tools is accepted here. Invariant: every request gets
 * exactly one answer — a decision, or an error reply for an unknown method (the transport turns a
 * throw into one); a held request is declined when its turn ends, the query aborts or closes.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { ApprovalPolicy } from '../../shared/messages.js';
import type { ApprovalRequest } from '../../shared/provider.js';
import { HeldRequests } from './held-requests.js';

const MAX_SUMMARY = 500;

export class UnsupportedRequestError extends Error {
  constructor(method: string) {
    super(`Polyclaw does not handle the codex request "${method}"`);
    this.name = 'UnsupportedRequestError';
  }
}

/** config.toml's approval_policy and the thread's (thread/start, thread/resume) for a group policy. */
export function codexApprovalPolicy(p: ApprovalPolicy): {
  config: 'never' | 'on-request';
  thread: 'never' | 'untrusted';
} {
  return p === 'bypass'
    ? { config: 'never', thread: 'never' }
    : { config: 'on-request', thread: 'untrusted' };
}

/** What a server request needs: a fixed answer, or a decision (reply(allow) is the answer). */
export type Triage =
  | { kind: 'answer'; result: unknown }
  | { kind: 'decide'; tool: string; summary: string; reply: (allow: boolean, reason?: string) => unknown };

export interface TriageContext {
  /** MCP servers whose tools never need approval (our own). */
  trustedServers: ReadonlySet<string>;
  /** What an item in flight changes (fileChange requests carry only the item id). */
  itemSummary?: (itemId: string) => string | undefined;
}

const clip = (text: string) => (text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY)}…` : text);
const str = (v: unknown) => (typeof v === 'string' ? v : '');
const withReason = (text: string, reason: unknown) =>
  str(reason) ? (text ? `${text}\n(${str(reason)})` : str(reason)) : text;

/** `/bin/bash -lc 'cmd'` → `cmd` (what the model asked for); anything else as it is. */
export function displayCommand(command: string): string {
  const m = /^\S*\/(?:ba|z)?sh -lc '([^']*)'$/s.exec(command);
  return m ? m[1]! : command;
}

/** "add a.txt, update src/b.ts" from a fileChange item's changes, paths relative to cwd. */
export function summarizeChanges(changes: unknown, cwd: string): string | undefined {
  if (!Array.isArray(changes) || changes.length === 0) return undefined;
  return changes
    .map((c: { path?: unknown; kind?: { type?: unknown } }) => {
      const p = str(c?.path);
      const rel =
        p && path.isAbsolute(p) && !path.relative(cwd, p).startsWith('..') ? path.relative(cwd, p) : p;
      return `${str(c?.kind?.type) || 'change'} ${rel}`;
    })
    .join(', ');
}

type Params = Record<string, unknown>;

export function triage(method: string, raw: unknown, ctx: TriageContext): Triage {
  const p = (raw && typeof raw === 'object' ? raw : {}) as Params;
  const decide = (tool: string, summary: string, reply: (allow: boolean, reason?: string) => unknown) =>
    ({ kind: 'decide', tool, summary: clip(summary), reply }) as const;
  switch (method) {
    case 'item/commandExecution/requestApproval':
      return decide(
        p.kind === 'writeStdin' ? 'shell (input to a running command)' : 'shell',
        withReason(displayCommand(str(p.command)), p.reason),
        (ok) => ({ decision: ok ? 'accept' : 'decline' }),
      );
    case 'item/fileChange/requestApproval':
      return decide(
        'apply_patch',
        withReason(ctx.itemSummary?.(str(p.itemId)) ?? '', p.reason ?? p.grantRoot),
        (ok) => ({ decision: ok ? 'accept' : 'decline' }),
      );
    case 'execCommandApproval':
      return decide(
        'shell',
        withReason(Array.isArray(p.command) ? p.command.map(str).join(' ') : '', p.reason),
        (ok, reason) => ({
          decision: ok ? 'approved' : { denied: { rejection: reason ?? 'The command was denied.' } },
        }),
      );
    case 'applyPatchApproval':
      return decide(
        'apply_patch',
        withReason(Object.keys((p.fileChanges as object | null) ?? {}).join(', '), p.reason),
        (ok, reason) => ({
          decision: ok ? 'approved' : { denied: { rejection: reason ?? 'The patch was denied.' } },
        }),
      );
    case 'item/permissions/requestApproval': {
      const asked = p.permissions ?? {};
      return decide('permissions', withReason(JSON.stringify(asked), p.reason), (ok) => ({
        permissions: ok ? asked : {},
        scope: 'turn',
      }));
    }
    case 'mcpServer/elicitation/request': {
      const server = str(p.serverName);
      const meta = (p._meta && typeof p._meta === 'object' ? p._meta : {}) as Params;
      const reply = (ok: boolean) => ({
        action: ok ? 'accept' : 'decline',
        content: ok ? {} : null,
        _meta: null,
      });
      if (meta.codex_approval_kind === 'mcp_tool_call') {
        if (ctx.trustedServers.has(server)) return { kind: 'answer', result: reply(true) };
        return decide(
          `mcp__${server}__${str(meta.tool_name)}`,
          JSON.stringify(meta.tool_params ?? {}),
          reply,
        );
      }
      // A server's own question: only a yes/no can be given (no form is filled in).
      return decide(`mcp__${server}`, [str(p.message), str(p.url)].filter(Boolean).join('\n'), reply);
    }
    case 'item/tool/requestUserInput':
      // No person is on the other end of a codex turn; answer every question empty.
      return { kind: 'answer', result: { answers: {} } };
    case 'item/tool/call':
      return {
        kind: 'answer',
        result: {
          success: false,
          contentItems: [{ type: 'inputText', text: 'Polyclaw registers no dynamic tools.' }],
        },
      };
    default:
      throw new UnsupportedRequestError(method);
  }
}

/**
 * One query's approvals: the RPC request handler (handle), the decisions (answer), and the
 * declines when a turn ends (declineAll) or the query is over (close). `onHeld` hears the number
 * of requests waiting for a person whenever it changes (the turn timer pauses meanwhile).
 */
export class CodexApprovals {
  private readonly held: HeldRequests;
  private readonly items = new Map<string, string>();
  private readonly trusted: ReadonlySet<string>;
  private closed = false;

  constructor(
    private readonly d: {
      policy: ApprovalPolicy;
      trustedServers: readonly string[];
      cwd: string;
      emit: (req: ApprovalRequest) => void;
      onHeld?: (n: number) => void;
    },
  ) {
    this.trusted = new Set(d.trustedServers);
    this.held = new HeldRequests(d.onHeld);
  }

  /** The RPC request handler. */
  readonly handle = (method: string, params: unknown): Promise<unknown> => {
    const t = triage(method, params, {
      trustedServers: this.trusted,
      itemSummary: (id) => this.items.get(id),
    });
    if (t.kind === 'answer') return Promise.resolve(t.result);
    if (this.d.policy === 'bypass') return Promise.resolve(t.reply(true));
    if (this.d.policy === 'deny' || this.closed)
      return Promise.resolve(t.reply(false, 'Tools that need approval are not allowed in this chat.'));
    const id = randomUUID();
    return new Promise((resolve) => {
      this.held.hold(id, (d) => resolve(t.reply(d.allow, d.reason)));
      this.d.emit({ id, tool: t.tool, summary: t.summary });
    });
  };

  /** Remember what a fileChange item changes (its approval request names only the item). */
  noteItem(item: { type: string; id: string; changes?: unknown }, started: boolean): void {
    if (item.type !== 'fileChange') return;
    const summary = started ? summarizeChanges(item.changes, this.d.cwd) : undefined;
    if (summary) this.items.set(item.id, summary);
    else this.items.delete(item.id);
  }

  /** The decision on one held request; unknown or already settled ids are ignored. */
  answer(id: string, allow: boolean, reason?: string): void {
    this.held.decide(id, { allow, reason });
  }

  /** Decline every held request (its turn ended, or the query is going away). */
  declineAll(reason: string): void {
    this.held.denyAll(reason);
    this.items.clear();
  }

  /** The query is over: decline what is held and whatever still arrives. */
  close(reason: string): void {
    this.closed = true;
    this.declineAll(reason);
  }

  get pending(): number {
    return this.held.size;
  }
}

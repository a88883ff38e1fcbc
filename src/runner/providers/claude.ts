/**
 * `claude` provider: Claude Code through @anthropic-ai/claude-agent-sdk (which bundles the CLI).
 * One live streaming-input query per open batch (claude-query.ts); once a batch is answered the
 * CLI is kept warm (`keepWarmMs`, runner default 10 min) and the next batch of the same session
 * is pushed into it instead of starting a new process (a cold CLI start costs ~0.5 s); else
 * resume by the stored session id. The SDK's preset system prompt with our runtime context
 * appended; our MCP tool server attached over stdio; Claude's own scheduling, question and plan-mode tools disabled in
 * favour of ours; permissions per the group's approval policy (permissions(): bypass by default,
 * the sandbox being the boundary). The CLI's environment is an
 * allowlist (claude-env.ts). The group's composed CLAUDE.md (host side, src/providers/claude.ts)
 * is loaded by Claude Code itself from the working directory ('project' setting source).
 * Native slash commands (/compact, /context, /cost) reach the CLI verbatim: the host's command
 * gate has already refused them from anyone but an admin.
 */
import type { Options } from '@anthropic-ai/claude-agent-sdk';
import { errorMessage } from '../../shared/errors.js';
import { createLogger, type Logger } from '../../shared/log.js';
import type { ApprovalPolicy } from '../../shared/messages.js';
import { claudeBinary, notInstalled } from '../../shared/agent-binaries.js';
import {
  ProviderConfigError,
  type AgentProvider,
  type AgentQuery,
  type ProviderContext,
  type QueryInput,
} from '../../shared/provider.js';
import { nativeSlashCommand } from '../../shared/slash-commands.js';
import { unescapeXml } from '../formatter.js';
import { forClaude, groupForClaude, toolServer } from '../tools/config.js';
import { mcpServersFromEnv } from '../../shared/mcp.js';
import { archiveTranscript } from './claude-archive.js';
import { ClaudeConfigError, claudeEnv } from './claude-env.js';
import { isSessionInvalidError } from './claude-events.js';
import { LiveCli, liveQuery, type QueryFn } from './claude-query.js';
import { registerProvider } from './registry.js';

/**
 * Built-in tools that duplicate ours (tasks, ask_user_question, messages to other agents), need a
 * human at a terminal, or report later into a CLI that Polyclaw parks or closes once the turn is
 * answered (background monitors and workflows: their news would be lost or taken for the answer
 * to the next message; background tasks are off too, see claude-env.ts).
 */
export const DISALLOWED_TOOLS = [
  'CronCreate',
  'CronDelete',
  'CronList',
  'ScheduleWakeup',
  'AskUserQuestion',
  'EnterPlanMode',
  'ExitPlanMode',
  'Monitor',
  'Workflow',
  'SendMessage',
  'ListAgents',
];

const EFFORT: Record<string, Options['effort']> = {
  none: 'low',
  minimal: 'low',
  low: 'low',
  medium: 'medium',
  high: 'high',
  xhigh: 'xhigh',
};

/** Our own tools never need an approval: the host re-checks what they do. */
const OUR_TOOLS = 'mcp__polyclaw';

/**
 * The group's approval policy as Claude permission settings: 'bypass' runs every tool (the
 * sandbox is the boundary); 'ask' is Claude's default mode with each permission prompt sent
 * to the chat (canUseTool); 'deny' refuses whatever would prompt ('dontAsk'). Read-only tools
 * and our MCP tools run under every policy.
 */
export function permissions(policy: ApprovalPolicy, cli?: LiveCli): Partial<Options> {
  if (policy === 'bypass')
    return { permissionMode: 'bypassPermissions', allowDangerouslySkipPermissions: true };
  const base: Partial<Options> = { allowedTools: [OUR_TOOLS] };
  if (policy === 'deny') return { ...base, permissionMode: 'dontAsk' };
  return { ...base, permissionMode: 'default', ...(cli ? { canUseTool: cli.approvals.canUseTool } : {}) };
}

/**
 * A prompt that is one admin's native slash command goes to the CLI as the bare command. Only
 * a chat message (no kind attribute) can be one: the router's command gate has let it through;
 * a task, system notice or anything else never met the gate.
 */
export function toClaudePrompt(prompt: string): string {
  const msgs = [...prompt.matchAll(/<message ([^>]*)>([\s\S]*?)<\/message>/g)];
  if (msgs.length !== 1 || /(^|\s)kind="/.test(msgs[0]![1]!)) return prompt;
  const body = unescapeXml(msgs[0]![2]!).trim();
  return nativeSlashCommand(body) ? body : prompt;
}

export interface ClaudeDeps {
  /** The SDK's query(); loaded on first use (the SDK costs time to import). */
  query?: QueryFn;
  log?: Logger;
  isRoot?: boolean;
  exitGraceMs?: number;
  /**
   * Keep the CLI of an answered batch this long for the next batch of the same session (same
   * session id, cwd and system context), so a warm turn needs no new process. 0 = off.
   */
  keepWarmMs?: number;
  /**
   * Where Claude Code is (default: the SDK's platform package, as the SDK finds it); null means
   * not installed, which fails the query at once as a config error instead of a retried crash.
   * Checked only when the SDK's own query() is used.
   */
  binary?: () => string | null;
}

/** The runner's default: a parked CLI lives at most this long without a new batch. */
export const KEEP_WARM_MS = 10 * 60_000;

export class ClaudeProvider implements AgentProvider {
  readonly name = 'claude';
  readonly capabilities = {
    nativeSlashCommands: true,
    steering: false,
    memoryScaffold: false,
    streaming: true,
  };
  private readonly log: Logger;
  private parked: { cli: LiveCli; key: string; timer: NodeJS.Timeout } | null = null;

  constructor(
    private readonly ctx: ProviderContext,
    private readonly deps: ClaudeDeps = {},
  ) {
    this.log = deps.log ?? createLogger().child('claude');
  }

  isSessionInvalid(err: unknown): boolean {
    return isSessionInvalidError(err);
  }

  /** Our tool server, and the group's own MCP servers (POLYCLAW_MCP_SERVERS). */
  private mcpServers() {
    const ours = toolServer({ sessionDir: this.ctx.sessionDir, agentDir: this.ctx.agentDir });
    let group;
    try {
      group = mcpServersFromEnv(this.ctx.env);
    } catch (err) {
      throw new ClaudeConfigError(errorMessage(err));
    }
    return { ...groupForClaude(group, ours.name), ...forClaude(ours) };
  }

  /** SDK options for a new CLI; `cli` receives tool approvals under the 'ask' policy. */
  options(input: QueryInput, cli?: LiveCli): Options {
    const { ctx } = this;
    const env = claudeEnv({
      env: ctx.env,
      agentDir: ctx.agentDir,
      model: ctx.model,
      isRoot: this.deps.isRoot ?? process.getuid?.() === 0,
    });
    const effort = ctx.effort ? EFFORT[ctx.effort] : undefined;
    return {
      cwd: input.cwd,
      env,
      ...(ctx.model ? { model: ctx.model } : {}),
      ...(effort ? { effort } : {}),
      ...(input.continuation ? { resume: input.continuation } : {}),
      ...permissions(ctx.approval ?? 'bypass', cli),
      // 'project' loads the composed CLAUDE.md from the group folder; 'user' the per-group config dir.
      settingSources: ['user', 'project'],
      includePartialMessages: true,
      systemPrompt: { type: 'preset', preset: 'claude_code', append: input.systemContext },
      mcpServers: this.mcpServers(),
      disallowedTools: DISALLOWED_TOOLS,
      stderr: (data: string) => this.log.debug('claude stderr', { data: data.slice(0, 2000) }),
      hooks: {
        PreCompact: [
          {
            hooks: [
              async (h) => {
                archiveTranscript({
                  transcriptPath: h.transcript_path,
                  agentDir: ctx.agentDir,
                  sessionId: h.session_id,
                  log: this.log,
                });
                return { continue: true };
              },
            ],
          },
        ],
      },
    };
  }

  query(input: QueryInput): AgentQuery {
    const key = JSON.stringify([input.cwd, input.systemContext]);
    let cli = this.unpark(input.continuation, key);
    if (cli) this.log.debug('reusing the warm claude process', { session: input.continuation });
    else {
      const binary = this.deps.binary ?? claudeBinary;
      const query =
        this.deps.query ??
        (async (p) => {
          if (!binary()) throw new ProviderConfigError(notInstalled('claude'));
          return (await loadSdk())(p);
        });
      const live: LiveCli = new LiveCli((prompt) => query({ prompt, options: this.options(input, live) }));
      cli = live;
    }
    const keepWarmMs = this.deps.keepWarmMs ?? 0;
    return liveQuery({
      cli,
      prompt: input.prompt,
      toClaude: toClaudePrompt,
      log: this.log,
      exitGraceMs: this.deps.exitGraceMs,
      ...(keepWarmMs > 0 ? { park: (c: LiveCli) => this.park(c, key, keepWarmMs) } : {}),
    });
  }

  /** The parked CLI if it is alive and on this session with the same setup; any other is closed. */
  private unpark(continuation: string | undefined, key: string): LiveCli | null {
    const p = this.parked;
    this.parked = null;
    if (!p) return null;
    clearTimeout(p.timer);
    if (p.cli.dead || !continuation || p.cli.sessionId !== continuation || p.key !== key) {
      p.cli.close();
      return null;
    }
    return p.cli;
  }

  private park(cli: LiveCli, key: string, ms: number): void {
    this.unpark(undefined, '');
    const timer = setTimeout(() => {
      if (this.parked?.cli !== cli) return;
      this.parked = null;
      cli.close();
    }, ms);
    timer.unref();
    this.parked = { cli, key, timer };
  }

  close(): void {
    this.unpark(undefined, '');
  }
}

let loaded: QueryFn | null = null;
/** The SDK, imported on the first query: runners of other providers never load it. */
export async function loadSdk(): Promise<QueryFn> {
  loaded ??= (await import('@anthropic-ai/claude-agent-sdk')).query as QueryFn;
  return loaded;
}

registerProvider('claude', (ctx) => new ClaudeProvider(ctx, { keepWarmMs: KEEP_WARM_MS }));

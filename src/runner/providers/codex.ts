/**
 * `codex` provider: the real Codex agent over `codex app-server --listen stdio://` (JSON-RPC).
 * Per query: write $CODEX_HOME/config.toml (model provider = the gateway route), spawn the
 * pinned platform binary with an allowlisted env, and drive one CodexConversation. The thread
 * id is the continuation; codex keeps the thread history in CODEX_HOME (per-group, persistent).
 * The group's approval policy (ctx.approval) picks codex's approval policy and how its approval
 * requests are answered (codex-approvals.ts); answerApproval() carries the runner's decisions.
 * Invariant: codex holds no credential but the per-sandbox gateway token.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { createLogger, type Logger } from '../../shared/log.js';
import type { AgentProvider, AgentQuery, ProviderContext, QueryInput } from '../../shared/provider.js';
import { mcpServersFromEnv } from '../../shared/mcp.js';
import { MAX_QUESTION_TIMEOUT_S } from '../../shared/messages.js';
import { stripInternal } from '../formatter.js';
import { toolServer } from '../tools/config.js';
import { codexApprovalPolicy } from './codex-approvals.js';
import { archiveExchange, generatedImages, scaffoldMemory } from './codex-archive.js';
import {
  CodexConfigError,
  renderConfig,
  validateEffort,
  writeConfig,
  type CodexMcpServer,
} from './codex-config.js';
import { chatgptMode, writePlaceholderAuth } from './codex-chatgpt.js';
import { contextRecord } from './codex-context.js';
import { codexEnv } from './codex-env.js';
import { RpcClient } from './codex-rpc.js';
import { CodexConversation, type CodexConnection } from './codex-conversation.js';
import { registerProvider } from './registry.js';
import { codexBinary, notInstalled } from '../../shared/agent-binaries.js';

export const DEFAULT_TURN_TIMEOUT_MS = 10 * 60_000;

export interface CodexDeps {
  spawn?: (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;
  binary?: string;
  log?: Logger;
  now?: () => number;
  /** The polyclaw CLI that serves our MCP tools (default: this process's own entry point). */
  toolsCli?: string;
}

/**
 * Base URL of the model provider (codex appends /responses). The standard route is /openai/v1
 * (upstream https://api.openai.com). A named endpoint maps to /endpoints/NAME with no /v1: the
 * vault entry's --base-url is the API base itself (e.g. http://127.0.0.1:11434/v1), as for the
 * other OpenAI-compatible providers.
 */
export function gatewayBaseUrl(gatewayUrl: string, endpoint: string | undefined): string {
  const base = gatewayUrl.replace(/\/$/, '');
  return endpoint ? `${base}/endpoints/${encodeURIComponent(endpoint)}` : `${base}/openai/v1`;
}

export class CodexProvider implements AgentProvider {
  readonly name = 'codex';
  readonly capabilities = {
    nativeSlashCommands: false,
    steering: true,
    memoryScaffold: true,
    streaming: true,
  };
  private readonly log: Logger;
  private readonly codexHome: string;
  /** The warm app-server, reused across queries while its config.toml is unchanged. */
  private live: { conn: CodexConnection; config: string } | null = null;
  /** The name clash of a group MCP server with ours is logged once, not on every message. */
  private warnedNameClash = false;

  constructor(
    private readonly ctx: ProviderContext,
    private readonly deps: CodexDeps = {},
  ) {
    this.log = deps.log ?? createLogger().child('codex');
    validateEffort(ctx.effort);
    this.codexHome = ctx.env.CODEX_HOME ?? path.join(ctx.agentDir, '.codex');
  }

  async close(): Promise<void> {
    const live = this.live;
    if (!live) return;
    this.live = null;
    live.conn.rpc.close('codex provider closed');
    live.conn.kill();
    await Promise.race([live.conn.exited, new Promise((r) => setTimeout(r, 3000).unref())]);
  }

  isSessionInvalid(err: unknown): boolean {
    return err instanceof Error && /no rollout found|thread not found|unknown thread/i.test(err.message);
  }

  /**
   * Codex keeps no transcript we can read: each answered prompt is archived as it is answered,
   * from the conversation itself (pairing the runner's later reports with prompts drifted once
   * a result went missing, e.g. to an abort).
   */
  private archive(prompt: string, result: string | null, threadId: string): void {
    try {
      // As the person saw it: the model's <internal> notes are not part of the exchange.
      const said = result === null ? null : stripInternal(result);
      archiveExchange(this.ctx.agentDir, { prompt, result: said, threadId, status: 'completed' });
    } catch (err) {
      this.log.warn('could not archive a codex exchange', { err });
    }
  }

  private settings() {
    const env = this.ctx.env;
    const gatewayUrl = env.POLYCLAW_GATEWAY_URL ?? env.POLYCLAW_CODEX_BASE_URL;
    if (!gatewayUrl)
      throw new CodexConfigError('no POLYCLAW_GATEWAY_URL: codex reaches its model only through the gateway');
    const timeout = Number(env.POLYCLAW_CODEX_TURN_TIMEOUT_MS);
    const ours = toolServer({
      sessionDir: this.ctx.sessionDir,
      agentDir: this.ctx.agentDir,
      cliPath: this.deps.toolsCli,
    });
    // Our tool server always wins its name (as for Claude): a group server named like it is
    // left out, else config.toml would list the name twice and every message would fail.
    const named = mcpServersFromEnv(env);
    if (named.some((g) => g.name === ours.name) && !this.warnedNameClash) {
      this.warnedNameClash = true;
      this.log.warn('a group MCP server is named like our tool server; it is left out', { name: ours.name });
    }
    // Codex runs local (stdio) servers from config.toml; remote ones are OpenCode/Claude-only here.
    const group = named.flatMap((g) =>
      g.command && g.name !== ours.name ? [{ name: g.name, command: g.command, args: g.args }] : [],
    );
    const mcpServers: CodexMcpServer[] = [
      // A question waits up to a day for its person: codex's 60 s default would fail the call
      // under it while the question stayed open in the chat.
      { ...ours, approveTools: true, toolTimeoutSec: MAX_QUESTION_TIMEOUT_S + 600 },
      ...group.map((g) => ({ name: g.name, command: g.command, args: g.args, env: {} })),
    ];
    const chatgpt = chatgptMode(env);
    return {
      chatgpt,
      baseUrl: chatgpt
        ? chatgpt.baseUrl
        : env.POLYCLAW_GATEWAY_URL
          ? gatewayBaseUrl(env.POLYCLAW_GATEWAY_URL, env.POLYCLAW_MODEL_ENDPOINT || undefined)
          : gatewayUrl,
      approval: this.ctx.approval ?? 'bypass',
      trustedServers: [ours.name],
      turnTimeoutMs: timeout > 0 ? timeout : DEFAULT_TURN_TIMEOUT_MS,
      mcpServers,
    };
  }

  query(input: QueryInput): AgentQuery {
    const s = this.settings();
    const model = this.ctx.model ?? 'gpt-5.1-codex';
    const wanted = {
      model,
      effort: this.ctx.effort,
      baseUrl: s.baseUrl,
      approvalPolicy: codexApprovalPolicy(s.approval).config,
      mcpServers: s.mcpServers,
      ...(s.chatgpt ? { chatgpt: { backendUrl: s.chatgpt.backendUrl } } : {}),
    };
    const config = renderConfig(wanted);
    const gatewayToken = this.ctx.env.POLYCLAW_GATEWAY_TOKEN ?? 'polyclaw-no-gateway-token';
    // A warm app-server already runs with exactly this config: no disk work on the hot path.
    const warm =
      this.live && this.live.config === config && !this.live.conn.rpc.isClosed && !this.live.conn.retired;
    if (!warm) {
      scaffoldMemory(this.ctx.agentDir);
      writeConfig(this.codexHome, wanted);
      if (s.chatgpt) writePlaceholderAuth(this.codexHome, gatewayToken, (this.deps.now ?? Date.now)());
    }
    if (this.live && !warm) {
      this.live.conn.rpc.close('codex app-server replaced (config changed or process retired)');
      this.live.conn.kill();
      this.live = null;
    }
    const env = codexEnv(this.ctx.env, {
      codexHome: this.codexHome,
      gatewayToken,
      ...(s.chatgpt ? { refreshUrl: s.chatgpt.refreshUrl } : {}),
    });
    const connect = (): CodexConnection => {
      if (this.live && !this.live.conn.rpc.isClosed && !this.live.conn.retired) return this.live.conn;
      // An empty POLYCLAW_CODEX_BIN counts as unset.
      const bin = this.deps.binary ?? (this.ctx.env.POLYCLAW_CODEX_BIN || codexBinary());
      if (!bin) throw new CodexConfigError(notInstalled('codex'));
      const child = (this.deps.spawn ?? nodeSpawn)(bin, ['app-server', '--listen', 'stdio://'], {
        cwd: input.cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stderr?.on('data', (d: Buffer) =>
        this.log.debug('codex stderr', { text: d.toString().slice(0, 2000) }),
      );
      this.log.info('codex app-server started', { pid: child.pid });
      const rpc = new RpcClient(child, this.log.child('codex-rpc'));
      const conn: CodexConnection = {
        rpc,
        exited: new Promise<void>((r) => child.once('exit', () => r())),
        kill: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        },
      };
      this.live = { conn, config };
      return conn;
    };
    const conv = new CodexConversation(
      {
        connect,
        log: this.log,
        cwd: input.cwd,
        model,
        systemContext: input.systemContext,
        approval: s.approval,
        trustedServers: s.trustedServers,
        turnTimeoutMs: s.turnTimeoutMs,
        personWaiting: this.ctx.personWaiting,
        generatedFiles: (thread, since) => generatedImages(this.codexHome, thread, since),
        contextRecord: contextRecord(this.codexHome),
        onAnswered: (prompt, result, threadId) => this.archive(prompt, result, threadId),
        now: this.deps.now,
      },
      input.prompt,
      input.continuation,
    );
    conv.start();
    return {
      push: (t) => conv.push(t),
      end: () => conv.end(),
      abort: () => conv.abort(),
      events: conv.events,
      answerApproval: (id, allow, reason) => conv.answerApproval(id, allow, reason),
    };
  }
}

registerProvider('codex', (ctx) => new CodexProvider(ctx));

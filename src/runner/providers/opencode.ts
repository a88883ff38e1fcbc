/**
 * `opencode` provider: drives `opencode serve` through `@opencode-ai/sdk` (v2).
 * Invariants:
 *  - one server per sandbox (OpencodeRuntime), shared by every query of the session and
 *    restarted only when its config changes, it crashes, or a turn timed out;
 *  - continuation = OpenCode session id; a stored id the server does not know throws
 *    OpencodeSessionInvalid before `init`, so the runner clears it and starts fresh;
 *  - one `result` or `error` per prompt, in order; follow-ups pushed during a turn wait for
 *    the next prompt (no steering); abort() aborts the running OpenCode session;
 *  - instructions reach OpenCode as concrete files in its `instructions` list (it does not
 *    expand `@`-imports): the runtime context, plus the group's CLAUDE.md when present;
 *  - the group's approval policy (ctx.approval) becomes OpenCode's permission rules
 *    (opencode-config.ts); under 'ask' each permission request is an `approval` event, answered
 *    by answerApproval() and rejected if the turn ends first (opencode-turn.ts);
 *  - the server's process group is killed when the runner process exits.
 */
import { PromptInbox } from './prompt-inbox.js';
import fs from 'node:fs';
import path from 'node:path';
import type {
  AgentProvider,
  AgentQuery,
  ProviderContext,
  ProviderEvent,
  QueryInput,
} from '../../shared/provider.js';
import { errorMessage } from '../../shared/errors.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { toolServer } from '../tools/config.js';
import { OpencodeApprovals } from './opencode-approvals.js';
import { OpencodeRuntime, type Live } from './opencode-runtime.js';
import type { Spawner } from './opencode-server.js';
import { readSettings, type OpencodeSettings } from './opencode-settings.js';
import { runTurn } from './opencode-turn.js';
import { registerProvider } from './registry.js';

export class OpencodeSessionInvalid extends Error {
  constructor(id: string) {
    super(`OpenCode session ${id} no longer exists`);
    this.name = 'OpencodeSessionInvalid';
  }
}

export interface OpencodeDeps {
  log?: Logger;
  spawn?: Spawner;
  /** Path of the polyclaw CLI whose `tools` command is our MCP tool server (default: this process's). */
  cliPath?: string;
  binary?: string;
  /** What the client talks HTTP to the server with (tests cut the event stream through it). */
  fetch?: typeof fetch;
  /** Register a process-exit hook that kills the server group (default true). */
  exitHook?: boolean;
}

/** `p`'s value, or null as soon as `signal` aborts (`p` goes on; a failure it meets then is logged). */
async function untilAborted<T>(p: Promise<T>, signal: AbortSignal, log: Logger): Promise<T | null> {
  p.then(undefined, (err: unknown) => {
    if (signal.aborted) log.warn('opencode server start failed after an abort', { err: errorMessage(err) });
  });
  if (signal.aborted) return null;
  let onAbort!: () => void;
  const aborted = new Promise<null>((resolve) => {
    onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export class OpencodeProvider implements AgentProvider {
  readonly name = 'opencode';
  readonly capabilities = {
    nativeSlashCommands: false,
    steering: false,
    memoryScaffold: true,
    streaming: true,
  };
  readonly settings: OpencodeSettings;
  readonly runtime: OpencodeRuntime;
  private readonly log: Logger;
  private readonly knownSessions = new Set<string>();

  constructor(
    private readonly ctx: ProviderContext,
    deps: OpencodeDeps = {},
  ) {
    this.log = deps.log ?? createLogger().child('opencode');
    this.settings = readSettings({
      agentDir: ctx.agentDir,
      model: ctx.model,
      effort: ctx.effort,
      approval: ctx.approval,
      env: ctx.env,
      binary: deps.binary,
    });
    this.runtime = new OpencodeRuntime({
      settings: this.settings,
      cwd: ctx.agentDir,
      tools: toolServer({ sessionDir: ctx.sessionDir, agentDir: ctx.agentDir, cliPath: deps.cliPath }),
      runnerEnv: ctx.env,
      log: this.log,
      spawn: deps.spawn,
      fetch: deps.fetch,
    });
    if (deps.exitHook !== false) process.once('exit', () => this.runtime.killNow());
  }

  isSessionInvalid(err: unknown): boolean {
    return err instanceof OpencodeSessionInvalid;
  }

  /** Stop the server and the tap (tests and benches; the runner relies on the exit hook). */
  close(): Promise<void> {
    return this.runtime.close();
  }

  private instructionFiles(systemContext: string): string[] {
    const dir = path.join(this.settings.stateDir, 'instructions');
    fs.mkdirSync(dir, { recursive: true });
    const context = path.join(dir, 'polyclaw-context.md');
    const body = `${systemContext.trim()}\n`;
    let current: string | null = null;
    try {
      current = fs.readFileSync(context, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // Rewritten only when it changed: its content is part of the server's config key.
    if (current !== body) fs.writeFileSync(context, body);
    const files = [context];
    const claude = path.join(this.ctx.agentDir, 'CLAUDE.md');
    if (fs.existsSync(claude)) files.push(claude);
    return files;
  }

  query(input: QueryInput): AgentQuery {
    const inbox = new PromptInbox(input.prompt);
    const abort = inbox.abort;
    const approvals = new OpencodeApprovals(this.log);
    const run = async function* (self: OpencodeProvider): AsyncGenerator<ProviderEvent> {
      const instructions = self.instructionFiles(input.systemContext);
      // An abort while the server (re)starts ends the query at once; the start goes on and the
      // next query finds the server up (abort() must not wait for seconds of start-up).
      const first = await untilAborted(self.runtime.ensure(instructions), abort.signal, self.log);
      if (!first) return;
      let live: Live | null = first;
      const sessionID = await self.openSession(live.client, input.continuation, input.cwd);
      yield { type: 'init', continuation: sessionID };
      for (let prompt = await inbox.next(); prompt !== null; prompt = await inbox.next()) {
        // The server may have been reset by an earlier turn's timeout: bring it back first.
        const now = live ?? (await untilAborted(self.runtime.ensure(instructions), abort.signal, self.log));
        if (!now) return;
        live = null;
        const outcome = yield* runTurn(
          {
            runtime: self.runtime,
            client: now.client,
            sessionID,
            model: self.settings.model,
            directory: input.cwd,
            idleTimeoutMs: self.settings.idleTimeoutMs,
            maxRetries: self.settings.maxRetries,
            approval: self.settings.approval,
            approvals,
            personWaiting: self.ctx.personWaiting,
            signal: abort.signal,
            log: self.log,
          },
          prompt,
        );
        if (outcome === 'timeout' || outcome === 'crashed') {
          self.log.warn('resetting the opencode server', { outcome });
          await self.runtime.reset();
        }
      }
    };

    return {
      push: (text: string) => inbox.push(text),
      end: () => inbox.end(),
      abort: () => {
        inbox.stop();
        // At once, not only when the consumer resumes the turn: nothing may stay pending.
        void approvals.rejectAll();
      },
      answerApproval: (id: string, allow: boolean, reason?: string) => approvals.decide(id, allow, reason),
      events: run(this),
    };
  }

  private async openSession(
    client: Awaited<ReturnType<OpencodeRuntime['ensure']>>['client'],
    continuation: string | undefined,
    directory: string,
  ): Promise<string> {
    if (continuation) {
      // Sessions live in the group's data dir and outlast server restarts: one check per provider.
      if (this.knownSessions.has(continuation)) return continuation;
      const r = await client.session.get({ sessionID: continuation, directory });
      if (r.data && !r.error) {
        this.knownSessions.add(continuation);
        return continuation;
      }
      const status = r.response?.status;
      if (status === 404 || status === 400) throw new OpencodeSessionInvalid(continuation);
      throw new Error(`OpenCode could not load session ${continuation}: HTTP ${status ?? '?'}`);
    }
    const r = await client.session.create({ directory });
    if (!r.data)
      throw new Error(`OpenCode could not create a session: ${JSON.stringify(r.error).slice(0, 300)}`);
    this.log.info('opencode session created', { session: r.data.id });
    this.knownSessions.add(r.data.id);
    return r.data.id;
  }
}

registerProvider('opencode', (ctx) => new OpencodeProvider(ctx));

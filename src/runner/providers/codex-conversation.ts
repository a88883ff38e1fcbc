/**
 * One open query against one `codex app-server` process: initialize → thread/start or
 * thread/resume → one turn/start per batch, follow-ups steered into the running turn.
 * Invariants:
 *  - exactly one `result` or `error` per prompt, in push order (the runner matches them by order);
 *    a turn that absorbed steered prompts answers the earlier ones with '' and the last with its text;
 *  - the active-turn marker is cleared synchronously when turn/completed arrives, so a follow-up
 *    racing completion is queued for a new turn instead of steering into a finished one;
 *  - steering is serialized (one chain) so a refused steer is re-queued before any later prompt;
 *  - a resume falls back to a fresh thread only when the error says the thread is stale/unknown;
 *  - the transport closing ends the in-flight turn at once with the real cause (no timeout wait);
 *  - no turn starts on a process given up on (closed, or its turn timed out: codex still answers
 *    the interrupt and the old turn's completion first): prompts queued there fail retryable, so
 *    the host retries them on a fresh process; a turn that is over never matches a later turn's
 *    notifications, even before that turn knows its own id;
 *  - abort() sends turn/interrupt and ends the events without further results;
 *  - an approval request codex waits on (policy 'ask') is an `approval` event; its reply is held
 *    until answerApproval(), and declined when the turn ends, the query aborts or closes first
 *    (codex-approvals.ts); the turn timer does not run while a person is being asked;
 *  - the app-server outlives the query (warm turns pay no process start, no initialize and no
 *    thread/resume of the thread it already has loaded); it is killed only after an abort, a
 *    transport failure or a timed-out turn, and the provider replaces it when its config changes;
 *  - the runtime context (systemContext: assistant name, timezone, destinations) reaches the
 *    thread: thread/start's developerInstructions, and for a resumed or warm thread whose context
 *    changed, a developer message appended to it (codex keeps a thread's first instructions on
 *    resume; codex-context.ts). The warm path with an unchanged context sends and reads nothing.
 */
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { ApprovalPolicy } from '../../shared/messages.js';
import type { ProviderEvent } from '../../shared/provider.js';
import { CodexApprovals, codexApprovalPolicy } from './codex-approvals.js';
import { contextUpdateItem, type ContextRecord } from './codex-context.js';
import { classify, errorEvent } from './codex-events.js';
import { applyNotification, createTurn, type ActiveTurn, type TurnEnd } from './codex-turn.js';
import { RpcClosedError, type RpcClient } from './codex-rpc.js';
import { EventChannel } from './event-channel.js';

export interface CodexConnection {
  rpc: RpcClient;
  /** Stop the process (idempotent). */
  kill(): void;
  /** Resolves when the process has exited. */
  exited?: Promise<void>;
  /** initialize/initialized done on this process. */
  initialized?: boolean;
  /** The thread this process has loaded (started or resumed). */
  thread?: string;
  /** The runtime context that thread is known to hold (codex-context.ts); unset when unknown. */
  instructions?: string;
  /** Set the moment a query gives the process up (abort, timeout): never reuse it, even before it is killed. */
  retired?: boolean;
  /**
   * Ids of this process's turns that are over, whichever query ran them (the process is reused
   * across queries): their late notifications are no later turn's.
   */
  overTurns?: Set<string>;
}

export interface ConversationDeps {
  connect: () => CodexConnection;
  log: Logger;
  cwd: string;
  model: string;
  systemContext: string;
  approval: ApprovalPolicy;
  /** MCP servers whose tools never need approval (our own tool server). */
  trustedServers: string[];
  /** A turn with no notification from codex for this long is stopped (a hung app-server or model). */
  turnTimeoutMs: number;
  /** True while one of our tools waits for a person: not idleness (ProviderContext). */
  personWaiting?: () => boolean;
  /** Files codex generated during a turn (delivered as `file` events before the result). */
  generatedFiles?: (threadId: string, sinceMs: number) => string[];
  /** Which context each thread last received (absent: none is known, a resumed thread is sent it). */
  contextRecord?: ContextRecord;
  /** Called with each prompt as its result is emitted (for the exchange archive). */
  onAnswered?: (prompt: string, result: string | null, threadId: string) => void;
  now?: () => number;
}

const NO_RECORD: ContextRecord = { has: () => false, remember: () => undefined };

const textInput = (text: string) => [{ type: 'text', text, text_elements: [] }];

export class CodexConversation {
  readonly events = new EventChannel<ProviderEvent>();
  private readonly queue: string[];
  private active: ActiveTurn | null = null;
  private steerChain: Promise<void> = Promise.resolve();
  private steering = 0;
  private ended = false;
  private aborted = false;
  private wake: (() => void) | null = null;
  private conn: CodexConnection | null = null;
  private threadId = '';
  private interrupting: Promise<unknown> | null = null;
  /** CodexConnection.overTurns of the process this conversation runs on. */
  private overTurns = new Set<string>();
  private readonly now: () => number;
  private readonly approvals: CodexApprovals;

  constructor(
    private readonly d: ConversationDeps,
    first: string,
    private readonly continuation?: string,
  ) {
    this.queue = [first];
    this.now = d.now ?? Date.now;
    this.approvals = new CodexApprovals({
      policy: d.approval,
      trustedServers: d.trustedServers,
      cwd: d.cwd,
      emit: (request) => this.events.push({ type: 'approval', request }),
      onHeld: (n) => this.active?.holdTimer?.(n > 0),
    });
  }

  answerApproval(id: string, allow: boolean, reason?: string): void {
    this.approvals.answer(id, allow, reason);
  }

  start(): void {
    this.drive()
      .then(
        () => this.events.close(),
        (err: unknown) => this.events.fail(err),
      )
      .finally(() => this.shutdown());
  }

  push(text: string): void {
    if (this.aborted) return;
    this.steering++;
    this.steerChain = this.steerChain
      .then(() => this.steerOrQueue(text))
      .finally(() => {
        this.steering--;
        this.poke();
      });
  }

  end(): void {
    this.ended = true;
    this.poke();
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    if (this.conn) this.conn.retired = true;
    const t = this.active;
    if (t?.id && this.conn && !this.conn.rpc.isClosed)
      this.interrupting = this.conn.rpc
        .request('turn/interrupt', { threadId: this.threadId, turnId: t.id }, 2_000)
        .catch((err: unknown) => this.d.log.warn('turn/interrupt failed', { err }));
    this.approvals.close('The request was aborted; the tool was not run.');
    t?.finish({ kind: 'aborted' });
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async shutdown(): Promise<void> {
    this.approvals.close('The session ended before anyone approved; the tool was not run.');
    if (this.interrupting) await this.interrupting;
    this.offClose?.();
    if (!this.conn) return;
    if (this.aborted || this.broken || this.conn.rpc.isClosed) {
      this.conn.rpc.close('codex query ended');
      this.conn.kill();
    }
  }

  private offClose: (() => void) | null = null;
  /**
   * Set when the process is in a state not worth reusing (a turn timed out or it failed to
   * initialize): no further turn is started on it either.
   */
  private broken = false;

  private async drive(): Promise<void> {
    const conn = (this.conn = this.d.connect());
    this.overTurns = conn.overTurns ??= new Set();
    const rpc = conn.rpc;
    rpc.onNotification = (m, p) => this.onNotification(m, p);
    rpc.onRequest = this.approvals.handle;
    this.offClose = rpc.onClose((err) => {
      this.closedCause = err.message;
      this.approvals.declineAll('codex stopped; the tool was not run.');
      this.active?.finish({ kind: 'closed', message: err.message });
      this.poke();
    });
    if (!conn.initialized) {
      this.broken = true; // until initialize succeeds
      conn.retired = true;
      await rpc.request('initialize', {
        clientInfo: { name: 'polyclaw', title: 'Polyclaw', version: '0.1.0' },
        capabilities: { experimentalApi: true },
      });
      rpc.notify('initialized');
      conn.initialized = true;
      conn.retired = false;
      this.broken = false;
    }
    const loaded = !!this.continuation && conn.thread === this.continuation;
    // The warm path: the loaded thread already has this context, nothing to send or read.
    const current = loaded && conn.instructions === this.d.systemContext;
    const opened = loaded ? { id: this.continuation!, started: false } : await this.openThread(rpc);
    this.threadId = opened.id;
    conn.thread = this.threadId;
    const synced = current || (await this.syncContext(rpc, opened.started));
    conn.instructions = synced ? this.d.systemContext : undefined;
    this.events.push({ type: 'init', continuation: this.threadId });
    while (!this.aborted) {
      // Each prompt still gets its one answer; the loop ends with end() as on a healthy process.
      const refusal = this.queue.length ? this.unusable(rpc) : null;
      if (refusal) {
        for (const p of this.queue.splice(0)) {
          this.d.log.warn('failing queued prompt: the codex process is not usable', {
            cause: refusal.message,
            chars: p.length,
          });
          this.events.push(refusal);
        }
        continue;
      }
      const prompt = this.queue.shift();
      if (prompt === undefined) {
        if (this.ended && this.steering === 0) return;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      await this.runTurn(rpc, prompt);
    }
  }

  private closedCause: string | null = null;

  /** Why no turn may start on this process (the error its queued prompts get), or null when one may. */
  private unusable(rpc: RpcClient): Extract<ProviderEvent, { type: 'error' }> | null {
    if (rpc.isClosed) {
      const message = this.closedCause ?? 'codex app-server is not running';
      return { type: 'error', message, retryable: true, classification: 'crash' };
    }
    if (!this.broken) return null;
    return {
      type: 'error',
      message: 'not started: an earlier codex turn made no progress and codex is being restarted',
      retryable: true,
      classification: 'timeout',
    };
  }

  /**
   * Bring the thread's runtime context up to date (codex-context.ts): a thread just started got
   * it as developerInstructions; any other one is sent it when its record differs. False when
   * that failed (the next query tries again); the turn still runs.
   */
  private async syncContext(rpc: RpcClient, started: boolean): Promise<boolean> {
    const record = this.d.contextRecord ?? NO_RECORD;
    const context = this.d.systemContext;
    try {
      if (!started && record.has(this.threadId, context)) return true;
      if (!started) {
        await rpc.request('thread/inject_items', {
          threadId: this.threadId,
          items: [contextUpdateItem(context)],
        });
        this.d.log.info('runtime context changed: sent to the codex thread', { thread: this.threadId });
      }
      record.remember(this.threadId, context);
      return true;
    } catch (err) {
      if (err instanceof RpcClosedError) throw err;
      this.d.log.warn('could not bring the runtime context of the codex thread up to date', {
        thread: this.threadId,
        err: errorMessage(err),
      });
      return false;
    }
  }

  private async openThread(rpc: RpcClient): Promise<{ id: string; started: boolean }> {
    const common = {
      cwd: this.d.cwd,
      model: this.d.model,
      approvalPolicy: codexApprovalPolicy(this.d.approval).thread,
      sandbox: 'danger-full-access',
      developerInstructions: this.d.systemContext,
    };
    type ThreadReply = { thread: { id: string } };
    if (this.continuation) {
      try {
        const r = await rpc.request<ThreadReply>('thread/resume', { threadId: this.continuation, ...common });
        return { id: r.thread.id, started: false };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof RpcClosedError || classify(message) !== 'stale-session') throw err;
        this.d.log.warn('stored codex thread is stale; starting a fresh thread', {
          thread: this.continuation,
          message,
        });
      }
    }
    const r = await rpc.request<ThreadReply>('thread/start', common);
    return { id: r.thread.id, started: true };
  }

  private async runTurn(rpc: RpcClient, prompt: string): Promise<void> {
    const turn = createTurn(prompt, (t) => {
      if (this.active === t) this.active = null;
    });
    this.active = turn;
    const startedAt = this.now();
    // An idle timer, not a cap on the turn's length (the host's maxTurnMs is that): it starts
    // again on each notification, and does not run while a person is asked.
    let timer: NodeJS.Timeout | undefined;
    let held = false;
    const arm = () => {
      clearTimeout(timer);
      timer = held ? undefined : setTimeout(expire, this.d.turnTimeoutMs);
    };
    const expire = () => (this.d.personWaiting?.() ? arm() : turn.finish({ kind: 'timeout' }));
    turn.holdTimer = (h) => {
      held = h;
      arm();
    };
    turn.activity = () => {
      if (!held) arm();
    };
    arm();
    this.events.push({ type: 'activity' });
    const over = () => {
      if (turn.id) this.overTurns.add(turn.id);
    };
    rpc
      .request<{ turn: { id: string } }>('turn/start', { threadId: this.threadId, input: textInput(prompt) })
      .then(
        (r) => {
          turn.setId(r.turn.id);
          if (turn.finished) over(); // the reply came after the turn ended (a timeout)
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          turn.finish(
            err instanceof RpcClosedError ? { kind: 'closed', message } : { kind: 'failed', message },
          );
        },
      );
    const end = await turn.done;
    over();
    clearTimeout(timer);
    this.approvals.declineAll('The turn ended before anyone approved; the tool was not run.');
    this.emitEnd(rpc, turn, end, startedAt);
  }

  private emitEnd(rpc: RpcClient, turn: ActiveTurn, end: TurnEnd, startedAt: number): void {
    const n = turn.prompts.length;
    const fail = (ev: Extract<ProviderEvent, { type: 'error' }>) => {
      for (let i = 0; i < n; i++) this.events.push(ev);
    };
    switch (end.kind) {
      case 'aborted':
        return;
      case 'completed': {
        const files = new Set(turn.files);
        for (const f of this.d.generatedFiles?.(this.threadId, startedAt) ?? []) files.add(f);
        for (const path of files) this.events.push({ type: 'file', path });
        turn.prompts.forEach((p, i) => {
          const last = i === n - 1;
          const text = last ? turn.lastText : '';
          this.d.onAnswered?.(p, text, this.threadId);
          this.events.push(last ? { type: 'result', text } : { type: 'result', text, merged: true });
        });
        return;
      }
      case 'failed': {
        const e = turn.error ?? { message: end.message, info: end.info };
        return fail(errorEvent(e.message, e.info));
      }
      case 'interrupted':
        return fail({ type: 'error', message: 'the codex turn was interrupted', retryable: false });
      case 'closed':
        return fail({ type: 'error', message: end.message, retryable: true, classification: 'crash' });
      case 'timeout':
        this.broken = true;
        if (this.conn) this.conn.retired = true;
        if (turn.id && !rpc.isClosed)
          this.interrupting = rpc
            .request('turn/interrupt', { threadId: this.threadId, turnId: turn.id }, 2_000)
            .catch((err: unknown) => this.d.log.warn('turn/interrupt after timeout failed', { err }));
        return fail({
          type: 'error',
          message: `the codex turn made no progress for ${Math.round(this.d.turnTimeoutMs / 1000)} s`,
          retryable: true,
          classification: 'timeout',
        });
    }
  }

  private async steerOrQueue(text: string): Promise<void> {
    const t = this.active;
    if (!t || this.aborted) return void this.queue.push(text);
    const id = await t.idKnown;
    if (!id || t.finished || !this.conn) return void this.queue.push(text);
    try {
      await this.conn.rpc.request('turn/steer', {
        threadId: this.threadId,
        input: textInput(text),
        expectedTurnId: id,
      });
      if (t.finished) this.queue.push(text);
      else t.prompts.push(text);
    } catch (err) {
      this.d.log.info('codex refused to steer; the follow-up waits for the next turn', { err });
      this.queue.push(text);
    }
  }

  private onNotification(method: string, params: unknown): void {
    this.active?.activity?.();
    applyNotification(this.active, method, params, {
      emit: (ev) => this.events.push(ev),
      noteItem: (item, started) => this.approvals.noteItem(item, started),
      overTurns: this.overTurns,
    });
  }
}

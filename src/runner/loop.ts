/**
 * The runner loop, inside the sandbox. It sleeps on a doorbell (inotify on inbound.db) with a
 * slow safety poll, takes pending messages oldest first, runs them through one provider query,
 * pushes follow-ups into the open query, and commits each reply together with its acks. It
 * never decides that a message has finally failed: it acks the attempt, the host decides.
 */
import path from 'node:path';
import type { Logger } from '../shared/log.js';
import { errorMessage } from '../shared/errors.js';
import { ProviderConfigError, type AgentProvider, type AgentQuery } from '../shared/provider.js';
import type { Doorbell } from '../shared/doorbell.js';
import { formatMessages, stripInternal, systemContext } from './formatter.js';
import type { PendingMessage, RunnerQueue, SessionContext } from './session-io.js';
import type { RunnerHint } from '../shared/runner-hint.js';
import { ApprovalDesk, scriptApprover } from './approvals.js';
import { discardOutboxFiles, stageOutboxFile } from './outbox.js';
import { gateTaskScripts, type ScriptRunner } from './task-script.js';
import { sameChat, type AckError } from '../shared/messages.js';
import { answered, chatOf, oneChat } from './turn-chat.js';
import { capContext } from './context-cap.js';
import { answeredInChat, covers, replyTo } from './never-both.js';

export interface LoopDeps {
  queue: RunnerQueue;
  provider: AgentProvider;
  doorbell: Doorbell;
  log: Logger;
  cwd: string;
  now?: () => number;
  safetyPollMs?: number;
  /** How long a tool approval waits for an admin (default APPROVAL_TIMEOUT_MS). */
  approvalTimeoutMs?: number;
  /** Runs task pre-scripts (default: /bin/sh in the agent dir); see task-script.ts. */
  runScript?: ScriptRunner;
}

/**
 * How a thrown provider error is acked: a ProviderConfigError cannot be helped by another try
 * ('config', not retryable); anything else is a crash worth retrying.
 */
export function failureOf(err: unknown): AckError {
  const config = err instanceof ProviderConfigError;
  return { message: errorMessage(err), retryable: !config, classification: config ? 'config' : 'crash' };
}

const isClear = (m: PendingMessage) => m.trigger && m.content.text.trim() === '/clear';
const hasScript = (m: PendingMessage) => m.kind === 'task' && !!m.content.task?.script;
/** Answers are read by the waiting tool, never prompted: they are acked as soon as they are seen. */
const isAnswer = (m: PendingMessage) => m.kind === 'answer';

export class RunnerLoop {
  private stopped = false;
  private current: AgentQuery | null = null;
  private readonly now: () => number;
  /** Waiting for work with nothing running: the only time an early-start hint is taken. */
  private idle = false;
  private hinted: RunnerHint | null = null;

  constructor(private readonly d: LoopDeps) {
    this.now = d.now ?? Date.now;
  }

  stop(): void {
    this.stopped = true;
    this.current?.abort();
    this.d.doorbell.ring();
  }

  /**
   * An early-start hint from the host (runner-hint.ts): taken only while idle, else dropped
   * (the doorbell after the host's commit brings the message the usual way).
   */
  hint(h: RunnerHint): void {
    if (!this.idle || this.stopped) {
      this.d.log.debug('early-start hint dropped: busy', { message: h.message.id });
      return;
    }
    this.idle = false;
    this.hinted = h;
    this.d.doorbell.ring();
  }

  /** The hinted message with the cached context it may run under, or null to go the usual way. */
  private takeHint(h: RunnerHint): { message: PendingMessage; context: SessionContext } | null {
    const context = this.d.queue.cachedContext(h.gen);
    if (!context || this.d.queue.started(h.message.id, h.message.tries)) {
      this.d.log.debug('early-start hint dropped', { message: h.message.id, stale: !context });
      return null;
    }
    return { message: h.message, context };
  }

  async run(): Promise<void> {
    this.d.queue.heartbeat(true);
    while (!this.stopped) {
      const hint = this.hinted;
      this.hinted = null;
      if (hint) {
        const taken = this.takeHint(hint);
        if (taken) await this.batch([taken.message], taken.context);
        // Dropped: the host is still committing it, and reading inbound.db now would wait on
        // its write lock; the bell after the commit brings it.
        else await this.idleWait(this.d.safetyPollMs ?? 30_000);
        continue;
      }
      const { due: all, nextDueAt } = this.d.queue.pending();
      const due = this.settleAnswers(all);
      if (due.some((m) => m.trigger)) {
        await this.batch(due);
        // Always back to the event loop between batches: stdin's end, SIGTERM and the doorbell
        // are heard even if a batch ever made no progress.
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const wait =
        nextDueAt === null
          ? (this.d.safetyPollMs ?? 30_000)
          : Math.min(nextDueAt - this.now(), this.d.safetyPollMs ?? 30_000);
      await this.idleWait(Math.max(wait, 5));
    }
  }

  private async idleWait(ms: number): Promise<void> {
    this.idle = true;
    try {
      await this.d.doorbell.wait(ms);
    } finally {
      this.idle = false;
    }
  }

  private settleAnswers(due: PendingMessage[]): PendingMessage[] {
    const answers = due.filter(isAnswer);
    if (answers.length) this.d.queue.ack(answers, 'completed');
    return answers.length ? due.filter((m) => !isAnswer(m)) : due;
  }

  /** Task pre-scripts run before the agent sees a task; gated-off tasks are already acked. */
  private gate(batch: PendingMessage[]): Promise<PendingMessage[]> {
    const { queue, cwd, log, runScript } = this.d;
    const policy = batch.some(hasScript) ? queue.meta().approval : 'bypass';
    // Only a batch with a script under 'ask' needs one (not every chat message's batch).
    const approve =
      policy === 'ask'
        ? scriptApprover({
            queue,
            log,
            now: this.now,
            timeoutMs: this.d.approvalTimeoutMs,
            doorbell: this.d.doorbell,
            pollMs: this.d.safetyPollMs ?? 30_000,
            stopped: () => this.stopped,
          })
        : undefined;
    return gateTaskScripts(batch, { queue, cwd, log, run: runScript, policy, approve });
  }

  /** `context`: the cached one a hinted batch runs under (it must not wait on inbound.db). */
  private async batch(due: PendingMessage[], context?: SessionContext): Promise<void> {
    const { queue } = this.d;
    const clearAt = due.findIndex(isClear);
    // Nothing before the /clear asks for an answer (notes, accumulated chat): those rows were
    // context of the conversation being cleared, and go with it — waiting for a trigger that
    // is not coming would hold the /clear, and every message after it, for ever.
    if (clearAt >= 0 && !due.slice(0, clearAt).some((m) => m.trigger)) {
      const meta = queue.meta();
      queue.setContinuation(meta.provider, null);
      const m = due[clearAt]!;
      // A person typing /clear hears back; an admin reset (kind 'command') is silent.
      const reply =
        m.kind === 'chat'
          ? [
              {
                kind: 'message' as const,
                inReplyTo: m.id,
                routing: m.routing,
                content: { text: 'Session cleared: the next message starts a fresh conversation.' },
              },
            ]
          : [];
      queue.commit(reply, due.slice(0, clearAt + 1));
      return;
    }
    const gated = await this.gate(oneChat(clearAt > 0 ? due.slice(0, clearAt) : due));
    // Stopped while a pre-script ran: no turn starts that the host's kill would cut short (the
    // host settles the open try as for any runner that stopped mid-try).
    if (this.stopped || !gated.some((m) => m.trigger)) return;
    const { keep: batch, left } = capContext(gated);
    if (left.length) {
      queue.ack(left, 'completed');
      this.d.log.info('older accumulated context left out of the turn', { rows: left.length });
    }
    // Durable before the agent sees the batch: a runner that dies starting it has used the try,
    // so a message that crashes the runner every time ends failed after the retries.
    queue.ack(batch, 'processing');
    await this.runQuery(batch, true, context);
  }

  private async runQuery(
    first: PendingMessage[],
    mayRetryFresh: boolean,
    context?: SessionContext,
  ): Promise<void> {
    const { queue, provider, log } = this.d;
    const { meta, destinations } = context ?? queue.context();
    const continuation = queue.continuation(provider.name) ?? undefined;
    const groups: PendingMessage[][] = [first];
    /** Every group of this query answers the chat of the first (turn-chat.ts). */
    const queryChat = answered(first).routing;
    const inflight = new Set(first.map((m) => m.id));
    /** Per group (by the message it answers): the newest outbound row when its try started. */
    const floors = new Map([[answered(first).id, queue.lastOutboundSeq()]]);
    const floorOf = (last: PendingMessage) => floors.get(last.id) ?? 0;
    /**
     * Groups whose prompt was steered into one turn with the next group's (a `merged` result):
     * a tool's message in that turn replied to one of them, and counts for the turn's answer.
     */
    let carried: PendingMessage[] = [];
    const answeredAlready = (last: PendingMessage, except?: Set<number>) =>
      [last, ...carried].some((m) => answeredInChat(queue, m, floorOf(m), except));
    const ctx = systemContext({
      assistantName: meta.assistantName,
      timezone: meta.timezone,
      destinations: destinations.map((d) => d.name),
    });
    // The tool server reads the running turn from state: its rows reply to the message the front
    // group answers.
    const setTurn = () => {
      const front = groups[0];
      const last = front ? answered(front) : undefined;
      queue.setTurn(last ? { messageId: last.id, routing: last.routing } : null);
    };
    setTurn();
    let q: AgentQuery;
    try {
      q = provider.query({
        prompt: formatMessages(first, meta.timezone, this.now()),
        continuation,
        cwd: this.d.cwd,
        systemContext: ctx,
      });
    } catch (err) {
      // A provider that fails before its query exists (its config, its files) fails the batch
      // like a query that throws: a configuration error at once, anything else as a crash.
      log.error('provider query could not start', { err });
      queue.ack(first, 'failed', failureOf(err));
      return;
    }
    this.current = q;
    let deltas = '';
    /** Files the agent produced in the front group's turn (ProviderEvent 'file'), staged under outbox/. */
    let files: string[] = [];
    /** Why a produced file could not be attached, told with the reply. */
    let unattached: string[] = [];
    /** The front group's attempt failed: its staged copies go (another try makes them again). */
    const dropFiles = () => {
      try {
        discardOutboxFiles(queue.sessionDir, files);
      } catch (err) {
        log.warn('staged files of a failed attempt could not be removed', { files, err });
      }
      files = [];
      unattached = [];
    };
    let sawInit = false;
    const desk = new ApprovalDesk({ queue, log, now: this.now, timeoutMs: this.d.approvalTimeoutMs });
    /** What the front group's early replies (ProviderEvent 'reply') already delivered. */
    let early: { seqs: Set<number>; texts: string[] } | null = null;
    /** The stored session is unknown to the agent: run the same messages again in a fresh one. */
    let retryFresh = false;

    /** The front group's turn ended with `text` as its answer: commit the reply (with its files) and the acks. */
    // A group leaves `groups` only once its rows are written: a write that throws leaves it for
    // the catch below to fail, instead of 'processing' for ever under a live runner.
    const settle = (text: string, merged = false) => {
      const group = groups[0];
      if (!group) return;
      const sent = early;
      early = null;
      deltas = '';
      const last = answered(group);
      let out: Array<ReturnType<typeof replyTo>> = [];
      if (merged && groups.length > 1) {
        // Steered into one turn with the next group: the turn's answer and files go with it.
        carried.push(last);
      } else {
        // Never both: when a tool already answered this chat during the turn, the final text
        // is not sent; nor is a text the turn's early reply already carried.
        const dup = !!text && !!sent?.texts.some((t) => covers(t, text));
        const said = text && !dup && !answeredAlready(last, sent?.seqs) ? text : '';
        carried = [];
        // The turn's files go with its text, or alone when the text is said elsewhere.
        const extra = unattached.join('\n');
        const body = [said, extra].filter(Boolean).join('\n\n');
        out = body || files.length ? [replyTo(last, body, files)] : [];
        files = [];
        unattached = [];
      }
      queue.commit(out, group);
      groups.shift();
      for (const m of group) inflight.delete(m.id);
      setTurn();
      provider.onExchangeComplete?.({
        prompt: '',
        result: text || null,
        continuation: queue.continuation(provider.name) ?? undefined,
        status: 'completed',
      });
      if (groups.length === 0) end();
    };

    // Follow-ups that arrive while the query is open go into it instead of waiting for the next
    // batch. Not a task with a pre-script (the script may outlast the turn, and a row pushed into
    // an ended query fails), nor a /clear and what follows it: those wait for the next batch, as
    // does anything found after the end.
    let pumping = true;
    let ended = false;
    const end = () => {
      ended = true;
      q.end();
    };
    /** The follow-up being taken when a write failed is in `groups` but perhaps not in the query. */
    let taking = false;
    const pump = (async () => {
      while (pumping && !this.stopped) {
        await this.d.doorbell.wait(this.d.safetyPollMs ?? 30_000);
        if (!pumping) break;
        desk.poll();
        const due = this.settleAnswers(queue.pending(inflight).due);
        // Nothing from a /clear on: what follows it belongs to the fresh conversation.
        const clearAt = due.findIndex(isClear);
        // No pre-script is run here (those rows wait), so nothing needs gating. Nor anything
        // from another chat than this query's (turn-chat.ts): that waits for the next batch.
        const more = oneChat((clearAt >= 0 ? due.slice(0, clearAt) : due).filter((m) => !hasScript(m)));
        if (ended) break;
        const chat = chatOf(more);
        if (!chat || !sameChat(chat, queryChat)) continue;
        queue.ack(more, 'processing');
        taking = true;
        for (const m of more) inflight.add(m.id);
        floors.set(answered(more).id, queue.lastOutboundSeq());
        groups.push(more);
        if (groups.length === 1) setTurn();
        q.push(formatMessages(more, meta.timezone, this.now()));
        taking = false;
      }
    })().catch((err: unknown) => {
      // Handled here, at once: a rejection left until the query ends would take the runner down
      // with the turn under way. A follow-up whose 'processing' ack failed was not taken (the
      // ack is one transaction): it waits for the next batch and this turn goes on. One taken
      // but perhaps not pushed would leave the turn waiting for an answer that cannot come:
      // the query is aborted, and its groups end failed, to be tried again.
      pumping = false;
      if (!taking) {
        log.warn('a follow-up could not be taken now; it waits for the next turn', { err });
        return;
      }
      log.error('a follow-up could not be pushed; the query is aborted', { err });
      q.abort();
    });

    try {
      for await (const ev of q.events) {
        queue.heartbeat();
        switch (ev.type) {
          case 'init':
            sawInit = true;
            if (ev.continuation !== continuation) queue.setContinuation(provider.name, ev.continuation);
            break;
          case 'delta':
            deltas += ev.text;
            break;
          case 'progress':
            queue.setState('progress', ev.message);
            break;
          case 'file':
            try {
              files.push(stageOutboxFile(queue.sessionDir, ev.path));
            } catch (err) {
              log.warn('a file the agent produced cannot be attached', { path: ev.path, err });
              unattached.push(`⚠️ ${path.basename(ev.path)} could not be attached: ${errorMessage(err)}`);
            }
            break;
          case 'approval': {
            const { id } = ev.request;
            const front = groups[0];
            const last = front ? answered(front) : undefined;
            if (!q.answerApproval) {
              log.error('the provider asked for an approval it cannot receive', { provider: provider.name });
              break;
            }
            desk.ask(
              ev.request,
              last ? { messageId: last.id, routing: last.routing } : null,
              (allow, reason) => q.answerApproval?.(id, allow, reason),
            );
            break;
          }
          case 'reply': {
            // The final text is known before the result: deliver it now (see ProviderEvent 'reply').
            const group = groups[0];
            const text = stripInternal(ev.text);
            if (!group || !text) break;
            const last = answered(group);
            early ??= { seqs: new Set(), texts: [] };
            if (early.texts.some((t) => covers(t, text)) || answeredAlready(last, early.seqs)) break;
            for (const seq of queue.commit([replyTo(last, text)], [])) early.seqs.add(seq);
            early.texts.push(text);
            break;
          }
          case 'result':
            settle(stripInternal(ev.text ?? deltas), ev.merged === true);
            break;
          case 'error': {
            if (early) {
              // The turn's answer is out (its final message ended): a failure in the agent's
              // end-of-turn work must not run the person's request, and its tools, again.
              log.warn('the agent failed after its answer was delivered; the message counts as answered', {
                error: ev.message,
              });
              if (ev.classification === 'stale-session') queue.setContinuation(provider.name, null);
              settle('');
              break;
            }
            const group = groups[0];
            if (!group) break;
            deltas = '';
            early = null;
            dropFiles();
            if (ev.classification === 'stale-session') queue.setContinuation(provider.name, null);
            queue.ack(group, 'failed', {
              message: ev.message,
              retryable: ev.retryable,
              classification: ev.classification,
            });
            groups.shift();
            for (const m of group) inflight.delete(m.id);
            setTurn();
            if (groups.length === 0) end();
            break;
          }
          default:
            break;
        }
      }
    } catch (err) {
      if (!sawInit && continuation && mayRetryFresh && provider.isSessionInvalid(err)) {
        log.warn('stored continuation is no longer valid; starting a fresh session', {
          provider: provider.name,
        });
        queue.setContinuation(provider.name, null);
        retryFresh = true;
      } else {
        log.error('provider query failed', { err });
        if (early) settle(''); // answered already (see 'error')
        const left = groups.flat();
        if (left.length) queue.ack(left, 'failed', failureOf(err));
        groups.length = 0;
      }
    } finally {
      desk.close();
      pumping = false;
      this.d.doorbell.ring();
      await pump;
      this.current = null;
    }
    // Only once this query is wound down: the fresh one owns `current` (stop() aborts it).
    if (retryFresh && !this.stopped) {
      dropFiles();
      return this.runQuery(groups.flat(), false);
    }
    // A thrown query's or a turn without a result: its staged files go.
    dropFiles();
    const orphaned = groups.flat();
    if (orphaned.length && !this.stopped) {
      queue.ack(orphaned, 'failed', {
        message: 'the agent ended its turn without an answer',
        retryable: true,
        classification: 'crash',
      });
    }
  }
}

/**
 * Settles inbound messages from the runner's acks: completed once every reply of the attempt
 * is delivered, retried with exponential backoff after a retryable failure (up to maxTries),
 * else failed — and the user told, so no message ends silently. A message's open questions
 * expire with every attempt that ends; the channel hears each final state (onSettled).
 * Callers serialize per session (SessionManager's chain): nothing here runs twice at once.
 */
import type { ChannelAdapter } from '../channels/adapter.js';
import { errorMessage, PolyclawError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ExitInfo } from '../sandbox/runtime.js';
import type { Db } from './db/open.js';
import type { Delivery } from './delivery.js';
import { statusIn } from './notices.js';
import { OUTBOUND_BATCH, type AckRow, type InboundRow, type SessionQueue } from './session-queue.js';
import { expireQuestionsOf, recordQuestionRow } from './store/questions.js';
import type { Attempt } from './turn-watch.js';
import { getSession, type Session } from './store/sessions.js';

export interface SettlementDeps {
  db: Db;
  delivery: Delivery;
  channels: Map<string, ChannelAdapter>;
  log: Logger;
  now: () => number;
  maxTries: number;
  retryBaseMs: number;
  /** Wake the session again after `ms` (a retry falls due). */
  retryAt(sessionId: string, ms: number): void;
}

/** How many batches of a session's undelivered rows a failed attempt looks through for its questions. */
const QUESTION_SCAN_BATCHES = 10;

export class Settlement {
  constructor(private readonly d: SettlementDeps) {}

  /**
   * Settle what the acks say. `stopped` says of an open attempt (acked 'processing') whether
   * the sandbox that took it is gone, so the attempt failed: true for all when no sandbox runs,
   * only those in flight at its exit when a new sandbox may have taken messages since.
   */
  async reconcile(
    session: Session,
    q: SessionQueue,
    pending: InboundRow[],
    ackRows: AckRow[],
    stopped: (a: Attempt) => boolean,
    drained: boolean,
  ): Promise<void> {
    if (pending.length === 0) return;
    const acks = new Map(ackRows.map((a) => [`${a.messageId}:${a.tryNo}`, a]));
    for (const m of pending) {
      const a = acks.get(`${m.id}:${m.tries}`);
      if (!a) continue;
      if (a.status === 'completed') {
        // A reply still waiting for a delivery retry: settle when the retry pass drains.
        if (!drained) continue;
        q.markDone(m.id, 'completed');
        this.settled(m, 'completed');
      } else if (a.status === 'failed') {
        await this.attemptFailed(
          session,
          q,
          m,
          a.error?.message ?? 'the agent failed',
          a.error?.retryable ?? false,
        );
      } else if (stopped({ messageId: m.id, tryNo: m.tries })) {
        await this.attemptFailed(session, q, m, 'the sandbox stopped during the turn', true);
      }
    }
  }

  /**
   * The sandbox ended without being asked to and no turn was in flight when it did (the caller
   * reads that at the exit): each due message its runner never took (no ack for its current
   * try) has had an attempt, and it counts. A sandbox that dies before its runner acks anything
   * (bwrap cannot build it, the runner crashes at start) so backs off between tries and finally
   * fails the message and tells the user, instead of restarting at once, for ever.
   */
  async untakenFailed(session: Session, q: SessionQueue, info: ExitInfo): Promise<void> {
    const due = q.pending().filter((m) => m.trigger && m.processAfter <= this.d.now());
    if (due.length === 0) return;
    let acks;
    try {
      acks = q.acksFor(due.map((m) => m.id));
    } catch (err) {
      if (err instanceof PolyclawError && err.code === 'sandbox') return; // the caller fails them
      throw err;
    }
    const taken = new Set(acks.map((a) => `${a.messageId}:${a.tryNo}`));
    // A turn in flight carries the blame (settled as usual); what waited behind it is not charged.
    if (due.some((m) => taken.has(`${m.id}:${m.tries}`))) return;
    const how = info.signal ? `signal ${info.signal}` : `exit code ${info.code}`;
    for (const m of due) {
      await this.attemptFailed(
        session,
        q,
        m,
        `the sandbox stopped before the agent took the message (${how})`,
        true,
      );
    }
  }

  /** Retry the message if it may be retried and has tries left; else fail it and tell the user. */
  async attemptFailed(
    session: Session,
    q: SessionQueue,
    m: InboundRow,
    reason: string,
    retryable: boolean,
  ): Promise<void> {
    this.expireQuestions(session, q, m.id);
    if (retryable && m.tries + 1 < this.d.maxTries) {
      const delay = this.d.retryBaseMs * 2 ** m.tries;
      this.d.log.warn('attempt failed; retrying', {
        session: session.id,
        seq: m.seq,
        tries: m.tries + 1,
        delay,
        reason,
      });
      q.retry(m.id, this.d.now() + delay);
      this.d.retryAt(session.id, delay);
      return;
    }
    this.d.log.error('message failed', { session: session.id, seq: m.seq, tries: m.tries + 1, reason });
    // The notice is kept before the message is marked failed and sent after: a crash in between
    // never fails a message silently, and never tells of a failure while the message runs again.
    if (m.trigger) {
      this.d.delivery.notices.keep(session, `fail:${m.id}`, {
        routing: m.routing,
        text: `⚠️ I could not process your message: ${reason}`,
        replyTo: m.content.platformMessageId ?? undefined,
        hops: m.content.hops ?? 0,
        about: m.id,
      });
    }
    q.markDone(m.id, 'failed');
    await this.d.delivery.notices.flush(session, statusIn(q));
    // After the notice's first try: a channel that shows the message settled (a client that
    // then stops listening) has the reason first.
    this.settled(m, 'failed');
  }

  /**
   * The attempt on `messageId` is over: its questions can no longer be answered, also those
   * still waiting for delivery (behind a row in backoff): recorded expired now, they are never
   * shown, where sent later one would catch the answer meant for the retry's question. The
   * attempt has written all its rows by now (its failure was acked, or its sandbox is gone).
   */
  private expireQuestions(session: Session, q: SessionQueue, messageId: string): void {
    try {
      // Bounded, on the host's one event loop: a runaway sandbox's backlog is not read through.
      let at = getSession(this.d.db, session.id).outCursor;
      for (let batch = 0; batch < QUESTION_SCAN_BATCHES; batch++) {
        const rows = q.outboundSince(at);
        for (const row of rows) {
          const question =
            row.kind === 'question' && row.inReplyTo === messageId ? row.content.question : undefined;
          if (question) recordQuestionRow(this.d.db, session.id, { ...row, question }, this.d.now());
        }
        if (rows.length < OUTBOUND_BATCH) break;
        at = rows.at(-1)!.seq;
      }
    } catch (err) {
      // An unreadable outbound.db (a hostile sandbox's FIFO) delivers nothing either: the
      // failure must still be settled and told.
      this.d.log.warn("could not read the attempt's unsent questions", {
        session: session.id,
        err: errorMessage(err),
      });
    }
    expireQuestionsOf(this.d.db, messageId);
  }

  /**
   * The session goes with its deleted group: its unsettled messages end failed for whoever
   * waits on them (a chat attached to the terminal). Nothing is written: the queue goes too.
   */
  dropped(pending: InboundRow[]): void {
    for (const m of pending) if (m.trigger) this.settled(m, 'failed');
  }

  private settled(m: InboundRow, status: 'completed' | 'failed'): void {
    expireQuestionsOf(this.d.db, m.id);
    const pid = m.content.platformMessageId;
    if (!pid) return;
    const adapter = this.d.channels.get(m.routing.channelType);
    adapter?.onSettled?.({ platformId: m.routing.platformId, threadId: m.routing.threadId }, pid, status);
  }
}

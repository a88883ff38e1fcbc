/**
 * Delivery: outbound rows → channel adapters, in seq order per session, each at most once.
 * The ledger row is written 'sending' before the platform call and 'sent' after it; a row
 * found 'sending' after a crash is re-sent with the same idempotency key (adapters and
 * clients de-duplicate on it). Transient errors back off and retry, blocking later rows of the
 * same session so order holds; a final failure is reported into the session so the agent
 * knows. The host checks that the agent group may post to the target, whatever the sandbox says,
 * and delivers no row in reply to a message that was never queued.
 */
import { prep } from '../shared/sql.js';
import path from 'node:path';
import type { ChannelAdapter, DeliveryTarget, OutgoingFile, OutgoingMessage } from '../channels/adapter.js';
import { DeliveryError } from '../channels/adapter.js';
import { errorMessage, PolyclawError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { checkInside, readInside } from '../shared/confined.js';
import type { Db } from './db/open.js';
import { Notices, statusIn, type Notice } from './notices.js';
import { cardProblem, questionProblem } from '../shared/outbound-rules.js';
import { crashedOut, retryDelay } from './send-retry.js';
import { OUTBOUND_BATCH, type InboundRow, type OutboundRow, type SessionQueue } from './session-queue.js';
import { getDelivery, platformIdForSeq, recordDelivery } from './store/deliveries.js';
import { getGroup } from './store/groups.js';
import { mayPostTo } from './store/messaging.js';
import {
  expireQuestion,
  expireQuestionsOf,
  getQuestion,
  markShown,
  recordQuestionRow,
} from './store/questions.js';
import { setOutCursor, type Session } from './store/sessions.js';

export interface DeliveryDeps {
  db: Db;
  log: Logger;
  channels: Map<string, ChannelAdapter>;
  maxAttempts: number;
  baseDelayMs: number;
  now?: () => number;
  /** Ask to run this session's delivery again at a later time (retry backoff). */
  later(sessionId: string, delayMs: number): void;
  /**
   * Handles kind 'system' rows that carry an action (e.g. the scheduler); they go here instead
   * of a channel, recorded in the ledger like any row so each is handled once.
   */
  onAction?(session: Session, queue: SessionQueue, row: OutboundRow): void;
}

export class Delivery {
  private readonly now: () => number;
  /** Host notices: kept in the ledger before they are sent, retried until told (notices.ts). */
  readonly notices: Notices;
  constructor(private readonly d: DeliveryDeps) {
    this.now = d.now ?? Date.now;
    this.notices = new Notices({ ...d, now: this.now });
  }

  /**
   * Deliver every new outbound row of the session. Callers serialize per session. Resolves
   * false when a row is waiting for a retry (it and every later row are still undelivered).
   */
  async process(session: Session, queue: SessionQueue): Promise<boolean> {
    // Notices first: they do not wait behind a row in backoff, nor it behind them.
    await this.notices.flush(session, statusIn(queue));
    const cursor =
      (
        prep(this.d.db, 'SELECT out_cursor FROM sessions WHERE id = ?').get(session.id) as
          { out_cursor: number } | undefined
      )?.out_cursor ?? 0;
    for (let at = cursor; ;) {
      const rows = queue.outboundSince(at);
      for (const row of rows) {
        const done = await this.one(session, queue, row);
        if (!done) return false;
        setOutCursor(this.d.db, session.id, row.seq);
        at = row.seq;
      }
      if (rows.length < OUTBOUND_BATCH) return true;
      // A backlog of rows handled without I/O (task actions, skips) must not hold the host's
      // event loop: other sessions, channels and the admin socket run between batches.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Returns false when the row is waiting for a retry (later rows must wait too). */
  private async one(session: Session, queue: SessionQueue, row: OutboundRow): Promise<boolean> {
    const { db, log } = this.d;
    const prev = getDelivery(db, session.id, row.id);
    if (prev && (prev.status === 'sent' || prev.status === 'failed' || prev.status === 'skipped'))
      return true;
    if (prev?.status === 'retry' && prev.nextAttemptAt && prev.nextAttemptAt > this.now()) {
      this.d.later(session.id, prev.nextAttemptAt - this.now());
      return false;
    }
    const base = { sessionId: session.id, outId: row.id, seq: row.seq };
    if (row.invalid) {
      log.warn('skipping malformed outbound row', { session: session.id, seq: row.seq, reason: row.invalid });
      recordDelivery(db, { ...base, status: 'skipped', error: row.invalid });
      return true;
    }
    // A message the runner was told of early whose commit then failed was never queued (see
    // runner-hint.ts): whatever its stopped runner wrote in reply to it is never delivered.
    const origin = row.inReplyTo ? queue.get(row.inReplyTo) : null;
    if (row.inReplyTo && !origin) {
      log.warn('skipping a row in reply to a message that was never queued', {
        session: session.id,
        seq: row.seq,
      });
      recordDelivery(db, {
        ...base,
        status: 'skipped',
        error: 'in reply to a message that was never queued',
      });
      return true;
    }
    if (row.kind === 'system' && row.content.action) {
      if (this.d.onAction) this.d.onAction(session, queue, row);
      else log.warn('no handler for system action; skipped', { session: session.id, seq: row.seq });
      recordDelivery(db, { ...base, status: this.d.onAction ? 'sent' : 'skipped', attempts: 1 });
      return true;
    }
    // The agent is told before the failure is recorded: a crash or a failing write between the
    // two tells again on the next pass (the notice's key finds the first), never not at all.
    const fail = (reason: string, attempts = prev?.attempts ?? 0) => {
      log.warn('delivery failed', { session: session.id, seq: row.seq, reason });
      const key = `delivery-failed:${row.id}`;
      if (!queue.hasHostNotice(key)) {
        if (row.kind === 'question' && row.content.question) this.unshown(queue, row, reason);
        queue.enqueue({
          kind: 'system',
          trigger: false,
          routing: row.routing,
          content: {
            text: `Delivery of your message seq ${row.seq} to ${row.routing.channelType}:${row.routing.platformId} failed: ${reason}`,
            attachments: [],
            hostKey: key,
          },
        });
      }
      recordDelivery(db, { ...base, status: 'failed', attempts, error: reason });
      return true;
    };
    // The sandbox wrote this row: a card or question the tools would have refused is not sent,
    // and the agent (and a tool waiting on the question) is told why.
    const bad =
      row.kind === 'card' && row.content.card !== undefined
        ? cardProblem(row.content.card)
        : row.kind === 'question' && row.content.question
          ? questionProblem(row.content.question)
          : null;
    if (bad) return fail(bad);
    if (row.kind === 'question' && row.content.question && !this.askable(session, row, origin)) {
      log.info('a question of an attempt that is over is not sent', { session: session.id, seq: row.seq });
      recordDelivery(db, { ...base, status: 'skipped', error: 'the attempt that asked it is over' });
      return true;
    }
    if (!mayPostTo(db, session.agentGroupId, row.routing)) {
      return fail('this agent group is not allowed to post to that chat');
    }
    const adapter = this.d.channels.get(row.routing.channelType);
    if (!adapter) return fail(`channel "${row.routing.channelType}" is not running`);
    // Found 'sending' after the host died during it a few times (crashedOut, send-retry.ts).
    if (prev && crashedOut(prev, this.d))
      return fail(`gave up after ${prev.attempts} attempts: the host stopped during each`);
    const target: DeliveryTarget = { platformId: row.routing.platformId, threadId: row.routing.threadId };
    const attempts = (prev?.attempts ?? 0) + 1;
    recordDelivery(db, { ...base, status: 'sending', attempts });
    try {
      const platformMessageId = await this.send(adapter, target, session, queue, row, origin);
      if (row.kind === 'question' && row.content.question) markShown(db, row.content.question.questionId);
      recordDelivery(db, { ...base, status: 'sent', attempts, platformMessageId });
      return true;
    } catch (err) {
      const delay = retryDelay(err, attempts, this.d);
      if (delay !== null) {
        recordDelivery(db, {
          ...base,
          status: 'retry',
          attempts,
          nextAttemptAt: this.now() + delay,
          error: errorMessage(err),
        });
        log.warn('delivery will be retried', { session: session.id, seq: row.seq, attempts, delay, err });
        this.d.later(session.id, delay);
        return false;
      }
      return fail(errorMessage(err), attempts);
    }
  }

  /**
   * Record the question a row asks, and say whether anyone still waits for its answer. One whose
   * attempt is over (its message settled, or the attempt failed first: recorded expired then,
   * see Settlement) is never shown: a reply to it would miss the question a retry asks.
   */
  private askable(session: Session, row: OutboundRow, origin: InboundRow | null): boolean {
    const question = row.content.question!;
    recordQuestionRow(this.d.db, session.id, { ...row, question }, this.now());
    if (origin && origin.status !== 'pending') expireQuestionsOf(this.d.db, origin.id);
    return getQuestion(this.d.db, question.questionId, this.now()) !== null;
  }

  /**
   * A question that could not be shown catches no reply, and whoever waits for its answer (the
   * tool, an approval) hears why at once instead of at its deadline (up to a day).
   */
  private unshown(queue: SessionQueue, row: OutboundRow, reason: string): void {
    const questionId = row.content.question!.questionId;
    expireQuestion(this.d.db, questionId);
    queue.enqueue({
      kind: 'answer',
      trigger: false,
      routing: row.routing,
      content: { text: '', attachments: [], answer: { questionId, text: '', undelivered: reason } },
    });
  }

  private async send(
    adapter: ChannelAdapter,
    target: DeliveryTarget,
    session: Session,
    queue: SessionQueue,
    row: OutboundRow,
    origin: InboundRow | null,
  ): Promise<string> {
    const key = `${session.id}:${row.id}`;
    const msg: OutgoingMessage = {
      text: row.content.text,
      files: await this.files(queue, row),
      idempotencyKey: key,
      seq: row.seq,
      replyTo: origin?.content.platformMessageId ?? undefined,
      fromGroup: getGroup(this.d.db, session.agentGroupId).name,
      hops: origin?.content.hops ?? 0,
    };
    const c = row.content;
    switch (row.kind) {
      case 'edit': {
        const pid = c.targetSeq !== undefined ? this.platformMessageFor(session, queue, c.targetSeq) : null;
        if (pid && adapter.edit) {
          await adapter.edit(target, pid, c.text, key);
          return pid;
        }
        return adapter.deliver(target, msg);
      }
      case 'reaction': {
        const pid = c.targetSeq !== undefined ? this.platformMessageFor(session, queue, c.targetSeq) : null;
        if (!adapter.react || !pid || !c.emoji) {
          this.d.log.info('reaction dropped: channel has no reactions or target unknown', {
            channel: adapter.channelType,
            seq: row.seq,
          });
          return '';
        }
        await adapter.react(target, pid, c.emoji);
        return pid;
      }
      case 'card':
        return adapter.sendCard && c.card !== undefined
          ? adapter.sendCard(target, c.card, c.text)
          : adapter.deliver(target, msg);
      case 'question': {
        if (!c.question) throw new DeliveryError('question row without a question', false);
        return adapter.sendQuestion
          ? adapter.sendQuestion(target, c.question, c.text)
          : adapter.deliver(target, msg);
      }
      default:
        return adapter.deliver(target, msg);
    }
  }

  /** Platform id of a message by seq: odd seqs are ours (ledger), even ones came in (inbound content). */
  private platformMessageFor(session: Session, queue: SessionQueue, seq: number): string | null {
    if (seq % 2 === 1) return platformIdForSeq(this.d.db, session.id, seq);
    return queue.bySeq(seq)?.content.platformMessageId ?? null;
  }

  /**
   * Files must be regular files inside outbox/ (no symlink anywhere on the way, at most 25 MB);
   * anything else refuses the row. Each file's read() checks again (see OutgoingFile).
   */
  private files(queue: SessionQueue, row: OutboundRow): Promise<OutgoingFile[]> {
    return Promise.all(row.content.files.map((f) => outboxFile(queue.dir, f)));
  }

  /**
   * Host-generated notice (e.g. "your message failed"), sent once per key and never lost (see
   * notices.ts). It speaks for the session's group with the relays behind the message it is about
   * (`hops`): in an agent chat it then goes back to the group that wrote that message, under the
   * loop guard — not into the failing group's own session as a new message from its peer.
   */
  async notice(
    session: Session,
    queue: Pick<SessionQueue, 'get'>,
    key: string,
    notice: Notice,
  ): Promise<void> {
    this.notices.keep(session, key, notice);
    // The queue tells which held notices are due: one about a message running again is not.
    await this.notices.flush(session, statusIn(queue));
  }
}

/**
 * A file an outbound row names (`rel`, relative to the session dir) once it is checked to be a
 * regular file inside outbox/; its read() checks again. Refusals are DeliveryErrors.
 */
export async function outboxFile(sessionDir: string, rel: string): Promise<OutgoingFile> {
  await refused(() => checkInside(sessionDir, 'outbox', rel));
  return {
    name: path.basename(rel),
    path: path.resolve(sessionDir, rel),
    read: () => refused(() => readInside(sessionDir, 'outbox', rel)),
  };
}

/** A refused outbox file is a permanent failure of its row: a retry cannot make it acceptable. */
async function refused<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof PolyclawError) throw new DeliveryError(`file ${err.message}`, false);
    throw err;
  }
}

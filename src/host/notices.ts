/**
 * Host notices ("⚠️ I could not process your message: …", refusals), each told to the user once
 * and never lost. A notice is first kept in the delivery ledger with what it says (status
 * 'retry', due now) and only then sent: a send that fails for a moment is tried again with
 * backoff on the session's next delivery pass, and one cut off by a crash ('sending' with no send
 * of this process behind it) is sent again under the same idempotency key, which channels
 * de-duplicate on.
 *
 * A notice about a message waits while that message is still pending (a crash came between
 * keeping the notice and failing the message, so the message runs again) and is dropped if the
 * message then completes: the user is never told of a failure that did not happen. A notice
 * speaks for the session's group, so it obeys the same posting rule as the agent's own rows.
 */
import { z } from 'zod';
import type { ChannelAdapter } from '../channels/adapter.js';
import { DeliveryError } from '../channels/adapter.js';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { RoutingSchema } from '../shared/messages.js';
import type { Db } from './db/open.js';
import { crashedOut, retryDelay } from './send-retry.js';
import { getDelivery, openNotices, recordDelivery, type DeliveryRow } from './store/deliveries.js';
import { safeJson } from '../shared/safe-json.js';
import { getGroup } from './store/groups.js';
import { mayPostTo } from './store/messaging.js';
import type { Session } from './store/sessions.js';

const NoticePayload = z.object({
  routing: RoutingSchema,
  text: z.string(),
  replyTo: z.string().optional(),
  hops: z.number().int().min(0),
  /** The inbound message this notice reports on (its failure). */
  about: z.string().optional(),
});
export type Notice = z.infer<typeof NoticePayload>;

/** What a held notice needs to know of the message it is about. */
export type MessageStatus = (id: string) => 'pending' | 'completed' | 'failed' | null;

/** A message's status as the session's queue has it (null: not in it, e.g. after a reset). */
export const statusIn =
  (queue: { get(id: string): { status: 'pending' | 'completed' | 'failed' } | null }): MessageStatus =>
  (id) =>
    queue.get(id)?.status ?? null;

export interface NoticesDeps {
  db: Db;
  log: Logger;
  channels: Map<string, ChannelAdapter>;
  maxAttempts: number;
  baseDelayMs: number;
  now: () => number;
  /** Ask for this session's delivery pass again after a delay (a notice's retry). */
  later(sessionId: string, delayMs: number): void;
}

const isOpen = (r: DeliveryRow) => r.notice !== null && (r.status === 'sending' || r.status === 'retry');

export class Notices {
  /** Sends of this process under way, by `${session}:${key}`: a concurrent pass leaves them be. */
  private readonly inFlight = new Set<string>();

  constructor(private readonly d: NoticesDeps) {}

  /**
   * Keep a notice to be sent (synchronous: callers rely on it being stored before their next
   * step). A notice to a chat the group may not post to is refused here (logged), never stored.
   */
  keep(session: Session, key: string, notice: Notice): void {
    const prev = getDelivery(this.d.db, session.id, key);
    // Sent, given up on, dropped or being sent: nothing to add. A kept one waiting for its turn
    // (its message failed again after a crash) takes the newer wording and keeps its backoff.
    // A row without a payload left open by a host before notices were kept cannot be sent: this
    // one takes its place.
    if (prev && prev.status !== 'retry' && !(prev.notice === null && prev.status === 'sending')) return;
    if (!mayPostTo(this.d.db, session.agentGroupId, notice.routing)) {
      this.d.log.error('notice not sent: this agent group may not post to that chat', {
        session: session.id,
        channel: notice.routing.channelType,
        text: notice.text,
      });
      return;
    }
    recordDelivery(
      this.d.db,
      {
        sessionId: session.id,
        outId: key,
        seq: null,
        status: 'retry',
        attempts: prev?.attempts ?? 0,
        nextAttemptAt: Math.max(this.d.now(), prev?.nextAttemptAt ?? 0),
        notice: JSON.stringify(notice),
      },
      this.d.now(),
    );
  }

  /** Send every due notice of the session; one that must wait asks for a later pass. */
  async flush(session: Session, status: MessageStatus): Promise<void> {
    for (const row of openNotices(this.d.db, session.id)) {
      const flight = `${session.id}:${row.outId}`;
      if (this.inFlight.has(flight)) continue;
      const wait = this.waitFor(row);
      if (wait > 0) {
        this.d.later(session.id, wait);
        continue;
      }
      this.inFlight.add(flight);
      try {
        // Read again: another pass may have sent it (or put it off) while this one awaited.
        const now = getDelivery(this.d.db, session.id, row.outId);
        if (now && isOpen(now) && this.waitFor(now) <= 0) await this.sendOne(session, now, status);
      } finally {
        this.inFlight.delete(flight);
      }
    }
  }

  /** How long a kept notice still waits for its next try (≤ 0: due). */
  private waitFor(row: DeliveryRow): number {
    return row.status === 'retry' && row.nextAttemptAt !== null ? row.nextAttemptAt - this.d.now() : 0;
  }

  private async sendOne(session: Session, row: DeliveryRow, status: MessageStatus): Promise<void> {
    const { db, log } = this.d;
    const set = (fields: Partial<DeliveryRow> & Pick<DeliveryRow, 'status'>) =>
      recordDelivery(
        db,
        { sessionId: session.id, outId: row.outId, seq: null, attempts: row.attempts, ...fields },
        this.d.now(),
      );
    const parsed = NoticePayload.safeParse(safeJson(row.notice ?? ''));
    if (!parsed.success) {
      log.error('dropping a notice whose stored form is unreadable', { session: session.id, key: row.outId });
      return set({ status: 'skipped', error: 'unreadable notice' });
    }
    const n = parsed.data;
    if (n.about) {
      const s = status(n.about);
      if (s === 'pending') return; // runs again; its next failure (if any) makes this due
      if (s === 'completed') return set({ status: 'skipped', error: 'the message completed after all' });
    }
    if (!mayPostTo(db, session.agentGroupId, n.routing)) {
      log.error('notice not sent: this agent group may no longer post to that chat', { session: session.id });
      return set({ status: 'skipped', error: 'may not post to that chat' });
    }
    if (crashedOut(row, this.d)) {
      log.error('could not deliver a notice; the host stopped during each attempt', {
        session: session.id,
        key: row.outId,
        text: n.text,
      });
      return set({
        status: 'failed',
        error: `gave up after ${row.attempts} attempts: the host stopped during each`,
      });
    }
    const attempts = row.attempts + 1;
    set({ status: 'sending', attempts });
    try {
      const adapter = this.d.channels.get(n.routing.channelType);
      if (!adapter) throw new DeliveryError(`channel "${n.routing.channelType}" is not running`, true);
      const pid = await adapter.deliver(
        { platformId: n.routing.platformId, threadId: n.routing.threadId },
        {
          text: n.text,
          files: [],
          idempotencyKey: `${session.id}:${row.outId}`,
          seq: 0,
          replyTo: n.replyTo,
          kind: 'notice',
          fromGroup: getGroup(db, session.agentGroupId).name,
          hops: n.hops,
        },
      );
      set({ status: 'sent', attempts, platformMessageId: pid });
    } catch (err) {
      const delay = retryDelay(err, attempts, this.d);
      if (delay !== null) {
        set({ status: 'retry', attempts, nextAttemptAt: this.d.now() + delay, error: errorMessage(err) });
        log.warn('notice will be retried', { session: session.id, key: row.outId, attempts, delay, err });
        this.d.later(session.id, delay);
        return;
      }
      set({ status: 'failed', attempts, error: errorMessage(err) });
      log.error('could not deliver a notice; giving up', {
        session: session.id,
        key: row.outId,
        text: n.text,
        err,
      });
    }
  }
}

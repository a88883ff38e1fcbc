/**
 * Router: adapter event → messaging group → each wiring → engage check → session → inbound
 * row → wake. A chat we have never seen is created only when the event addresses us (mention
 * or DM). Each wiring gets its own routing, so one event can fan out to several groups.
 * Nothing is woken before its row is committed.
 */
import path from 'node:path';
import type { AcceptedMessage, InboundEvent } from '../channels/adapter.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../shared/log.js';
import type { Routing } from '../shared/messages.js';
import { storedNames } from '../shared/safe-files.js';
import { nativeSlashCommand, slashCommandRefusal } from '../shared/slash-commands.js';
import type { Db } from './db/open.js';
import { engages, threadKey } from './engage.js';
import { getGroup } from './store/groups.js';
import {
  getMessagingGroup,
  ensureMessagingGroup,
  findMessagingGroup,
  isSticky,
  markSticky,
  wiringsForMessagingGroup,
  type Wiring,
} from './store/messaging.js';
import {
  getQuestion,
  answeredBy,
  markAnswered,
  matchOption,
  openQuestionsFor,
  type OpenQuestion,
} from './store/questions.js';
import { existingSession, getSession, resolveSession, touchSession, type Session } from './store/sessions.js';
import { ensureUser, isAdmin, isMember } from './store/users.js';
import type { SessionQueue } from './session-queue.js';

export interface RouterDeps {
  db: Db;
  log: Logger;
  /** The session's queue (creates the session directory on first use). */
  queueFor(session: Session): SessionQueue;
  /** Doorbell: new triggering work for this session. */
  wake(sessionId: string): void;
  /**
   * Reply to the sender on the host (a refused command); resolves once handed to the channel.
   * `hops`: the relays behind the refused message, so an agent chat's loop guard counts on.
   */
  tell?(
    session: Session,
    key: string,
    routing: Routing,
    text: string,
    replyTo?: string,
    hops?: number,
  ): Promise<void>;
}

/** A message received and refused, the chat told why: nothing was queued. */
const refusal = (group: string, sessionId: string): AcceptedMessage => ({
  group,
  sessionId,
  messageId: '',
  seq: 0,
  engaged: false,
  refused: true,
});

/** A message that answered an open question: nothing else was queued. */
const answered = (sessionId: string, questionId: string): AcceptedMessage => ({
  group: '',
  sessionId,
  messageId: questionId,
  seq: 0,
  engaged: false,
  answered: true,
});

/**
 * A refusal's notice key: once per message of a chat (platform ids are unique within a chat
 * only, and a session can span chats); a message without an id is told each time.
 */
const refusalKey = (chat: Routing, platformMessageId: string | undefined): string =>
  platformMessageId
    ? `refused:${JSON.stringify([chat.channelType, chat.platformId, chat.threadId, platformMessageId])}`
    : `refused:${randomUUID()}`;

export class Router {
  constructor(private readonly deps: RouterDeps) {}

  /** A button press (or a matching reply) answering an open question: stored for the waiting tool. */
  async answer(questionId: string, option: string, sender: InboundEvent['sender']): Promise<boolean> {
    const q = getQuestion(this.deps.db, questionId);
    if (!q || !q.options.includes(option)) return false;
    if (!this.mayAnswer(q, sender)) return false;
    return this.storeAnswer(q.questionId, q.sessionId, option, sender, null);
  }

  /**
   * Only an admin of the group may answer an approval. Anyone else the group listens to in that
   * chat (its wirings' sender scope) may answer a question; in a chat it is not wired to (a
   * destination), anyone there may.
   */
  private mayAnswer(q: OpenQuestion, sender: InboundEvent['sender']): boolean {
    if (sender.isAdmin === true) return true;
    const { db } = this.deps;
    const groupId = getSession(db, q.sessionId).agentGroupId;
    const user = () => ensureUser(db, q.channelType, sender.id, sender.name).id;
    if (q.adminOnly) return isAdmin(db, user(), groupId);
    const mg = findMessagingGroup(db, q.channelType, q.platformId);
    const wirings = mg ? wiringsForMessagingGroup(db, mg.id).filter((w) => w.agentGroupId === groupId) : [];
    if (wirings.length === 0 || wirings.some((w) => w.senderScope === 'all')) return true;
    const id = user();
    return wirings.some((w) => this.inScope(w, sender, id, mg!.id));
  }

  private storeAnswer(
    questionId: string,
    sessionId: string,
    option: string,
    sender: InboundEvent['sender'],
    platformMessageId: string | null,
  ): boolean {
    const { db } = this.deps;
    const session = getSession(db, sessionId);
    return db.transaction(() => {
      if (!markAnswered(db, questionId, option, platformMessageId)) return false;
      const queue = this.deps.queueFor(session);
      const mg = session.messagingGroupId ? getMessagingGroup(db, session.messagingGroupId) : null;
      queue.enqueue({
        kind: 'answer',
        trigger: false,
        routing: {
          channelType: mg?.channelType ?? 'internal',
          platformId: mg?.platformId ?? 'answer',
          threadId: session.threadId,
        },
        content: {
          text: option,
          sender: { id: sender.id, name: sender.name },
          attachments: [],
          answer: { questionId, text: option },
        },
      });
      return true;
    })();
  }

  async route(event: InboundEvent): Promise<AcceptedMessage[]> {
    const { db, log } = this.deps;
    // A reply naming an option of an open question in this chat answers it and goes no further:
    // the oldest question it fits that this sender may answer (several groups can share a chat).
    const chat = { channelType: event.channelType, platformId: event.platformId, threadId: event.threadId };
    const prior = event.platformMessageId ? answeredBy(db, chat, event.platformMessageId) : null;
    if (prior) {
      log.info('a reply delivered again answered its question already', { question: prior.questionId });
      return [answered(prior.sessionId, prior.questionId)];
    }
    const fitting = openQuestionsFor(db, chat).flatMap((q) => {
      const option = matchOption(q.options, event.text);
      return option === null ? [] : [{ q, option }];
    });
    // A message delivered again answers nothing: a question asked since its first delivery
    // was never seen by its sender. It goes on below to be found queued already.
    const redelivered =
      fitting.length > 0 && !!event.platformMessageId && this.queuedAlready(chat, event.platformMessageId);
    if (fitting.length && !redelivered) {
      const mine = fitting.find((f) => this.mayAnswer(f.q, event.sender));
      // Out of a question's scope, a reply is an ordinary message (routed by scope below); only
      // an approval's refusal is told.
      if (!mine && fitting.some((f) => f.q.adminOnly)) {
        log.info('refused a non-admin answer to an approval', { sender: event.sender.id });
        const session = getSession(db, fitting[0]!.q.sessionId);
        await this.deps.tell?.(
          session,
          refusalKey(chat, event.platformMessageId),
          chat,
          'Only an admin of this group can answer an approval request.',
          event.platformMessageId,
          event.hops,
        );
        return [refusal(getGroup(db, session.agentGroupId).name, session.id)];
      }
      const stored =
        mine &&
        this.storeAnswer(
          mine.q.questionId,
          mine.q.sessionId,
          mine.option,
          event.sender,
          event.platformMessageId ?? null,
        );
      if (stored) return [answered(mine.q.sessionId, mine.q.questionId)];
    }
    let mg = findMessagingGroup(db, event.channelType, event.platformId);
    if (!mg) {
      if (!event.isMention && !event.isDirect) {
        log.debug('dropped event from unknown chat', {
          channelType: event.channelType,
          platformId: event.platformId,
        });
        return [];
      }
      mg = ensureMessagingGroup(db, event.channelType, event.platformId, { isDirect: event.isDirect });
    }
    const wirings = wiringsForMessagingGroup(db, mg.id);
    if (wirings.length === 0) return [];
    const user = ensureUser(db, event.channelType, event.sender.id, event.sender.name);
    const accepted: AcceptedMessage[] = [];
    const toWake = new Set<string>();
    // What was queued is woken even when a later wiring throws: the platform's retry finds it
    // queued already (`again`) and would otherwise never wake its session.
    try {
      for (const w of wirings) {
        const a = await this.routeToWiring(w, event, chat, mg.id, user.id);
        if (!a) continue;
        accepted.push(a);
        if (a.engaged) toWake.add(a.sessionId);
      }
    } finally {
      for (const s of toWake) this.deps.wake(s);
    }
    for (const a of accepted) touchSession(db, a.sessionId);
    return accepted;
  }

  /**
   * One wiring's part of an event: queued (or found queued already), refused, or nothing
   * (out of scope, or not engaged and dropped). An engaged result is woken by the caller.
   */
  private async routeToWiring(
    w: Wiring,
    event: InboundEvent,
    chat: Routing,
    mgId: string,
    userId: string,
  ): Promise<AcceptedMessage | null> {
    const { db, log } = this.deps;
    const tkey = threadKey(event);
    if (!this.inScope(w, event.sender, userId, mgId)) return null;
    const engaged = engages(
      w,
      event,
      () => isSticky(db, w.id, tkey),
      (pattern) => log.warn('a wiring pattern ran out of time: no match', { wiring: w.id, pattern }),
    );
    if (!engaged && w.ignoredPolicy === 'drop') return null;
    if (engaged && w.engageMode === 'mention-sticky' && event.isMention) markSticky(db, w.id, tkey);
    const group = getGroup(db, w.agentGroupId);
    const { session } = resolveSession(db, group.id, w.sessionMode, mgId, event.threadId);
    const senderIsAdmin = event.sender.isAdmin === true || isAdmin(db, userId, group.id);
    // Command gate: native agent slash commands act on the session itself, so admins only.
    const command = engaged && !senderIsAdmin ? nativeSlashCommand(event.text) : null;
    if (command) {
      log.info('refused a native slash command', { group: group.name, command, sender: event.sender.id });
      const key = refusalKey(chat, event.platformMessageId);
      await this.deps.tell?.(
        session,
        key,
        chat,
        slashCommandRefusal(command),
        event.platformMessageId,
        event.hops,
      );
      return refusal(group.name, session.id);
    }
    const queue = this.deps.queueFor(session);
    const again = event.platformMessageId ? queue.byPlatformMessage(chat, event.platformMessageId) : null;
    if (again) {
      log.info('an event delivered again is not queued twice', { session: session.id, seq: again.seq });
      return { group: group.name, sessionId: session.id, messageId: again.id, seq: again.seq, engaged };
    }
    const folder = randomUUID();
    const names = storedNames(event.attachments.map((a) => a.name));
    const attachments = event.attachments.map((a, i) => {
      const abs = queue.saveAttachment(folder, names[i]!, a.data);
      return {
        name: a.name,
        path: path.relative(queue.dir, abs),
        mimeType: a.mimeType,
        size: a.data.length,
      };
    });
    const { id, seq } = queue.enqueue({
      kind: 'chat',
      trigger: engaged,
      routing: chat,
      content: {
        text: event.text,
        sender: {
          id: event.sender.id,
          name: event.sender.name,
          isAdmin: senderIsAdmin,
        },
        attachments,
        platformMessageId: event.platformMessageId,
        hops: event.hops,
      },
    });
    return { group: group.name, sessionId: session.id, messageId: id, seq, engaged };
  }

  /** Whether a session wired to this chat holds this platform message already. */
  private queuedAlready(chat: Routing, platformMessageId: string): boolean {
    const { db } = this.deps;
    const mg = findMessagingGroup(db, chat.channelType, chat.platformId);
    if (!mg) return false;
    return wiringsForMessagingGroup(db, mg.id).some((w) => {
      const s = existingSession(db, w.agentGroupId, w.sessionMode, mg.id, chat.threadId);
      return !!s && !!this.deps.queueFor(s).byPlatformMessage(chat, platformMessageId);
    });
  }

  private inScope(w: Wiring, sender: InboundEvent['sender'], userId: string, mgId: string): boolean {
    if (w.senderScope === 'all' || sender.isAdmin) return true;
    if (w.senderScope === 'admins') return isAdmin(this.deps.db, userId, w.agentGroupId);
    return isMember(this.deps.db, userId, mgId, w.agentGroupId);
  }
}

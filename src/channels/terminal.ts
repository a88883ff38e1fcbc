/**
 * Terminal channel: `polyclaw chat` talks to the host over the admin socket. The platformId is
 * the agent group's chat name ("main"). Replies for a client that is not connected go to the
 * durable mailbox and are handed over, oldest first, on its next connect; a re-send after a
 * crash carries the same idempotency key, which the mailbox and the client both de-duplicate.
 */
import { createHash, randomUUID } from 'node:crypto';
import type {
  ChannelAdapter,
  ChannelCallbacks,
  ChannelDeps,
  DeliveryTarget,
  OutgoingMessage,
  AcceptedMessage,
} from './adapter.js';
import { registerChannel } from './registry.js';

export interface TerminalSink {
  send(event: Record<string, unknown>): void;
}

export interface TerminalReply {
  type: 'message';
  platformId: string;
  id: string;
  key: string;
  seq: number;
  text: string;
  files: string[];
  replyTo: string | null;
  kind: string;
}

export class TerminalChannel implements ChannelAdapter {
  readonly channelType = 'terminal';
  private callbacks: ChannelCallbacks | null = null;
  private clients = new Map<string, Set<TerminalSink>>();

  constructor(private readonly deps: ChannelDeps) {}

  async setup(callbacks: ChannelCallbacks): Promise<void> {
    this.callbacks = callbacks;
  }

  async teardown(): Promise<void> {
    this.clients.clear();
    this.callbacks = null;
  }

  /** A client starts listening on a chat: it first receives what was kept for it. */
  attach(platformId: string, sink: TerminalSink): () => void {
    let set = this.clients.get(platformId);
    if (!set) this.clients.set(platformId, (set = new Set()));
    set.add(sink);
    for (const item of this.deps.mailbox.list(this.channelType, platformId)) {
      sink.send({ event: 'message', ...(item.payload as object), backlog: true });
      this.deps.mailbox.remove(item.id);
    }
    return () => {
      set.delete(sink);
      if (set.size === 0) this.clients.delete(platformId);
    };
  }

  /** A line typed by the person at the terminal. */
  async receive(
    platformId: string,
    sender: { id: string; name?: string },
    text: string,
    platformMessageId: string = randomUUID(),
  ): Promise<{ platformMessageId: string; accepted: AcceptedMessage[] }> {
    if (!this.callbacks) throw new Error('terminal channel is not set up');
    const accepted = await this.callbacks.onMessage({
      channelType: this.channelType,
      platformId,
      threadId: null,
      sender: { ...sender, isAdmin: true },
      text,
      attachments: [],
      isMention: true,
      isDirect: true,
      platformMessageId,
    });
    return { platformMessageId, accepted };
  }

  async deliver(target: DeliveryTarget, message: OutgoingMessage): Promise<string> {
    const id = `t-${message.idempotencyKey}`;
    const reply: TerminalReply = {
      type: 'message',
      platformId: target.platformId,
      id,
      key: message.idempotencyKey,
      seq: message.seq,
      text: message.text,
      files: message.files.map((f) => f.path),
      replyTo: message.replyTo ?? null,
      kind: message.kind ?? 'message',
    };
    const sinks = this.clients.get(target.platformId);
    if (sinks && sinks.size > 0) {
      for (const s of sinks) s.send({ event: 'message', ...reply });
    } else {
      this.deps.mailbox.put(this.channelType, target.platformId, message.idempotencyKey, reply);
    }
    return id;
  }

  async edit(target: DeliveryTarget, platformMessageId: string, text: string): Promise<void> {
    const sinks = this.clients.get(target.platformId);
    if (sinks && sinks.size > 0) {
      for (const s of sinks)
        s.send({ event: 'edit', platformId: target.platformId, id: platformMessageId, text });
      return;
    }
    // No one listening: kept like a reply, and shown as an edit on the next connect (the same
    // edit sent again after a crash is kept once).
    const key = `edit:${platformMessageId}:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
    const kept: TerminalReply = {
      type: 'message',
      platformId: target.platformId,
      id: platformMessageId,
      key,
      seq: 0,
      text,
      files: [],
      replyTo: null,
      kind: 'edit',
    };
    this.deps.mailbox.put(this.channelType, target.platformId, key, kept);
  }

  onSettled(target: DeliveryTarget, platformMessageId: string, status: 'completed' | 'failed'): void {
    for (const s of this.clients.get(target.platformId) ?? []) {
      s.send({ event: 'settled', platformId: target.platformId, messageId: platformMessageId, status });
    }
  }
}

registerChannel('terminal', (deps) => new TerminalChannel(deps));

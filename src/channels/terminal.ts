/**
 * Terminal channel: `polyclaw chat` talks to the host over the admin socket. The platformId is
 * the agent group's chat name ("main"). Every reply and edit is kept in the durable mailbox
 * until a client says it has shown it (chat.ack): one written to a client that is stopped, or
 * dies before reading it, is handed over again, oldest first, on the next connect. A re-send
 * after a crash carries the same idempotency key, which the mailbox and the client both
 * de-duplicate.
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
    for (const item of this.deps.mailbox.list(this.channelType, platformId))
      sink.send({ event: 'message', ...(item.payload as object), backlog: true });
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
    // Sent first (the reply's path), then kept until a client has shown it.
    for (const s of this.clients.get(target.platformId) ?? []) s.send({ event: 'message', ...reply });
    this.deps.mailbox.put(this.channelType, target.platformId, message.idempotencyKey, reply);
    return id;
  }

  async edit(
    target: DeliveryTarget,
    platformMessageId: string,
    text: string,
    idempotencyKey?: string,
  ): Promise<void> {
    // Kept like a reply until shown, and shown as an edit. The same edit sent again after a
    // crash is kept once; an edit back to an earlier text is another edit (X → Y → X ends on X).
    const key = `edit:${idempotencyKey ?? `${platformMessageId}:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`}`;
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
    for (const s of this.clients.get(target.platformId) ?? [])
      s.send({ event: 'edit', platformId: target.platformId, id: platformMessageId, key, text });
    this.deps.mailbox.put(this.channelType, target.platformId, key, kept);
  }

  /** A client has shown these replies and edits: they are no longer kept for the next one. */
  shown(platformId: string, keys: string[]): void {
    this.deps.mailbox.drop(this.channelType, platformId, keys);
  }

  onSettled(target: DeliveryTarget, platformMessageId: string, status: 'completed' | 'failed'): void {
    for (const s of this.clients.get(target.platformId) ?? []) {
      s.send({ event: 'settled', platformId: target.platformId, messageId: platformMessageId, status });
    }
  }
}

registerChannel('terminal', (deps) => new TerminalChannel(deps));

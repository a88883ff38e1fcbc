/**
 * The channel seam (ARCHITECTURE §6). An adapter turns platform events into InboundEvents and
 * delivers outgoing messages; it knows nothing of agent groups or sessions. Optional members
 * are optional capabilities: the host degrades when one is missing (edit → new message,
 * reaction → dropped with a log line, card → fallback text).
 */
import type { Logger } from '../shared/log.js';

export interface InboundAttachment {
  name: string;
  data: Buffer;
  mimeType?: string;
}

export interface InboundEvent {
  channelType: string;
  /** The chat on the platform (channel id, DM id, terminal name). */
  platformId: string;
  threadId: string | null;
  sender: {
    id: string;
    name?: string;
    /** The adapter vouches this sender administers the install. */ isAdmin?: boolean;
  };
  text: string;
  attachments: InboundAttachment[];
  /** The message addresses the assistant (an @-mention, a DM, the terminal). */
  isMention: boolean;
  /** A one-to-one chat: unknown ones may create their messaging group. */
  isDirect?: boolean;
  /** The platform's id for this message (used for replies, reactions and settle notices). */
  platformMessageId?: string;
  /** Agent-to-agent relays so far in this exchange (agent channel only). */
  hops?: number;
}

export interface AcceptedMessage {
  group: string;
  sessionId: string;
  messageId: string;
  seq: number;
  engaged: boolean;
  /** The message answered an open question instead of starting a turn. */
  answered?: boolean;
  /**
   * The message was refused and the chat told why (a non-admin's answer to an approval, a
   * native slash command from a non-admin): received, but nothing was queued.
   */
  refused?: boolean;
}

export interface ChannelCallbacks {
  /** Route one event; resolves once every resulting inbound row is durably stored. */
  onMessage(event: InboundEvent): Promise<AcceptedMessage[]>;
  /** A person pressed an option button of a question sent with sendQuestion; false if it was no longer open. */
  onAnswer(questionId: string, option: string, sender: InboundEvent['sender']): Promise<boolean>;
  log: Logger;
}

export interface DeliveryTarget {
  platformId: string;
  threadId: string | null;
}

export interface OutgoingMessage {
  text: string;
  /** Files to attach, checked by delivery to be regular files inside the session's outbox/. */
  files: OutgoingFile[];
  /** Stable per outbound row: a re-send after a crash carries the same key. */
  idempotencyKey: string;
  /** Session sequence number of this message (odd: agent, or 0 for host notices). */
  seq: number;
  /** Platform id of the inbound message this answers, when known. */
  replyTo?: string;
  /** 'notice' for host-generated messages such as failure reports. */
  kind?: 'message' | 'notice';
  /** Agent group that wrote the message (used by the agent channel). */
  fromGroup?: string;
  /** Agent-to-agent relays behind the message this one answers (agent channel loop guard). */
  hops?: number;
}

/**
 * A file of an outgoing message. The sandbox can still change what `path` names after delivery
 * checked it (swap it for a symlink to a host file), so an adapter never opens `path` itself:
 * it gets the bytes from `read()`, which checks again on the descriptor it reads.
 */
export interface OutgoingFile {
  /** The file's name, as the chat shows it. */
  name: string;
  /** Absolute host path inside the session's outbox/, for display to a local user only. */
  path: string;
  /**
   * The bytes (at most 25 MB), read through a descriptor that is a regular file inside outbox/.
   * Rejects with a non-retryable DeliveryError naming the file when that no longer holds.
   */
  read(): Promise<Buffer>;
}

export interface OutgoingQuestion {
  questionId: string;
  title?: string;
  question: string;
  options: string[];
  expiresAt: number;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    /** Worth retrying later (rate limit, timeout, 5xx); false for permanent refusals. */
    readonly transient: boolean,
    /** When the platform said when to try again (a rate limit's Retry-After), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export interface ChannelAdapter {
  readonly channelType: string;
  /** Connect to the platform and start emitting events through callbacks.onMessage. */
  setup(callbacks: ChannelCallbacks): Promise<void>;
  /** Disconnect; pending deliveries already resolved stay delivered. */
  teardown(): Promise<void>;
  /**
   * Send one message; resolves with the platform's message id. Throws DeliveryError. A person
   * who is not listening is not a failure: buffering adapters keep the message for later.
   */
  deliver(target: DeliveryTarget, message: OutgoingMessage): Promise<string>;
  /**
   * Replace the text of a message sent earlier. `idempotencyKey` is the edit's own (the same
   * edit sent again after a crash carries the same key; two edits to the same text do not):
   * an adapter that keeps edits for later dedupes by it.
   */
  edit?(
    target: DeliveryTarget,
    platformMessageId: string,
    text: string,
    idempotencyKey?: string,
  ): Promise<void>;
  /** Add an emoji reaction to a message. */
  react?(target: DeliveryTarget, platformMessageId: string, emoji: string): Promise<void>;
  /** Show or clear a typing indicator. */
  setTyping?(target: DeliveryTarget, on: boolean): Promise<void>;
  /** Open (or find) a direct chat with a platform user; resolves with its platformId. */
  openDM?(platformUserId: string): Promise<string>;
  /** Send a display card; resolves with the platform's message id. */
  sendCard?(target: DeliveryTarget, card: unknown, fallbackText: string): Promise<string>;
  /**
   * Send a question with one button per option; a press calls callbacks.onAnswer. Without it,
   * the question goes out as text with numbered options and a reply naming one answers it.
   */
  sendQuestion?(target: DeliveryTarget, question: OutgoingQuestion, fallbackText: string): Promise<string>;
  /** An inbound message reached its end state and all its replies were handed over. */
  onSettled?(target: DeliveryTarget, platformMessageId: string, status: 'completed' | 'failed'): void;
}

export interface ChannelDeps {
  log: Logger;
  /** Durable per-target mailbox for adapters that keep replies for disconnected clients. */
  mailbox: Mailbox;
}

export interface Mailbox {
  /** Store once per idempotency key; a duplicate key is ignored. */
  put(channelType: string, platformId: string, key: string, payload: unknown): void;
  /** Oldest first. */
  list(channelType: string, platformId: string): Array<{ id: number; key: string; payload: unknown }>;
  /** Remove these keys of one target (a client has shown them); unknown keys are ignored. */
  drop(channelType: string, platformId: string, keys: string[]): void;
}

export type ChannelFactory = (deps: ChannelDeps) => ChannelAdapter;

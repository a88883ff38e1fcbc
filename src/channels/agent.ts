/**
 * The `agent` channel: agent groups talking to each other. A grant "A may message B" creates
 * two chats: agent:"A->B" (wired to B, where A's messages arrive) and agent:"B->A" (wired to
 * A, where B's answers arrive). Delivering on "X->Y" from Y is an answer and goes to "Y->X";
 * from anyone else it goes to "X->Y". A hop counter stops two agents answering each other
 * forever: a message that would be the MAX_AGENT_HOPS-th relay of one exchange is refused.
 * The hop count follows replies only, so a rate limit backs it: a group sends another at most
 * MAX_AGENT_MESSAGES_PER_MINUTE messages in any minute (background sends, loops that restart).
 */
import type { ChannelAdapter, ChannelCallbacks, DeliveryTarget, OutgoingMessage } from './adapter.js';
import { DeliveryError } from './adapter.js';
import { registerChannel } from './registry.js';
import { AGENT_CHANNEL } from '../shared/messages.js';

export const MAX_AGENT_HOPS = 4;
export const MAX_AGENT_MESSAGES_PER_MINUTE = 30;
const MINUTE = 60_000;

export const agentChatId = (from: string, to: string) => `${from}->${to}`;

export function parseAgentChat(platformId: string): { from: string; to: string } | null {
  const m = /^([a-z0-9][a-z0-9_-]*)->([a-z0-9][a-z0-9_-]*)$/.exec(platformId);
  return m ? { from: m[1]!, to: m[2]! } : null;
}

export class AgentChannel implements ChannelAdapter {
  readonly channelType = AGENT_CHANNEL;
  private callbacks: ChannelCallbacks | null = null;
  private n = 0;
  /** Send times per "sender->receiver", within the last minute. */
  private sent = new Map<string, number[]>();

  constructor(private readonly now: () => number = Date.now) {}

  async setup(callbacks: ChannelCallbacks): Promise<void> {
    this.callbacks = callbacks;
  }

  async teardown(): Promise<void> {
    this.callbacks = null;
  }

  async deliver(target: DeliveryTarget, message: OutgoingMessage): Promise<string> {
    if (!this.callbacks) throw new DeliveryError('agent channel is not running', true);
    const chat = parseAgentChat(target.platformId);
    if (!chat) throw new DeliveryError(`"${target.platformId}" is not an agent chat`, false);
    const sender = message.fromGroup ?? chat.from;
    const hops = (message.hops ?? 0) + 1;
    if (hops >= MAX_AGENT_HOPS)
      throw new DeliveryError(
        `agent conversation stopped after ${MAX_AGENT_HOPS - 1} relays (loop guard)`,
        false,
      );
    const platformId = sender === chat.to ? agentChatId(chat.to, chat.from) : target.platformId;
    const pair = agentChatId(sender, sender === chat.to ? chat.from : chat.to);
    this.checkLimit(pair);
    const platformMessageId = `agent-${message.idempotencyKey}`;
    const attachments = await Promise.all(
      message.files.map(async (f) => ({ name: f.name, data: await f.read() })),
    );
    const accepted = await this.callbacks.onMessage({
      channelType: this.channelType,
      platformId,
      threadId: null,
      sender: { id: `agent:${sender}`, name: sender },
      text: message.text,
      attachments,
      isMention: true,
      isDirect: true,
      platformMessageId,
      hops,
    });
    if (accepted.length === 0) throw new DeliveryError(`no agent group receives "${platformId}"`, false);
    // Only a message some group took counts.
    this.sent.set(pair, [...(this.sent.get(pair) ?? []), this.now()]);
    this.n += 1;
    return platformMessageId;
  }

  /** Refuses (not retryable) a send of `pair` ("sender->receiver") past the rate limit. */
  private checkLimit(pair: string): void {
    const now = this.now();
    const recent = (this.sent.get(pair) ?? []).filter((t) => now - t < MINUTE);
    this.sent.set(pair, recent);
    if (recent.length >= MAX_AGENT_MESSAGES_PER_MINUTE) {
      const to = parseAgentChat(pair)?.to ?? pair;
      throw new DeliveryError(
        `more than ${MAX_AGENT_MESSAGES_PER_MINUTE} messages a minute to agent group "${to}" (loop guard); send fewer, longer messages`,
        false,
      );
    }
  }
}

registerChannel(AGENT_CHANNEL, () => new AgentChannel());

/** A channel adapter with every optional capability, recording what the host asked of it. */
import fs from 'node:fs';
import { channelRegistry } from '../../src/channels/index.js';
import { ops } from '../../src/host/admin-ops.js';
import { startHost, type Host } from '../../src/host/host.js';
import { createLogger } from '../../src/shared/log.js';
import { tempHome } from './cli.js';
import type {
  ChannelAdapter,
  ChannelCallbacks,
  DeliveryTarget,
  OutgoingMessage,
  OutgoingQuestion,
} from '../../src/channels/adapter.js';

export class FullChannel implements ChannelAdapter {
  readonly channelType = 'fullchat';
  callbacks!: ChannelCallbacks;
  log: Array<{ op: string; [k: string]: unknown }> = [];
  private n = 0;

  async setup(cb: ChannelCallbacks) {
    this.callbacks = cb;
  }
  /** A person's message in the chat "room", mentioning the assistant. */
  say(sender: string, text: string, platformMessageId: string) {
    return this.callbacks.onMessage({
      channelType: this.channelType,
      platformId: 'room',
      threadId: null,
      sender: { id: sender },
      text,
      attachments: [],
      isMention: true,
      platformMessageId,
    });
  }
  async teardown() {}
  async deliver(target: DeliveryTarget, m: OutgoingMessage) {
    this.log.push({ op: 'deliver', target, text: m.text, files: m.files, replyTo: m.replyTo });
    return `fm-${++this.n}`;
  }
  async edit(target: DeliveryTarget, id: string, text: string) {
    this.log.push({ op: 'edit', target, id, text });
  }
  async react(target: DeliveryTarget, id: string, emoji: string) {
    this.log.push({ op: 'react', target, id, emoji });
  }
  async sendCard(target: DeliveryTarget, card: unknown, fallbackText: string) {
    this.log.push({ op: 'card', target, card, fallbackText });
    return `fm-${++this.n}`;
  }
  async sendQuestion(target: DeliveryTarget, q: OutgoingQuestion, fallbackText: string) {
    this.log.push({ op: 'question', target, question: q, fallbackText });
    return `fm-${++this.n}`;
  }
  settled: Array<[string, string]> = [];
  onSettled(_t: DeliveryTarget, id: string, status: string) {
    this.settled.push([id, status]);
  }
}

// The fake platform is a channel Polyclaw has, in the tests that use it: admins may wire it.
if (!channelRegistry.has('fullchat')) channelRegistry.register('fullchat', () => new FullChannel());

/**
 * An in-process host (real sandboxes) with a FullChannel whose chat "room" is wired to the
 * group `main` (engaged by mention), plus an admin-op context and cleanup.
 */
export async function hostWithFullChannel(
  ch: FullChannel,
  env: Record<string, string> = {},
): Promise<{
  host: Host;
  ctx: () => { db: Host['db']; config: Host['config']; host: null };
  close(): Promise<void>;
}> {
  const home = tempHome();
  const host = await startHost({
    env: { POLYCLAW_HOME: home, ...env },
    log: createLogger({ level: 'error' }),
    extraChannels: [ch],
  });
  const ctx = () => ({ db: host.db, config: host.config, host: null });
  ops['wirings.add']!(ctx(), { group: 'main', channel: 'fullchat', platformId: 'room', engage: 'mention' });
  return {
    host,
    ctx,
    async close() {
      await host.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

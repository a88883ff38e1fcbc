/** A channel adapter with every optional capability, recording what the host asked of it. */
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

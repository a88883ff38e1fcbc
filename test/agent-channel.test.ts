/** The agent channel's delivery: one group's outbound message as an inbound event of another. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundEvent, OutgoingFile } from '../src/channels/adapter.js';
import { DeliveryError } from '../src/channels/adapter.js';
import { AgentChannel, MAX_AGENT_MESSAGES_PER_MINUTE } from '../src/channels/agent.js';
import { outboxFile } from '../src/host/delivery.js';
import { createLogger } from '../src/shared/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The channel over a router that takes every message, or none while `refuse.now` is set. */
async function channel(events: InboundEvent[], now?: () => number, refuse = { now: false }) {
  const ch = new AgentChannel(now);
  await ch.setup({
    onMessage: async (e) => {
      if (refuse.now) return [];
      events.push(e);
      return [{ group: 'helper', sessionId: 's', messageId: 'm', seq: 2, engaged: true }];
    },
    onAnswer: async () => false,
    log: createLogger({ level: 'error' }),
  });
  return ch;
}

const message = (files: OutgoingFile[]) => ({
  text: 'the report',
  files,
  idempotencyKey: 'k1',
  seq: 1,
  fromGroup: 'main',
});

/** A session dir with outbox/m/; returns it. */
function sessionDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-agent-ch-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'outbox', 'm'), { recursive: true });
  return dir;
}

describe('agent channel', () => {
  it('lets a group send another at most MAX_AGENT_MESSAGES_PER_MINUTE messages in a minute, each way', async () => {
    let t = 1_000_000;
    const events: InboundEvent[] = [];
    const refuse = { now: true };
    const ch = await channel(events, () => t, refuse);
    const send = (platformId: string, fromGroup: string, i: number) =>
      ch.deliver({ platformId, threadId: null }, { ...message([]), fromGroup, idempotencyKey: `k${i}` });
    // Sends no group took do not count.
    for (let i = 0; i < 5; i++)
      await expect(send('main->helper', 'main', 50 + i)).rejects.toThrow(/no agent group/);
    refuse.now = false;
    for (let i = 0; i < MAX_AGENT_MESSAGES_PER_MINUTE; i++) await send('main->helper', 'main', i);
    const refused = await send('main->helper', 'main', 99).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DeliveryError);
    expect((refused as DeliveryError).transient).toBe(false);
    expect((refused as Error).message).toMatch(/more than 30 messages a minute to agent group "helper"/);
    await send('main->helper', 'helper', 100); // helper's answer back has its own budget
    t += 60_000;
    await send('main->helper', 'main', 101);
    expect(events).toHaveLength(MAX_AGENT_MESSAGES_PER_MINUTE + 2);
  });

  it('a message the receiving group refused, telling the sender why, is delivered: not "no agent group receives"', async () => {
    const ch = new AgentChannel();
    await ch.setup({
      onMessage: async () => [
        { group: 'helper', sessionId: 's', messageId: '', seq: 0, engaged: false, refused: true },
      ],
      onAnswer: async () => false,
      log: createLogger({ level: 'error' }),
    });
    await expect(ch.deliver({ platformId: 'main->helper', threadId: null }, message([]))).resolves.toBe(
      'agent-k1',
    );
  });

  it("carries a message's files into the receiving group as attachments", async () => {
    const dir = sessionDir();
    fs.writeFileSync(path.join(dir, 'outbox/m/report.pdf'), 'pdf bytes');
    const events: InboundEvent[] = [];
    const ch = await channel(events);
    const file = await outboxFile(dir, 'outbox/m/report.pdf');
    await ch.deliver({ platformId: 'main->helper', threadId: null }, message([file]));
    expect(events).toHaveLength(1);
    expect(events[0]!.text).toBe('the report');
    expect(events[0]!.attachments).toEqual([{ name: 'report.pdf', data: Buffer.from('pdf bytes') }]);
  });

  it('refuses, not retryable, a file that is gone or swapped for a symlink after delivery checked it', async () => {
    const dir = sessionDir();
    const outside = sessionDir();
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'host secret');
    for (const swap of [
      (f: string) => fs.rmSync(f),
      (f: string) => {
        fs.rmSync(f);
        fs.symlinkSync(path.join(outside, 'secret.txt'), f);
      },
      (f: string) => {
        fs.rmSync(path.dirname(f), { recursive: true });
        fs.symlinkSync(outside, path.dirname(f));
        fs.renameSync(path.join(outside, 'secret.txt'), path.join(outside, 'gone.png'));
      },
    ]) {
      fs.mkdirSync(path.join(dir, 'outbox/m'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'outbox/m/gone.png'), 'png');
      const file = await outboxFile(dir, 'outbox/m/gone.png');
      swap(path.join(dir, 'outbox/m/gone.png'));
      const events: InboundEvent[] = [];
      const ch = await channel(events);
      const sent = ch.deliver({ platformId: 'main->helper', threadId: null }, message([file]));
      await expect(sent).rejects.toThrow(DeliveryError);
      await expect(sent).rejects.toMatchObject({
        transient: false,
        message: expect.stringMatching(/gone\.png is missing or not a regular file inside outbox/),
      });
      expect(events).toEqual([]);
      fs.rmSync(path.join(dir, 'outbox/m'), { recursive: true, force: true });
      if (fs.existsSync(path.join(outside, 'gone.png')))
        fs.renameSync(path.join(outside, 'gone.png'), path.join(outside, 'secret.txt'));
    }
  });
});

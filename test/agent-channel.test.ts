/** The agent channel's delivery: one group's outbound message as an inbound event of another. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundEvent } from '../src/channels/adapter.js';
import { DeliveryError } from '../src/channels/adapter.js';
import { AgentChannel } from '../src/channels/agent.js';
import { createLogger } from '../src/shared/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function channel(events: InboundEvent[]) {
  const ch = new AgentChannel();
  await ch.setup({
    onMessage: async (e) => {
      events.push(e);
      return [{ group: 'helper', sessionId: 's', messageId: 'm', seq: 2, engaged: true }];
    },
    onAnswer: async () => false,
    log: createLogger({ level: 'error' }),
  });
  return ch;
}

const message = (files: string[]) => ({
  text: 'the report',
  files,
  idempotencyKey: 'k1',
  seq: 1,
  fromGroup: 'main',
});

describe('agent channel', () => {
  it("carries a message's files into the receiving group as attachments", async () => {
    const outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-agent-ch-'));
    dirs.push(outbox);
    const file = path.join(outbox, 'report.pdf');
    fs.writeFileSync(file, 'pdf bytes');
    const events: InboundEvent[] = [];
    const ch = await channel(events);
    await ch.deliver({ platformId: 'main->helper', threadId: null }, message([file]));
    expect(events).toHaveLength(1);
    expect(events[0]!.text).toBe('the report');
    expect(events[0]!.attachments).toEqual([{ name: 'report.pdf', data: Buffer.from('pdf bytes') }]);
  });

  it('refuses, not retryable, a file that is gone by delivery time', async () => {
    const events: InboundEvent[] = [];
    const ch = await channel(events);
    const gone = path.join(os.tmpdir(), 'polyclaw-no-such-dir', 'gone.png');
    const sent = ch.deliver({ platformId: 'main->helper', threadId: null }, message([gone]));
    await expect(sent).rejects.toThrow(DeliveryError);
    await expect(sent).rejects.toMatchObject({
      transient: false,
      message: expect.stringMatching(/gone\.png/),
    });
    expect(events).toEqual([]);
  });
});

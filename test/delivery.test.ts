/** Delivery of outbound rows with a fake channel adapter, a real ledger and real queues. */
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DeliveryError,
  type ChannelAdapter,
  type DeliveryTarget,
  type OutgoingMessage,
} from '../src/channels/adapter.js';
import { loadConfig } from '../src/host/config.js';
import { openCentralDb, type Db } from '../src/host/db/open.js';
import { Delivery, type DeliveryDeps } from '../src/host/delivery.js';
import { MAX_RETRY_DELAY_MS, retryDelay } from '../src/host/send-retry.js';
import { OUTBOUND_BATCH, SessionQueue } from '../src/host/session-queue.js';
import { getDelivery } from '../src/host/store/deliveries.js';
import { addChatDestination } from '../src/host/store/destinations.js';
import { createGroup, getGroup } from '../src/host/store/groups.js';
import { createWiring, ensureMessagingGroup } from '../src/host/store/messaging.js';
import { resolveSession, type Session } from '../src/host/store/sessions.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { createLogger } from '../src/shared/log.js';
import type { Routing } from '../src/shared/messages.js';
import { tempHome } from './support/cli.js';

class FakeChannel implements ChannelAdapter {
  readonly channelType = 'fake';
  sent: Array<{ target: DeliveryTarget; msg: OutgoingMessage }> = [];
  edits: Array<[string, string]> = [];
  failures: Array<DeliveryError | Error> = [];
  async setup() {}
  async teardown() {}
  async deliver(target: DeliveryTarget, msg: OutgoingMessage) {
    const f = this.failures.shift();
    if (f) throw f;
    this.sent.push({ target, msg });
    return `p${this.sent.length}`;
  }
}

let dir: string;
let db: Db;
let session: Session;
let host: SessionQueue;
let runner: RunnerQueue;
let channel: FakeChannel;
let laters: Array<[string, number]>;
let delivery: Delivery;
let now: number;
const routing: Routing = { channelType: 'fake', platformId: 'room', threadId: null };

beforeEach(() => {
  dir = tempHome('polyclaw-delivery-');
  db = openCentralDb(':memory:');
  const g = createGroup(db, 'g', { provider: 'mock' });
  const mg = ensureMessagingGroup(db, 'fake', 'room');
  createWiring(db, mg.id, g.id, { engageMode: 'mention' });
  session = resolveSession(db, g.id, 'shared', mg.id, null).session;
  host = new SessionQueue(dir);
  runner = new RunnerQueue(dir);
  channel = new FakeChannel();
  laters = [];
  now = 1_000_000;
  delivery = deliveryWith(channel, { later: (s, ms) => laters.push([s, ms]) });
});

/** A Delivery over this test's DB and clock, with `adapter` (or no channel at all) as 'fake'. */
function deliveryWith(adapter: ChannelAdapter | null, extra: Partial<DeliveryDeps> = {}): Delivery {
  return new Delivery({
    db,
    log: createLogger({ level: 'error' }),
    channels: new Map(adapter ? [['fake', adapter]] : []),
    maxAttempts: 3,
    baseDelayMs: 100,
    now: () => now,
    later: () => {},
    ...extra,
  });
}
afterEach(() => {
  runner.close();
  host.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const reply = (text: string, r = routing) =>
  runner.commit([{ kind: 'message', inReplyTo: null, routing: r, content: { text } }], []);

describe('delivery', () => {
  it('sends each row once, in order, even when processed again', async () => {
    reply('one');
    reply('two');
    expect(await delivery.process(session, host)).toBe(true);
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['one', 'two']);
    expect(channel.sent.map((s) => s.msg.seq)).toEqual([1, 3]);
    expect(new Set(channel.sent.map((s) => s.msg.idempotencyKey)).size).toBe(2);
  });

  it('reads the acks of more pending messages than SQLite takes bound variables (32766)', () => {
    const m = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'hi', attachments: [] },
    });
    runner.ack([{ id: m.id, tries: 0 }], 'processing');
    const ids = [...Array.from({ length: 40_000 }, (_, i) => `waiting-${i}`), m.id];
    expect(host.acksFor(ids).map((a) => [a.messageId, a.status])).toEqual([[m.id, 'processing']]);
  });

  it('never delivers a row in reply to a message that was never queued (an early start whose commit failed)', async () => {
    const queued = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'hi', sender: { id: 'ann' }, attachments: [] },
    });
    const to = (inReplyTo: string, text: string) =>
      runner.commit([{ kind: 'message', inReplyTo, routing, content: { text } }], []);
    to('never-queued', 'ghost answer');
    to(queued.id, 'real answer');
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['real answer']);
    const ghost = host.outboundSince(0)[0]!;
    expect(getDelivery(db, session.id, ghost.id)).toMatchObject({ status: 'skipped' });
  });

  it('re-sends a row found "sending" after a crash with the same idempotency key', async () => {
    reply('one');
    await delivery.process(session, host);
    const key = channel.sent[0]!.msg.idempotencyKey;
    const outId = host.outboundSince(0)[0]!.id;
    db.prepare(`UPDATE deliveries SET status = 'sending' WHERE out_id = ?`).run(outId);
    db.prepare('UPDATE sessions SET out_cursor = 0').run();
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.idempotencyKey)).toEqual([key, key]);
  });

  it('a row whose sending the host never survived is given up after maxAttempts, and the agent told', async () => {
    reply('one');
    reply('two');
    const outId = host.outboundSince(0)[0]!.id;
    // Each of three hosts died while sending it (as with an adapter that crashes the process).
    db.prepare(
      `INSERT INTO deliveries (session_id, out_id, seq, status, attempts, updated_at) VALUES (?, ?, 1, 'sending', 3, 0)`,
    ).run(session.id, outId);
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['two']);
    expect(getDelivery(db, session.id, outId)?.status).toBe('failed');
    expect(host.pending().find((m) => m.kind === 'system')?.content.text).toMatch(
      /seq 1 .* failed: .*3 attempts/,
    );
  });

  it('retries transient errors with backoff, holding later rows back to keep order', async () => {
    reply('one');
    reply('two');
    channel.failures.push(new DeliveryError('rate limited', true));
    expect(await delivery.process(session, host)).toBe(false);
    expect(channel.sent).toEqual([]);
    expect(laters).toEqual([[session.id, 100]]);
    expect(await delivery.process(session, host)).toBe(false);
    now += 100;
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['one', 'two']);
  });

  it('reports a permanent failure back into the session for the agent, and moves on', async () => {
    reply('one');
    reply('two');
    channel.failures.push(new DeliveryError('chat was deleted', false));
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['two']);
    const [notice] = host.pending();
    expect(notice).toMatchObject({ kind: 'system', trigger: false });
    expect(notice!.content.text).toMatch(/seq 1 .* failed: chat was deleted/);
  });

  it('the agent hears of a permanent failure even when telling it failed once (or the host died) first', async () => {
    reply('one');
    channel.failures.push(
      new DeliveryError('chat was deleted', false),
      new DeliveryError('chat was deleted', false),
    );
    const enqueue = host.enqueue.bind(host);
    let broken = true;
    host.enqueue = (input) => {
      if (broken) {
        broken = false;
        throw new Error('database is locked');
      }
      return enqueue(input);
    };
    await expect(delivery.process(session, host)).rejects.toThrow(/locked/);
    expect(await delivery.process(session, host)).toBe(true);
    expect(await delivery.process(session, host)).toBe(true);
    const notices = host.pending().filter((m) => m.kind === 'system');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.content.text).toMatch(/seq 1 .* failed: chat was deleted/);
    // Keyed by a field of its own: a reply to a batch it ends must not point at a made-up message.
    expect(notices[0]!.content.platformMessageId).toBeUndefined();
  });

  it('a failure told but not recorded (the host died between the two) is told once', async () => {
    reply('one');
    channel.failures.push(
      new DeliveryError('chat was deleted', false),
      new DeliveryError('chat was deleted', false),
    );
    expect(await delivery.process(session, host)).toBe(true);
    // As after a kill -9 right after telling: the ledger forgot the failure, the session did not.
    db.prepare('DELETE FROM deliveries').run();
    db.prepare('UPDATE sessions SET out_cursor = 0').run();
    expect(await delivery.process(session, host)).toBe(true);
    expect(host.pending().filter((m) => m.kind === 'system')).toHaveLength(1);
  });

  it('a sandbox that keeps its outbound.db locked holds the host back a moment, not seconds per read', async () => {
    reply('one');
    runner.close(); // the runner's own handle gone, its sandbox keeps the file locked
    const hostile = new Database(`${dir}/outbound.db`, { timeout: 100 });
    try {
      hostile.pragma('locking_mode = EXCLUSIVE');
      hostile.exec('BEGIN EXCLUSIVE; COMMIT;'); // the lock is kept after the transaction
      const t0 = Date.now();
      expect(() => host.outboundSince(0)).toThrow(/locked|busy/i);
      expect(Date.now() - t0).toBeLessThan(2000); // the old 5 s wait blocked every session and channel
    } finally {
      hostile.close();
    }
    expect(host.outboundSince(0).map((r) => r.content.text)).toEqual(['one']);
  });

  it("the wait between tries doubles up to 5 min; a platform's retry-after wins; the defaults ride out a 20-minute outage", () => {
    const p = { maxAttempts: 14, baseDelayMs: 500 };
    const waits = Array.from({ length: 13 }, (_, i) => retryDelay(new Error('timeout'), i + 1, p)!);
    expect(waits.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(Math.max(...waits)).toBe(MAX_RETRY_DELAY_MS);
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThan(20 * 60_000);
    expect(retryDelay(new Error('timeout'), 14, p)).toBeNull();
    expect(retryDelay(new DeliveryError('slow down', true, 30_000), 1, p)).toBe(30_000);
    expect(retryDelay(new DeliveryError('slow down', true, 10 * 3_600_000), 1, p)).toBe(3_600_000);
    expect(retryDelay(new DeliveryError('chat is gone', false, 1000), 1, p)).toBeNull();
    expect(loadConfig({ POLYCLAW_HOME: dir }).deliveryMaxAttempts).toBe(14);
  });

  it('gives up after maxAttempts transient failures', async () => {
    reply('one');
    for (let i = 0; i < 3; i++) channel.failures.push(new DeliveryError('timeout', true));
    for (let i = 0; i < 3; i++) {
      await delivery.process(session, host);
      now += 10_000;
    }
    const row = host.outboundSince(0)[0]!;
    expect(getDelivery(db, session.id, row.id)).toMatchObject({ status: 'failed', attempts: 3 });
    expect(host.pending()[0]!.content.text).toMatch(/failed: timeout/);
  });

  it('refuses to post where the agent group was not granted, whatever the sandbox wrote', async () => {
    reply('leak', { channelType: 'fake', platformId: 'someone-elses-room', threadId: null });
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    expect(host.pending()[0]!.content.text).toMatch(/not allowed to post/);
  });

  it('a destination granted for one thread lets the group post in that thread only', async () => {
    addChatDestination(db, getGroup(db, session.agentGroupId), 'standup', 'fake', 'team', 't1');
    const team = (threadId: string | null) => ({ channelType: 'fake', platformId: 'team', threadId });
    reply('in the thread', team('t1'));
    reply('another thread', team('t2'));
    reply('the main chat', team(null));
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['in the thread']);
    expect(host.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(/seq 3 .* not allowed to post/),
      expect.stringMatching(/seq 5 .* not allowed to post/),
    ]);
  });

  it('a card or question the tools would refuse is not sent: the agent is told, and the waiting tool hears at once', async () => {
    const fields = Array.from({ length: 500 }, (_, i) => ({ label: `f${i}`, value: 'v' }));
    runner.commit(
      [{ kind: 'card', inReplyTo: null, routing, content: { text: 'fallback', card: { fields } } }],
      [],
    );
    runner.commit(
      [
        {
          kind: 'question',
          inReplyTo: null,
          routing,
          content: {
            text: 'Which?',
            question: {
              questionId: 'q-dup',
              question: 'Which?',
              options: ['Yes', 'yes '],
              expiresAt: now + 60_000,
            },
          },
        },
      ],
      [],
    );
    reply('after them');
    await delivery.process(session, host);
    expect(channel.sent.map((x) => x.msg.text)).toEqual(['after them']);
    const told = host.pending();
    expect(told.filter((m) => m.kind === 'system').map((m) => m.content.text)).toEqual([
      expect.stringMatching(/^Delivery of your message seq 1 .* failed: the card is not valid at fields: /),
      expect.stringMatching(/^Delivery of your message seq 3 .* failed: `options` must be distinct\.$/),
    ]);
    expect(told.filter((m) => m.kind === 'answer').map((m) => m.content.answer)).toEqual([
      { questionId: 'q-dup', text: '', undelivered: '`options` must be distinct.' },
    ]);
  });

  it('turns an edit into a new message on a channel without edits, and drops reactions there', async () => {
    reply('first');
    await delivery.process(session, host);
    runner.commit(
      [{ kind: 'edit', inReplyTo: null, routing, content: { text: 'first (edited)', targetSeq: 1 } }],
      [],
    );
    runner.commit(
      [{ kind: 'reaction', inReplyTo: null, routing, content: { text: '', targetSeq: 1, emoji: '👍' } }],
      [],
    );
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['first', 'first (edited)']);
  });

  it('refuses an outbox file reached through a symlinked folder or a symlinked outbox', async () => {
    const outside = tempHome('polyclaw-outside-');
    fs.writeFileSync(`${outside}/secret.txt`, 'host secret');
    fs.mkdirSync(`${dir}/outbox`, { recursive: true });
    fs.symlinkSync(outside, `${dir}/outbox/evil`);
    const file = (text: string, f: string) =>
      runner.commit([{ kind: 'message', inReplyTo: null, routing, content: { text, files: [f] } }], []);
    file('via folder', 'outbox/evil/secret.txt');
    await delivery.process(session, host);
    fs.rmSync(`${dir}/outbox`, { recursive: true });
    fs.symlinkSync(outside, `${dir}/outbox`);
    file('via outbox', 'outbox/secret.txt');
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    expect(host.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(/not a regular file inside outbox/),
      expect.stringMatching(/not a regular file inside outbox/),
    ]);
  });

  it("a notice speaks for the session's group with the relays behind its message (agent chats route it back)", async () => {
    await delivery.notice(session, host, 'fail:m1', { routing, text: 'could not', hops: 2 });
    expect(channel.sent[0]!.msg).toMatchObject({ kind: 'notice', fromGroup: 'g', hops: 2 });
  });

  it('a notice to a chat the group may not post to is not sent', async () => {
    await delivery.notice(session, host, 'fail:m1', {
      routing: { ...routing, platformId: 'not-wired' },
      text: 'could not',
      hops: 0,
    });
    expect(channel.sent).toEqual([]);
    await delivery.notice(session, host, 'fail:m2', { routing, text: 'could not', hops: 0 });
    expect(channel.sent.map((s) => s.target.platformId)).toEqual(['room']);
  });

  it('a long backlog of rows without I/O (task actions) lets the event loop run between batches', async () => {
    const handled: number[] = [];
    const withActions = deliveryWith(channel, { onAction: (_s, _q, row) => handled.push(row.seq) });
    const total = OUTBOUND_BATCH * 3;
    const action = { type: 'cancel_task' as const, taskId: 'x' };
    runner.commit(
      Array.from({ length: total }, () => ({
        kind: 'system' as const,
        inReplyTo: null,
        routing,
        content: { text: '', action },
      })),
      [],
    );
    let seenByOthers = -1;
    setImmediate(() => (seenByOthers = handled.length));
    expect(await withActions.process(session, host)).toBe(true);
    expect(handled).toHaveLength(total);
    expect(seenByOthers).toBeGreaterThanOrEqual(0);
    expect(seenByOthers).toBeLessThan(total);
  });

  it('a row whose id looks like a host ledger key cannot pass for a notice already sent', async () => {
    reply('forged');
    const raw = new Database(`${dir}/outbound.db`);
    raw.prepare(`UPDATE messages_out SET id = 'fail:m1'`).run();
    raw.close();
    await delivery.process(session, host);
    await delivery.notice(session, host, 'fail:m1', { routing, text: 'your message failed', hops: 0 });
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['forged', 'your message failed']);
  });

  it('reads past a batch: every row of a long backlog is delivered once, in order', async () => {
    for (let i = 0; i < OUTBOUND_BATCH + 10; i++) reply(`m${i}`);
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent).toHaveLength(OUTBOUND_BATCH + 10);
    expect(channel.sent.at(-1)!.msg.text).toBe(`m${OUTBOUND_BATCH + 9}`);
  });

  it('an oversized row the sandbox wrote is skipped, not loaded; the rows after it are delivered', async () => {
    const raw = new Database(`${dir}/outbound.db`);
    raw
      .prepare(
        `INSERT INTO messages_out (id, seq, in_reply_to, kind, timestamp, routing, content) VALUES ('big', 1, NULL, 'message', 0, ?, ?)`,
      )
      .run(JSON.stringify(routing), JSON.stringify({ text: 'x'.repeat(2 * 1024 * 1024) }));
    raw.close();
    reply('after');
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['after']);
    expect(getDelivery(db, session.id, 'big')).toMatchObject({ status: 'skipped' });
  });

  it('reads an outbound.db an older runner wrote, without the indexes added since', async () => {
    reply('written by the last runner');
    const raw = new Database(`${dir}/outbound.db`);
    raw.exec('DROP INDEX messages_out_reply');
    raw.close();
    host.close();
    host = new SessionQueue(dir);
    expect(await delivery.process(session, host)).toBe(true);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['written by the last runner']);
  });

  it('refuses an outbound.db whose schema the sandbox changed (a view runs inside every read)', async () => {
    reply('one');
    expect(await delivery.process(session, host)).toBe(true);
    const raw = new Database(`${dir}/outbound.db`);
    raw.exec(`ALTER TABLE messages_out RENAME TO old;
      CREATE VIEW messages_out AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
        SELECT 'x' || i AS id, i AS seq, NULL AS in_reply_to, 'message' AS kind, 0 AS timestamp,
               '{}' AS routing, '{}' AS content FROM n;`);
    raw.close();
    await expect(delivery.process(session, host)).rejects.toMatchObject({
      code: 'sandbox',
      message: expect.stringMatching(/holds a schema Polyclaw did not write \(table old\)/),
    });
    host.close();
    host = new SessionQueue(dir);
    expect(() => host.outboundSince(0)).toThrow(/schema Polyclaw did not write/);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['one']);
  });

  it('refuses an outbox FIFO without blocking and a file over the 25 MB limit', async () => {
    fs.mkdirSync(`${dir}/outbox/m`, { recursive: true });
    execFileSync('mkfifo', [`${dir}/outbox/m/pipe`]);
    fs.closeSync(fs.openSync(`${dir}/outbox/m/big.bin`, 'w'));
    fs.truncateSync(`${dir}/outbox/m/big.bin`, 26 * 1024 * 1024);
    for (const f of ['outbox/m/pipe', 'outbox/m/big.bin'])
      runner.commit([{ kind: 'message', inReplyTo: null, routing, content: { text: f, files: [f] } }], []);
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    expect(host.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(/pipe is missing or not a regular file inside outbox/),
      expect.stringMatching(/big\.bin is 26\.0 MB; the limit is 25 MB/),
    ]);
  });

  it('refuses outbox files that escape the outbox or are symlinks', async () => {
    fs.mkdirSync(`${dir}/outbox/m`, { recursive: true });
    fs.symlinkSync('/etc/hostname', `${dir}/outbox/m/link.txt`);
    runner.commit(
      [
        {
          kind: 'message',
          inReplyTo: null,
          routing,
          content: { text: 'file', files: ['outbox/m/link.txt'] },
        },
      ],
      [],
    );
    runner.commit(
      [
        {
          kind: 'message',
          inReplyTo: null,
          routing,
          content: { text: 'file2', files: ['../../etc/passwd'] },
        },
      ],
      [],
    );
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    expect(host.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(/not a regular file/),
      expect.stringMatching(/outside outbox/),
    ]);
  });
});

describe('host notices are never lost', () => {
  const failed = (text = 'failed') => ({ routing, text, hops: 0 });
  const chat = () =>
    host.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'hi', sender: { id: 'ann' }, attachments: [] },
    });

  it('a notice whose send fails for a moment is sent on a later pass, once', async () => {
    channel.failures.push(new DeliveryError('rate limited', true));
    await delivery.notice(session, host, 'fail:m1', failed('⚠️ could not'));
    expect(channel.sent).toEqual([]);
    expect(laters).toEqual([[session.id, 100]]);
    await delivery.process(session, host); // not due yet
    expect(channel.sent).toEqual([]);
    now += 100;
    await delivery.process(session, host);
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['⚠️ could not']);
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('a notice whose channel is not running yet is kept and sent when it runs', async () => {
    const bare = deliveryWith(null);
    await bare.notice(session, host, 'fail:m1', failed());
    now += 100;
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['failed']);
  });

  it('gives up on a notice after maxAttempts, and on a permanent refusal at once', async () => {
    for (let i = 0; i < 3; i++) channel.failures.push(new DeliveryError('timeout', true));
    await delivery.notice(session, host, 'fail:m1', failed());
    for (let i = 0; i < 3; i++) {
      now += 1000;
      await delivery.process(session, host);
    }
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'failed', attempts: 3 });
    channel.failures.push(new DeliveryError('chat was deleted', false));
    await delivery.notice(session, host, 'fail:m2', failed());
    expect(getDelivery(db, session.id, 'fail:m2')).toMatchObject({ status: 'failed', attempts: 1 });
    now += 1000;
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
  });

  it('a notice cut off by a crash is sent again by the next process with the same idempotency key', async () => {
    const keys: string[] = [];
    const hanging: ChannelAdapter = {
      channelType: 'fake',
      setup: async () => {},
      teardown: async () => {},
      deliver: (_t, msg) => {
        keys.push(msg.idempotencyKey);
        return new Promise<string>(() => {}); // the process dies during this call
      },
    };
    const dying = deliveryWith(hanging);
    void dying.notice(session, host, 'fail:m1', failed('⚠️ could not'));
    await new Promise((r) => setImmediate(r));
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'sending' });
    await delivery.process(session, host); // the restarted host
    expect(channel.sent.map((s) => [s.msg.text, s.msg.idempotencyKey])).toEqual([['⚠️ could not', keys[0]]]);
  });

  it('a notice whose send took the host down at every start is given up after maxAttempts, not sent at every start for ever', async () => {
    const hanging: ChannelAdapter = {
      channelType: 'fake',
      setup: async () => {},
      teardown: async () => {},
      deliver: () => new Promise<string>(() => {}), // each host dies during this call
    };
    void deliveryWith(hanging).notice(session, host, 'fail:m1', failed('⚠️ could not'));
    await new Promise((r) => setImmediate(r));
    for (let start = 0; start < 5; start++) {
      void deliveryWith(hanging).process(session, host);
      await new Promise((r) => setImmediate(r));
    }
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'failed', attempts: 3 });
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
  });

  it('a notice about a message waits while the message is pending; sent once it fails, dropped if it completes', async () => {
    const a = chat();
    const b = chat();
    delivery.notices.keep(session, `fail:${a.id}`, { ...failed('a failed'), about: a.id });
    delivery.notices.keep(session, `fail:${b.id}`, { ...failed('b failed'), about: b.id });
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    host.markDone(a.id, 'failed');
    host.markDone(b.id, 'completed');
    await delivery.process(session, host);
    await delivery.process(session, host);
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['a failed']);
    expect(getDelivery(db, session.id, `fail:${b.id}`)).toMatchObject({ status: 'skipped' });
  });

  it('a notice whose stored form is unreadable is dropped with a log line; the others still go', async () => {
    channel.failures.push(new DeliveryError('rate limited', true));
    await delivery.notice(session, host, 'fail:m1', failed('first'));
    db.prepare(`UPDATE deliveries SET notice = '{not json' WHERE out_id = 'fail:m1'`).run();
    now += 100;
    await delivery.notice(session, host, 'fail:m2', failed('second'));
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['second']);
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'skipped' });
  });

  it("another notice's send does not send a notice held for a message that runs again", async () => {
    const a = chat();
    delivery.notices.keep(session, `fail:${a.id}`, { ...failed('a failed'), about: a.id });
    await delivery.notice(session, host, 'refused:x', failed('refused'));
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['refused']);
  });

  it('two passes at once send each notice once (a pass re-reads a notice before sending it)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: ChannelAdapter = {
      channelType: 'fake',
      setup: async () => {},
      teardown: async () => {},
      deliver: async (t, msg) => {
        if (msg.text === 'one') await gate;
        return channel.deliver(t, msg);
      },
    };
    const d = deliveryWith(slow);
    d.notices.keep(session, 'refused:1', failed('one'));
    d.notices.keep(session, 'refused:2', failed('two'));
    const first = d.process(session, host); // waits on "one"
    await d.notice(session, host, 'refused:3', failed('three')); // sends "two" and "three"
    release();
    await first;
    expect(channel.sent.map((s) => s.msg.text).sort()).toEqual(['one', 'three', 'two']);
  });

  it('a notice left "sending" without its text by an older host gives way to the new one', async () => {
    db.prepare(
      `INSERT INTO deliveries (session_id, out_id, seq, status, attempts, updated_at) VALUES (?, 'fail:m1', NULL, 'sending', 1, 0)`,
    ).run(session.id);
    await delivery.notice(session, host, 'fail:m1', failed('⚠️ could not'));
    expect(channel.sent.map((s) => s.msg.text)).toEqual(['⚠️ could not']);
  });

  it('a kept notice whose chat is unwired before it goes out is dropped, not sent', async () => {
    channel.failures.push(new DeliveryError('rate limited', true));
    await delivery.notice(session, host, 'fail:m1', failed());
    db.prepare('DELETE FROM wirings').run();
    now += 100;
    await delivery.process(session, host);
    expect(channel.sent).toEqual([]);
    expect(getDelivery(db, session.id, 'fail:m1')).toMatchObject({ status: 'skipped' });
  });
});

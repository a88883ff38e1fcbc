/**
 * A question lives as long as the attempt that asked it: the real Delivery, Settlement and
 * Router over real queues and a real central DB, with a chat adapter that can fail for a moment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryError, type ChannelAdapter, type OutgoingMessage } from '../src/channels/adapter.js';
import { openCentralDb, type Db } from '../src/host/db/open.js';
import { Delivery } from '../src/host/delivery.js';
import { Router } from '../src/host/router.js';
import { SessionQueue } from '../src/host/session-queue.js';
import { Settlement } from '../src/host/settlement.js';
import { createGroup } from '../src/host/store/groups.js';
import { createWiring, ensureMessagingGroup } from '../src/host/store/messaging.js';
import { matchOption, openQuestionsFor } from '../src/host/store/questions.js';
import { resolveSession, type Session } from '../src/host/store/sessions.js';
import { RunnerQueue, type OutMessage } from '../src/runner/session-io.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

const log = createLogger({ level: 'error' });
const chat = { channelType: 'chat', platformId: 'room', threadId: null };

let dir: string;
let db: Db;
let now: number;
let session: Session;
let q: SessionQueue;
let runner: RunnerQueue;
let sent: string[];
let failNext: number;
let refuseAll: boolean;
let delivery: Delivery;
let settlement: Settlement;
let router: Router;

beforeEach(() => {
  dir = tempHome('polyclaw-questions-');
  db = openCentralDb(':memory:');
  now = Date.now(); // the router reads the real clock
  const clock = () => now;
  const g = createGroup(db, 'a', { provider: 'mock' });
  const mg = ensureMessagingGroup(db, 'chat', 'room');
  createWiring(db, mg.id, g.id, { engageMode: 'pattern', pattern: '.*' });
  session = resolveSession(db, g.id, 'shared', mg.id, null).session;
  q = new SessionQueue(path.join(dir, session.id), clock);
  runner = new RunnerQueue(q.dir, clock);
  sent = [];
  failNext = 0;
  refuseAll = false;
  const adapter: ChannelAdapter = {
    channelType: 'chat',
    async setup() {},
    async teardown() {},
    async deliver(_t, m: OutgoingMessage) {
      if (failNext > 0 && failNext--) throw new DeliveryError('429 too many requests', true);
      if (refuseAll) throw new DeliveryError('the bot was removed from this chat', false);
      sent.push(m.text.split('\n')[0]!);
      return `p${sent.length}`;
    },
  };
  const channels = new Map([['chat', adapter]]);
  delivery = new Delivery({ db, log, channels, maxAttempts: 5, baseDelayMs: 500, now: clock, later() {} });
  settlement = new Settlement({
    db,
    delivery,
    channels,
    log,
    now: clock,
    maxTries: 3,
    retryBaseMs: 1000,
    retryAt() {},
  });
  router = new Router({ db, log, queueFor: () => q, wake() {} });
});
afterEach(() => {
  runner.close();
  q.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One host pass: deliver, then settle what the acks say (`alive` false: the sandbox is gone). */
async function pass(alive: boolean): Promise<void> {
  const acks = q.acksFor(q.pendingIds());
  const drained = await delivery.process(session, q);
  if (acks.length) await settlement.reconcile(session, q, q.pending(), acks, () => !alive, drained);
}

const question = (messageId: string, id: string): OutMessage => ({
  kind: 'question',
  inReplyTo: messageId,
  routing: chat,
  content: {
    text: `Delete build/? (${id})\n1. Yes\n2. No`,
    question: {
      questionId: id,
      question: 'Delete build/?',
      options: ['Yes', 'No'],
      expiresAt: now + 300_000,
    },
  },
});
const open = () => openQuestionsFor(db, chat, now).map((x) => x.questionId);
/** A user's message in the chat, taken by the runner for its first attempt. */
function taken(text: string) {
  const m = q.enqueue({
    kind: 'chat',
    trigger: true,
    routing: chat,
    content: { text, sender: { id: 'u1' }, attachments: [] },
  });
  runner.ack([{ id: m.id, tries: 0 }], 'processing');
  return m;
}

describe('questions and the attempts that ask them', () => {
  it('a question still waiting for delivery when its attempt fails is never shown, and the answer reaches the retry', async () => {
    const m = taken('clean up?');
    runner.commit(
      [
        { kind: 'message', inReplyTo: m.id, routing: chat, content: { text: 'Looking at build/' } },
        question(m.id, 'q1'),
      ],
      [],
    );
    failNext = 1; // the first row meets a rate limit; then the sandbox dies mid-turn
    await pass(false);
    now += 1_000;
    await pass(false); // the backoff is over: the rows of the failed attempt go out
    expect(sent).toEqual(['Looking at build/']);
    expect(open()).toEqual([]);

    now += 2_000;
    const [again] = q.pending();
    expect(again!.tries).toBe(1);
    runner.ack([{ id: m.id, tries: 1 }], 'processing');
    runner.commit([question(m.id, 'q2')], []);
    await pass(true);
    expect(sent).toEqual(['Looking at build/', 'Delete build/? (q2)']);
    expect(open()).toEqual(['q2']);
    await router.route({ ...chat, sender: { id: 'u1' }, text: 'yes', attachments: [], isMention: false });
    expect(runner.answer('q2')?.text).toBe('Yes');
    expect(runner.answer('q1')).toBeNull();
  });

  it('a question whose send waits in backoff catches no reply until it is shown', async () => {
    const m = taken('clean up?');
    runner.commit([question(m.id, 'q1')], []);
    failNext = 1; // a rate limit: the question waits for its next try
    await pass(true);
    expect(sent).toEqual([]);
    expect(open()).toEqual([]);
    const before = q.pending().length;
    await router.route({ ...chat, sender: { id: 'u1' }, text: 'yes', attachments: [], isMention: false });
    expect(runner.answer('q1')).toBeNull(); // the person has not seen it: "yes" is a message
    expect(q.pending().length).toBe(before + 1);
    now += 1_000;
    await pass(true);
    expect(sent).toEqual(['Delete build/? (q1)']);
    expect(open()).toEqual(['q1']);
    await router.route({ ...chat, sender: { id: 'u1' }, text: '2', attachments: [], isMention: false });
    expect(runner.answer('q1')?.text).toBe('No');
  });

  it('a question that cannot be shown catches no reply, and its asker hears why at once', async () => {
    const m = taken('x');
    runner.commit([question(m.id, 'lost')], []);
    refuseAll = true;
    await pass(true);
    expect(open()).toEqual([]);
    expect(runner.answer('lost')).toEqual({
      questionId: 'lost',
      text: '',
      undelivered: 'the bot was removed from this chat',
    });
  });

  it('a question left unsent when its message settled is not shown', async () => {
    const m = taken('x');
    runner.commit([question(m.id, 'late')], []);
    q.markDone(m.id, 'completed');
    await pass(true);
    expect(sent).toEqual([]);
    expect(open()).toEqual([]);
  });
});

describe('matching a reply to an option', () => {
  it('by text first, so options that are numbers are answered by writing them; then by number', () => {
    expect(matchOption(['5', '10', '15'], '10')).toBe('10');
    expect(matchOption(['2', '1'], '1')).toBe('1');
    expect(matchOption(['Yes.', 'No.'], 'Yes.')).toBe('Yes.');
    expect(matchOption(['Yes.', 'No.'], 'no')).toBe('No.');
    expect(matchOption(['Red', 'Blue'], ' 2. ')).toBe('Blue');
    expect(matchOption(['Red', 'Blue'], 'blue')).toBe('Blue');
    expect(matchOption(['Red', 'Blue'], '3')).toBeNull();
    expect(matchOption(['Red', 'Blue'], 'green')).toBeNull();
  });
});

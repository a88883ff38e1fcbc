/** Routing with a real central DB and real session queues on disk. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboundEvent } from '../src/channels/adapter.js';
import type { Db } from '../src/host/db/open.js';
import { Router } from '../src/host/router.js';
import { SessionQueue } from '../src/host/session-queue.js';
import { createGroup } from '../src/host/store/groups.js';
import {
  createWiring,
  ensureMessagingGroup,
  findMessagingGroup,
  updateWiring,
} from '../src/host/store/messaging.js';
import { getQuestion, MAX_QUESTION_OPEN_MS, recordQuestion } from '../src/host/store/questions.js';
import { getSession, listSessions, resolveSession } from '../src/host/store/sessions.js';
import { addMembership, ensureUser, grantRole } from '../src/host/store/users.js';
import { mayBacktrack } from '../src/host/pattern-guard.js';
import { createLogger } from '../src/shared/log.js';
import { routerKit, type RouterKit } from './support/router-kit.js';

let kit: RouterKit;
let db: Db;
let router: Router;
let woken: string[];
let queues: Map<string, SessionQueue>;

beforeEach(() => {
  kit = routerKit('polyclaw-router-');
  ({ db, router, woken, queues } = kit);
});
afterEach(() => kit.close());

const ev = (over: Partial<InboundEvent> = {}): InboundEvent => ({
  channelType: 'chat',
  platformId: 'room-1',
  threadId: null,
  sender: { id: 'u1', name: 'Ann' },
  text: 'hello',
  attachments: [],
  isMention: false,
  ...over,
});

function wire(group: string, over: Parameters<typeof createWiring>[3] = {}, platformId = 'room-1') {
  const g = createGroup(db, group, { provider: 'mock' });
  const mg = ensureMessagingGroup(db, 'chat', platformId);
  return { group: g, wiring: createWiring(db, mg.id, g.id, over) };
}

const rows = (sessionId: string) => queues.get(sessionId)!.pending();

describe('router', () => {
  it('drops events from an unknown chat unless they mention us or are a DM, which creates the chat', async () => {
    expect(await router.route(ev({ platformId: 'new' }))).toEqual([]);
    expect(findMessagingGroup(db, 'chat', 'new')).toBeNull();
    await router.route(ev({ platformId: 'new', isMention: true }));
    expect(findMessagingGroup(db, 'chat', 'new')).not.toBeNull();
    await router.route(ev({ platformId: 'dm-1', isDirect: true }));
    expect(findMessagingGroup(db, 'chat', 'dm-1')?.isDirect).toBe(true);
  });

  it('pattern engage mode: matching text wakes, other text is dropped', async () => {
    wire('a', { engageMode: 'pattern', pattern: '^@?bot\\b' });
    expect(await router.route(ev({ text: 'nothing here' }))).toEqual([]);
    const [acc] = await router.route(ev({ text: 'bot, what time is it?' }));
    expect(acc).toMatchObject({ group: 'a', engaged: true, seq: 2 });
    expect(woken).toEqual([acc!.sessionId]);
  });

  it('mention mode engages only on mentions; accumulate stores the rest without waking', async () => {
    wire('a', { engageMode: 'mention', ignoredPolicy: 'accumulate' });
    const [quiet] = await router.route(ev({ text: 'background chatter' }));
    expect(quiet).toMatchObject({ engaged: false });
    expect(woken).toEqual([]);
    const [loud] = await router.route(ev({ text: '@bot summarize', isMention: true }));
    expect(loud!.sessionId).toBe(quiet!.sessionId);
    expect(woken).toEqual([loud!.sessionId]);
    const stored = rows(loud!.sessionId);
    expect(stored.map((r) => [r.content.text, r.trigger])).toEqual([
      ['background chatter', false],
      ['@bot summarize', true],
    ]);
    expect(stored.map((r) => r.seq)).toEqual([2, 4]);
  });

  it('mention-sticky keeps engaging a thread after the first mention, only in that thread', async () => {
    wire('a', { engageMode: 'mention-sticky', sessionMode: 'per-thread' });
    expect(await router.route(ev({ threadId: 't1', text: 'before' }))).toEqual([]);
    await router.route(ev({ threadId: 't1', isMention: true, text: '@bot hi' }));
    const [follow] = await router.route(ev({ threadId: 't1', text: 'and also' }));
    expect(follow?.engaged).toBe(true);
    expect(await router.route(ev({ threadId: 't2', text: 'other thread' }))).toEqual([]);
  });

  it('session modes: shared per chat, one per thread, one per agent group across chats', async () => {
    const { group: shared } = wire('shared', { engageMode: 'pattern', pattern: '.*', sessionMode: 'shared' });
    const { group: perThread } = wire('threads', {
      engageMode: 'pattern',
      pattern: '.*',
      sessionMode: 'per-thread',
    });
    const { group: agent } = wire('agent', {
      engageMode: 'pattern',
      pattern: '.*',
      sessionMode: 'agent-shared',
    });
    const mg2 = ensureMessagingGroup(db, 'chat', 'room-2');
    createWiring(db, mg2.id, agent.id, { engageMode: 'pattern', pattern: '.*', sessionMode: 'agent-shared' });
    await router.route(ev({ threadId: 't1' }));
    await router.route(ev({ threadId: 't2' }));
    await router.route(ev({ platformId: 'room-2', threadId: 't9' }));
    const count = (g: string) => listSessions(db, g).length;
    expect(count(shared.id)).toBe(1);
    expect(count(perThread.id)).toBe(2);
    expect(count(agent.id)).toBe(1);
    const agentSession = listSessions(db, agent.id)[0]!;
    expect(rows(agentSession.id).map((r) => r.routing.platformId)).toEqual(['room-1', 'room-1', 'room-2']);
  });

  it('an event delivered again (same chat, same platform id) is queued once; the same id in another chat is not a repeat', async () => {
    const { group } = wire('agent', { engageMode: 'pattern', pattern: '.*', sessionMode: 'agent-shared' });
    createWiring(db, ensureMessagingGroup(db, 'chat', 'room-2').id, group.id, {
      engageMode: 'pattern',
      pattern: '.*',
      sessionMode: 'agent-shared',
    });
    const [first] = await router.route(ev({ platformMessageId: '42' }));
    const [again] = await router.route(ev({ platformMessageId: '42' }));
    expect(again).toMatchObject({
      sessionId: first!.sessionId,
      messageId: first!.messageId,
      seq: first!.seq,
    });
    await router.route(ev({ platformId: 'room-2', platformMessageId: '42' })); // ids are per chat
    await router.route(ev({ platformMessageId: '43' }));
    expect(rows(first!.sessionId).map((r) => [r.routing.platformId, r.content.platformMessageId])).toEqual([
      ['room-1', '42'],
      ['room-2', '42'],
      ['room-1', '43'],
    ]);
  });

  it('fans one event out to every engaged wiring, each with its own session and routing', async () => {
    wire('a', { engageMode: 'pattern', pattern: 'hello' });
    wire('b', { engageMode: 'mention' });
    wire('c', { engageMode: 'pattern', pattern: 'hello', sessionMode: 'per-thread' });
    const acc = await router.route(ev({ threadId: 'th' }));
    expect(acc.map((a) => a.group).sort()).toEqual(['a', 'c']);
    expect(new Set(acc.map((a) => a.sessionId)).size).toBe(2);
    for (const a of acc) {
      const [row] = rows(a.sessionId);
      expect(row!.routing).toEqual({ channelType: 'chat', platformId: 'room-1', threadId: 'th' });
      expect(getSession(db, a.sessionId).agentGroupId).toBeDefined();
    }
    expect(woken.sort()).toEqual(acc.map((a) => a.sessionId).sort());
  });

  it('a fan-out cut short by a failing wiring still wakes what it queued; the event sent again wakes all', async () => {
    wire('a', { engageMode: 'pattern', pattern: 'hello' });
    wire('b', { engageMode: 'pattern', pattern: 'hello' });
    // The second wiring of the fan-out fails, whichever it is (their order is not fixed).
    let calls = 0;
    const flaky = new Router({
      db,
      log: createLogger({ level: 'error' }),
      queueFor: (session) => {
        if (++calls === 2) throw new Error('ENOSPC: no inotify watches left');
        let q = queues.get(session.id);
        if (!q) queues.set(session.id, (q = new SessionQueue(path.join(kit.dir, session.id))));
        return q;
      },
      wake: (id) => woken.push(id),
    });
    const event = ev({ platformMessageId: 'pm-1' });
    await expect(flaky.route(event)).rejects.toThrow(/ENOSPC/);
    expect(woken).toHaveLength(1);
    const acc = await flaky.route(event); // the platform sends it again
    expect(acc).toHaveLength(2);
    expect(new Set(woken)).toEqual(new Set(acc.map((x) => x.sessionId)));
    for (const x of acc) expect(rows(x.sessionId)).toHaveLength(1);
  });

  it('a pattern that backtracks for ever is stopped after its time limit (no match); other chats go on', async () => {
    wire('slow', { engageMode: 'pattern', pattern: '(a+)+$' });
    const t0 = Date.now();
    expect(await router.route(ev({ text: 'a'.repeat(40) + '!' }))).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2000); // unguarded: minutes
    const [hit] = await router.route(ev({ text: 'aaaa' }));
    expect(hit?.engaged).toBe(true);
  });

  it('a pattern quadratic on a long near-miss is stopped after its time limit (no match)', async () => {
    wire('near', { engageMode: 'pattern', pattern: 'x+y' });
    const t0 = Date.now();
    expect(await router.route(ev({ text: 'x'.repeat(100_000) }))).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2000); // unguarded: ~10 s
    const [hit] = await router.route(ev({ text: 'xxy' }));
    expect(hit?.engaged).toBe(true);
  });

  it('only patterns that may backtrack pay for the guard', () => {
    for (const p of ['.*', '^@?bot\\b', '^(hi|hello)\\b', 'help[+*]me', 'a{2,3}', 'bot.*', '^\\s+$', 'x+?'])
      expect(mayBacktrack(p), p).toBe(false);
    for (const p of ['(a+)+$', '(x|xx)*y', '\\s+\\w+', '.*.*x', '(\\w)\\1', 'a{2,}b+'])
      expect(mayBacktrack(p), p).toBe(true);
    // One unbounded quantifier with something after it that can fail: quadratic, unanchored.
    for (const p of ['x+y', 'a.*b', '\\s+$', 'bot.*\\?', 'remind.*tomorrow', '^a|x+y', 'a{3,}b'])
      expect(mayBacktrack(p), p).toBe(true);
    // Several bounded ones multiply their choices; a group's opener is no quantifier.
    for (const p of ['.{0,30}.{0,30}.{0,30}!', 'a?a?a?a?aaaa', '.{0,50}z', '(?:ab)+', '(?<w>a+)b'])
      expect(mayBacktrack(p), p).toBe(true);
    for (const p of [
      'colou?r',
      '(?:hi|hello) bot',
      '(?<name>hi)',
      'a{3}b',
      '\\d{4}-\\d{2}-\\d{2}',
      '^.{2000}!',
    ])
      expect(mayBacktrack(p), p).toBe(false);
    // A long exact count, or a long minimum at the end, is scanned again from every position.
    for (const p of ['.{200}!', 'a.{2000,}', 'a.{20,}']) expect(mayBacktrack(p), p).toBe(true);
  });

  it('rejects a bad pattern when the wiring is saved, not at message time', () => {
    const g = createGroup(db, 'a', { provider: 'mock' });
    const mg = ensureMessagingGroup(db, 'chat', 'room-1');
    expect(() => createWiring(db, mg.id, g.id, { engageMode: 'pattern', pattern: '(unclosed' })).toThrow(
      /invalid pattern/,
    );
    expect(() => createWiring(db, mg.id, g.id, { engageMode: 'pattern' })).toThrow(/needs --pattern/);
    const w = createWiring(db, mg.id, g.id, { engageMode: 'mention' });
    expect(() => updateWiring(db, w.id, { engageMode: 'pattern', pattern: '[' })).toThrow(/invalid pattern/);
    // Checked in every mode (a later --engage pattern would use it), and at most 500 characters.
    expect(() => createWiring(db, mg.id, g.id, { engageMode: 'mention', pattern: '([' })).toThrow(
      /invalid pattern/,
    );
    expect(() => createWiring(db, mg.id, g.id, { engageMode: 'pattern', pattern: 'x'.repeat(501) })).toThrow(
      /at most 500 characters \(got 501\)/,
    );
  });

  it('sender scope: members and admins only', async () => {
    const { group } = wire('a', { engageMode: 'pattern', pattern: '.*', senderScope: 'members' });
    expect(await router.route(ev({ sender: { id: 'stranger' } }))).toEqual([]);
    const u = ensureUser(db, 'chat', 'friend');
    addMembership(db, u.id, findMessagingGroup(db, 'chat', 'room-1')!.id);
    expect(await router.route(ev({ sender: { id: 'friend' } }))).toHaveLength(1);
    const admin = ensureUser(db, 'chat', 'boss');
    grantRole(db, admin.id, 'admin', group.id);
    const [a] = await router.route(ev({ sender: { id: 'boss' } }));
    expect(rows(a!.sessionId).at(-1)!.content.sender?.isAdmin).toBe(true);
  });

  it('a known sender costs no write; a new name is stored; the session records its activity', async () => {
    wire('a', { engageMode: 'pattern', pattern: '.*' });
    const [first] = await router.route(ev());
    const before = getSession(db, first!.sessionId).lastActiveAt;
    const writes = () => (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    const n = writes();
    expect(ensureUser(db, 'chat', 'u1', 'Ann')).toMatchObject({ displayName: 'Ann' });
    expect(ensureUser(db, 'chat', 'u1')).toMatchObject({ displayName: 'Ann' });
    expect(writes()).toBe(n);
    const renamed = ensureUser(db, 'chat', 'u1', 'Ann B.');
    expect(renamed).toMatchObject({ id: ensureUser(db, 'chat', 'u1').id, displayName: 'Ann B.' });
    await new Promise((r) => setTimeout(r, 5));
    await router.route(ev());
    expect(getSession(db, first!.sessionId).lastActiveAt).toBeGreaterThan(before);
  });

  it('stores attachments in inbox/<folder>/ under plain names, each its own', async () => {
    wire('a', { engageMode: 'pattern', pattern: '.*' });
    wire('b', { engageMode: 'pattern', pattern: '.*' });
    const files = [
      ['notes.txt', 'hi'],
      ['image.png', '1'],
      ['image.png', '2'],
      ['IMAGE.png', '3'],
      ['../../escape', 'x'],
      ['..', 'dots'],
      ['a\u0000b\nc.md', 'ctl'],
      ['y'.repeat(300) + '.pdf', 'long'],
      ['界'.repeat(150) + '.txt', 'wide'],
      ['caf\u00e9.png', 'nfc'], // é composed …
      ['cafe\u0301.png', 'nfd'], // … and decomposed: one name where a file system normalizes (macOS)
    ] as const;
    const accs = await router.route(
      ev({ attachments: files.map(([name, text]) => ({ name, data: Buffer.from(text) })) }),
    );
    expect(accs).toHaveLength(2); // one file name is no reason to lose the message for any group
    for (const acc of accs) {
      const [row] = rows(acc.sessionId);
      const refs = row!.content.attachments;
      const dir = path.dirname(refs[0]!.path);
      expect(dir).toMatch(/^inbox\/[0-9a-f-]+$/);
      expect(refs.map((r) => path.relative(dir, r.path))).toEqual([
        'notes.txt',
        'image.png',
        'image-2.png',
        'IMAGE-3.png',
        'escape',
        'file',
        'abc.md',
        'y'.repeat(196) + '.pdf',
        '界'.repeat(65) + '.txt', // 199 bytes: the file system's limit is in bytes
        'caf\u00e9.png',
        'cafe\u0301-2.png',
      ]);
      expect(refs.map((r) => r.name)).toEqual(files.map(([name]) => name));
      const q = queues.get(acc.sessionId)!;
      expect(refs.map((r) => fs.readFileSync(path.join(q.dir, r.path), 'utf8'))).toEqual(
        files.map(([, t]) => t),
      );
    }
  });
});

describe('answers to open questions', () => {
  const ask = (
    sessionId: string,
    questionId: string,
    options: string[],
    adminOnly = false,
    at = Date.now(),
    openMs = 60_000,
  ) =>
    recordQuestion(
      db,
      {
        questionId,
        sessionId,
        routing: { channelType: 'chat', platformId: 'room-1', threadId: null },
        options,
        expiresAt: at + openMs,
        adminOnly,
      },
      at,
    );
  function twoSessions() {
    const a = wire('a', { engageMode: 'mention' });
    const b = wire('b', { engageMode: 'mention' });
    const mg = findMessagingGroup(db, 'chat', 'room-1')!;
    return [a, b].map((x) => resolveSession(db, x.group.id, 'shared', mg.id, null).session.id);
  }
  const answers = (sessionId: string) =>
    (queues.get(sessionId)?.pending() ?? []).filter((m) => m.kind === 'answer').map((m) => m.content.answer);

  it('a reply that answered a question, delivered again, is that answer: not queued as a new message', async () => {
    const [sa] = twoSessions();
    wire('c', { engageMode: 'pattern', pattern: '.*' });
    ask(sa!, 'q-a', ['Yes', 'No']);
    const reply = ev({ text: '1', platformMessageId: 'pm-answer' });
    const first = await router.route(reply);
    expect(first).toEqual([expect.objectContaining({ answered: true, sessionId: sa, messageId: 'q-a' })]);
    woken.length = 0;
    // The platform (or an agent chat replayed after a crash) sends the same message again.
    expect(await router.route(reply)).toEqual(first);
    expect(answers(sa!)).toEqual([{ questionId: 'q-a', text: 'Yes' }]);
    for (const q of queues.values()) expect(q.pending().filter((m) => m.kind === 'chat')).toEqual([]);
    expect(woken).toEqual([]);
    // Another message with the same words is a message of its own.
    const [other] = await router.route(ev({ text: '1', platformMessageId: 'pm-next' }));
    expect(other).toMatchObject({ engaged: true, group: 'c' });
  });

  it('a message delivered again does not answer a question asked after it was first queued', async () => {
    // A platform's webhook retry, or an agent chat replayed after a crash: the person never saw
    // the question, so their earlier "yes" must not approve or answer it.
    wire('a', { engageMode: 'pattern', pattern: '.*' });
    const msg = ev({ text: 'yes', platformMessageId: 'pm-early' });
    const [first] = await router.route(msg);
    expect(first).toMatchObject({ engaged: true, group: 'a' });
    ask(first!.sessionId, 'q-late', ['yes', 'no']);
    expect(await router.route(msg)).toEqual([first]);
    expect(answers(first!.sessionId)).toEqual([]);
    expect(getQuestion(db, 'q-late')).not.toBeNull(); // still open
    expect(rows(first!.sessionId).filter((m) => m.kind === 'chat')).toHaveLength(1);
  });

  it('a reply answers the oldest question it fits, not only the oldest question of the chat', async () => {
    const [sa, sb] = twoSessions();
    ask(sa!, 'q-a', ['Yes', 'No'], false, Date.now() - 1000);
    ask(sb!, 'q-b', ['Red', 'Blue']);
    const [r] = await router.route(ev({ text: 'blue' }));
    expect(r).toMatchObject({ answered: true, sessionId: sb });
    expect(answers(sb!)).toEqual([{ questionId: 'q-b', text: 'Blue' }]);
    expect(answers(sa!)).toEqual([]);
  });

  it('a person who may not answer an older approval answers the newer question they may', async () => {
    const [sa, sb] = twoSessions();
    ask(sa!, 'approval', ['Allow', 'Deny'], true, Date.now() - 1000);
    ask(sb!, 'q-b', ['one day', 'two days']);
    const [r] = await router.route(ev({ text: '2' }));
    expect(r).toMatchObject({ answered: true, sessionId: sb });
    expect(answers(sb!)).toEqual([{ questionId: 'q-b', text: 'two days' }]);
    // Only the approval fits: refused (received, nothing queued), and told so, with the relays
    // behind the refused message (an agent chat's loop guard counts on).
    expect(await router.route(ev({ text: 'allow', platformMessageId: 'pm-9', hops: 2 }))).toEqual([
      { group: expect.any(String), sessionId: sa, messageId: '', seq: 0, engaged: false, refused: true },
    ]);
    expect(kit.told.map((t) => [t.text, t.hops])).toEqual([
      ['Only an admin of this group can answer an approval request.', 2],
    ]);
  });

  it("only senders the group listens to in the chat (its wiring's scope) may answer its questions", async () => {
    const { group } = wire('a', { engageMode: 'pattern', pattern: '.*', senderScope: 'members' });
    const mg = findMessagingGroup(db, 'chat', 'room-1')!;
    const sid = resolveSession(db, group.id, 'shared', mg.id, null).session.id;
    ask(sid, 'q', ['Yes', 'No']);
    // A stranger's "1" is neither an answer nor (outside the scope) a message for the group.
    expect(await router.route(ev({ text: '1', sender: { id: 'stranger' } }))).toEqual([]);
    expect(await router.answer('q', 'Yes', { id: 'stranger' })).toBe(false);
    expect(answers(sid)).toEqual([]);
    addMembership(db, ensureUser(db, 'chat', 'friend').id, mg.id);
    const [r] = await router.route(ev({ text: '2', sender: { id: 'friend' } }));
    expect(r).toMatchObject({ answered: true });
    expect(answers(sid)).toEqual([{ questionId: 'q', text: 'No' }]);
  });

  it('a question stays open at most a day, whatever deadline the sandbox wrote', () => {
    const [sa] = twoSessions();
    const now = Date.now();
    ask(sa!, 'forever', ['1', '2'], false, now, 10 * 365 * 86_400_000);
    expect(getQuestion(db, 'forever', now + 23 * 3_600_000)).not.toBeNull();
    expect(MAX_QUESTION_OPEN_MS).toBeLessThan(25 * 3_600_000);
    expect(getQuestion(db, 'forever', now + 25 * 3_600_000)).toBeNull();
  });
});

/**
 * The host's command gate: native agent slash commands (/compact, /context, /cost) act on the
 * agent's own session, so the router refuses them from non-admins (with a reply saying so)
 * before anything is queued; admins' pass through to the session like any message.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboundEvent } from '../src/channels/adapter.js';
import type { Db } from '../src/host/db/open.js';
import type { Router } from '../src/host/router.js';
import type { SessionQueue } from '../src/host/session-queue.js';
import { createGroup } from '../src/host/store/groups.js';
import { createWiring, ensureMessagingGroup } from '../src/host/store/messaging.js';
import { ensureUser, grantRole } from '../src/host/store/users.js';
import { slashCommandRefusal } from '../src/shared/slash-commands.js';
import { routerKit, type RouterKit } from './support/router-kit.js';

let kit: RouterKit;
let db: Db;
let router: Router;
let woken: string[];
let told: RouterKit['told'];
let queues: Map<string, SessionQueue>;

beforeEach(() => {
  kit = routerKit('polyclaw-gate-');
  ({ db, router, woken, told, queues } = kit);
  const g = createGroup(db, 'asst', { provider: 'claude' });
  createWiring(db, ensureMessagingGroup(db, 'chat', 'room-1').id, g.id, {
    engageMode: 'pattern',
    pattern: '.*',
  });
  grantRole(db, ensureUser(db, 'chat', 'boss', 'Boss').id, 'admin', g.id);
});
afterEach(() => kit.close());

const ev = (sender: string, text: string, over: Partial<InboundEvent> = {}): InboundEvent => ({
  channelType: 'chat',
  platformId: 'room-1',
  threadId: null,
  sender: { id: sender, name: sender },
  text,
  attachments: [],
  isMention: false,
  platformMessageId: `pm-${text}`,
  ...over,
});
const queued = () => [...queues.values()].flatMap((q) => q.pending().map((r) => r.content.text));

describe('command gate', () => {
  it.each(['/compact', '/context', '/cost', '  /compact keep the todo list'])(
    'refuses %j from a non-admin with a reply, queues and wakes nothing',
    async (text) => {
      expect(await router.route(ev('guest', text))).toEqual([
        {
          group: 'asst',
          sessionId: expect.any(String),
          messageId: '',
          seq: 0,
          engaged: false,
          refused: true,
        },
      ]);
      expect(queued()).toEqual([]);
      expect(woken).toEqual([]);
      const cmd = text.trim().split(/\s/)[0]!.slice(1);
      expect(told).toEqual([
        {
          key: `refused:["chat","room-1",null,"pm-${text}"]`,
          routing: { channelType: 'chat', platformId: 'room-1', threadId: null },
          text: slashCommandRefusal(cmd),
          replyTo: `pm-${text}`,
        },
      ]);
      expect(told[0]!.text).toMatch(/only an admin/);
    },
  );

  it('a refusal is told once per message of each chat: the same platform id in another chat is another message', async () => {
    // Platform ids are unique within a chat only; a session of the group can span chats.
    const g = createGroup(db, 'everywhere', { provider: 'claude' });
    for (const room of ['room-2', 'room-3'])
      createWiring(db, ensureMessagingGroup(db, 'chat', room).id, g.id, {
        engageMode: 'pattern',
        pattern: '.*',
        sessionMode: 'agent-shared',
      });
    await router.route(ev('guest', '/cost', { platformId: 'room-2', platformMessageId: 'pm-7' }));
    await router.route(ev('guest', '/cost', { platformId: 'room-3', platformMessageId: 'pm-7' }));
    expect(told.map((t) => t.routing.platformId)).toEqual(['room-2', 'room-3']);
    expect(new Set(told.map((t) => t.key)).size).toBe(2);
  });

  it('passes native commands from admins (by role or as flagged by the channel) to the session', async () => {
    const [byRole] = await router.route(ev('boss', '/compact'));
    expect(byRole).toMatchObject({ group: 'asst', engaged: true });
    await router.route(ev('someone', '/cost', { sender: { id: 'someone', isAdmin: true } }));
    expect(queued()).toEqual(['/compact', '/cost']);
    expect(told).toEqual([]);
  });

  it('lets everything else through from non-admins: /clear, unknown commands, plain text', async () => {
    for (const text of ['/clear', '/compactify', 'what does /compact do?', 'hello'])
      expect(await router.route(ev('guest', text))).toHaveLength(1);
    expect(queued()).toEqual(['/clear', '/compactify', 'what does /compact do?', 'hello']);
    expect(told).toEqual([]);
  });
});

/** Agent groups messaging each other through granted destinations, with the loop guard. */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCentralDb } from '../src/host/db/open.js';
import { addAgentDestination, removeDestination } from '../src/host/store/destinations.js';
import { createGroup } from '../src/host/store/groups.js';
import { findMessagingGroup, listWirings, mayPostTo } from '../src/host/store/messaging.js';
import { listSessions, resolveSession } from '../src/host/store/sessions.js';
import { runOp } from '../src/host/admin-ops.js';
import { loadConfig } from '../src/host/config.js';
import { cli, startHostProc, tempHome, waitFor, type HostProc } from './support/cli.js';

const FENCE = '```';

describe('agent destinations', () => {
  let home: string;
  let host: HostProc;

  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'error' });
    expect(cli(home, ['groups', 'create', 'helper', '--provider', 'mock']).code).toBe(0);
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const inbound = (group: string) => {
    const dir = path.join(home, 'sessions', group);
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).flatMap((s) => {
      // The host creates the session dir a moment before its inbound.db and the schema in it.
      const file = path.join(dir, s, 'inbound.db');
      if (!fs.existsSync(file)) return [];
      const db = new Database(file, { readonly: true });
      try {
        if (!db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'messages_in'`).get()) return [];
        return db
          .prepare(`SELECT routing, content FROM messages_in WHERE kind = 'chat' ORDER BY seq`)
          .all() as Array<{ routing: string; content: string }>;
      } finally {
        db.close();
      }
    });
  };

  it('refuses bad grants with one-line errors', () => {
    expect(
      cli(home, ['destinations', 'add', '--group', 'main', '--name', 'x', '--agent', 'nobody']).stderr,
    ).toMatch(/no group "nobody"/);
    expect(
      cli(home, ['destinations', 'add', '--group', 'main', '--name', 'origin', '--agent', 'helper']).code,
    ).toBe(2);
    expect(
      cli(home, [
        'destinations',
        'add',
        '--group',
        'main',
        '--name',
        'x',
        '--agent',
        'helper',
        '--channel',
        'c',
        '--platform-id',
        'p',
      ]).stderr,
    ).toMatch(/not both/);
    expect(cli(home, ['destinations', 'add', '--group', 'main', '--name', 'x']).stderr).toMatch(
      /needs --agent/,
    );
  });

  it('a granted group receives the message, its answer comes back, and the loop guard ends the exchange', async () => {
    const add = cli(home, [
      'destinations',
      'add',
      '--group',
      'main',
      '--name',
      'helper',
      '--agent',
      'helper',
      '--json',
    ]);
    expect(add.json.result).toMatchObject({
      group: 'main',
      name: 'helper',
      kind: 'agent',
      channel: 'agent',
      platformId: 'main->helper',
    });
    const call = {
      tools: [{ name: 'send_message', args: { text: 'please summarize', to: 'helper' } }],
      reply: '',
    };
    const r = cli(home, [
      'chat',
      '-m',
      `delegate\n${FENCE}mock\n${JSON.stringify(call)}\n${FENCE}`,
      '--json',
    ]);
    expect(r.json.result).toMatchObject({ status: 'completed', replies: [] });
    await waitFor(
      () => inbound('main').some((m) => JSON.parse(m.routing).channelType === 'agent'),
      15_000,
      'answer from helper',
    );
    const fromHelper = inbound('main').filter((m) => JSON.parse(m.routing).channelType === 'agent');
    expect(JSON.parse(fromHelper[0]!.content)).toMatchObject({
      text: 'echo: please summarize',
      sender: { id: 'agent:helper' },
    });
    const helperGot = inbound('helper').map((m) => JSON.parse(m.content).text);
    expect(helperGot[0]).toBe('please summarize');
    // Echo agents would answer each other forever; the guard stops the relay after a few hops.
    await new Promise((res) => setTimeout(res, 2500));
    const total = inbound('main').length + inbound('helper').length;
    await new Promise((res) => setTimeout(res, 1500));
    expect(inbound('main').length + inbound('helper').length).toBe(total);
    expect(total).toBeLessThanOrEqual(5);
  });
});

describe('removing an agent destination', () => {
  const agentChat = (platformId: string) => ({ channelType: 'agent', platformId, threadId: null });
  it('deleting a group unwires the agent chats with it and tells the running sessions of the others', async () => {
    const h = tempHome();
    const db = openCentralDb(':memory:');
    try {
      const changed: string[] = [];
      const deletedSessions: string[] = [];
      const services = {
        sessionQueue: () => {
          throw new Error('no sessions here');
        },
        wake: () => {},
        sandboxes: () => [],
        stopSandbox: async () => {},
        sessionDeleted: (id: string) => void deletedSessions.push(id),
        groupChanged: (id: string) => void changed.push(id),
        runtimeName: 'none',
      };
      const ctx = { db, config: loadConfig({ POLYCLAW_HOME: h }), host: services };
      const a = createGroup(db, 'a', { provider: 'mock' });
      const b = createGroup(db, 'b', { provider: 'mock' });
      addAgentDestination(db, a, 'helper', b);
      addAgentDestination(db, b, 'boss', a);
      // a's conversation with b: its session on the chat b writes to.
      const onChat = (g: typeof a, chat: string) =>
        resolveSession(db, g.id, 'shared', findMessagingGroup(db, 'agent', chat)!.id, null);
      const withOldB = onChat(a, 'b->a').session;
      await runOp(ctx, 'groups.delete', { name: 'b' });
      expect(mayPostTo(db, a.id, agentChat('b->a'))).toBe(false);
      expect(listWirings(db).filter((w) => w.channelType === 'agent')).toEqual([]);
      expect(changed).toEqual([a.id]);
      // It went with b: a new group b given a as a destination starts a new conversation.
      expect(deletedSessions).toContain(withOldB.id);
      expect(listSessions(db, a.id).map((x) => x.id)).not.toContain(withOldB.id);
      const newB = createGroup(db, 'b', { provider: 'mock' });
      addAgentDestination(db, newB, 'boss', a);
      expect(onChat(a, 'b->a')).toMatchObject({ created: true });
    } finally {
      db.close();
      fs.rmSync(h, { recursive: true, force: true });
    }
  });

  it('unwires both agent chats, unless the other group still has its own grant back', () => {
    const db = openCentralDb(':memory:');
    try {
      const a = createGroup(db, 'a', { provider: 'mock' });
      const b = createGroup(db, 'b', { provider: 'mock' });
      // Either group could still post into an agent chat it is wired to, and so reach the other.
      const reach = () => [mayPostTo(db, b.id, agentChat('a->b')), mayPostTo(db, a.id, agentChat('b->a'))];
      addAgentDestination(db, a, 'helper', b);
      addAgentDestination(db, b, 'boss', a);
      expect(reach()).toEqual([true, true]);
      removeDestination(db, a, 'helper');
      expect(reach()).toEqual([true, true]); // b's grant to a uses the same two chats
      removeDestination(db, b, 'boss');
      expect(reach()).toEqual([false, false]);
      expect(mayPostTo(db, a.id, agentChat('a->b'))).toBe(false);
      expect(() => removeDestination(db, a, 'helper')).toThrow(/group a has no destination "helper"/);
    } finally {
      db.close();
    }
  });
});

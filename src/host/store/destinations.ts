/**
 * Destinations: names an agent group may address besides the chats it is wired to. A chat
 * destination points at a messaging group; an agent destination wires the two agent chats
 * ("A->B" to B, "B->A" to A) that carry the conversation between the groups.
 */
import { AGENT_CHANNEL } from '../../shared/messages.js';
import { prep } from '../../shared/sql.js';
import { agentChatId, parseAgentChat } from '../../channels/agent.js';
import { badRequest, conflict, notFound } from '../../shared/errors.js';
import type { Db } from '../db/open.js';
import { getGroup, type AgentGroup } from './groups.js';
import {
  createWiring,
  deleteWiring,
  ensureMessagingGroup,
  findMessagingGroup,
  listMessagingGroups,
  wiringsForMessagingGroup,
} from './messaging.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/;

export interface DestinationRow {
  group: string;
  name: string;
  kind: 'chat' | 'agent';
  channel: string;
  platformId: string;
  threadId: string | null;
}

function check(db: Db, group: AgentGroup, name: string): void {
  if (!NAME.test(name) || name === 'origin')
    throw badRequest(
      `destination name "${name}" must be 1-63 letters, digits, "_", ".", ":" or "-" (and not "origin")`,
    );
  if (prep(db, 'SELECT 1 FROM destinations WHERE agent_group_id = ? AND name = ?').get(group.id, name)) {
    throw conflict(`group ${group.name} already has a destination "${name}"`);
  }
}

export function addChatDestination(
  db: Db,
  group: AgentGroup,
  name: string,
  channel: string,
  platformId: string,
  threadId: string | null = null,
): void {
  check(db, group, name);
  const mg = ensureMessagingGroup(db, channel, platformId);
  prep(
    db,
    `INSERT INTO destinations (agent_group_id, name, kind, messaging_group_id, thread_id) VALUES (?, ?, 'chat', ?, ?)`,
  ).run(group.id, name, mg.id, threadId);
}

export function addAgentDestination(db: Db, group: AgentGroup, name: string, target: AgentGroup): void {
  check(db, group, name);
  if (target.id === group.id) throw badRequest('a group cannot be its own agent destination');
  db.transaction(() => {
    const wire = (from: AgentGroup, to: AgentGroup) => {
      const mg = ensureMessagingGroup(db, AGENT_CHANNEL, agentChatId(from.name, to.name), { isDirect: true });
      if (!wiringsForMessagingGroup(db, mg.id).some((w) => w.agentGroupId === to.id)) {
        createWiring(db, mg.id, to.id, { engageMode: 'pattern', pattern: '.*', sessionMode: 'shared' });
      }
      return mg;
    };
    const forward = wire(group, target);
    wire(target, group);
    prep(
      db,
      `INSERT INTO destinations (agent_group_id, name, kind, messaging_group_id, target_agent_group_id) VALUES (?, ?, 'agent', ?, ?)`,
    ).run(group.id, name, forward.id, target.id);
  })();
}

/**
 * Removing an agent destination also unwires its two agent chats, unless the other group still
 * has an agent destination of its own back to this one (the same two chats carry both grants):
 * a wiring left behind would let either group keep posting to the other.
 */
export function removeDestination(db: Db, group: AgentGroup, name: string): void {
  db.transaction(() => {
    const row = prep(
      db,
      'SELECT kind, target_agent_group_id AS target FROM destinations WHERE agent_group_id = ? AND name = ?',
    ).get(group.id, name) as { kind: string; target: string | null } | undefined;
    if (!row) throw notFound(`group ${group.name} has no destination "${name}"`);
    prep(db, 'DELETE FROM destinations WHERE agent_group_id = ? AND name = ?').run(group.id, name);
    if (row.kind !== 'agent' || !row.target) return;
    const granted = (from: string, to: string) =>
      !!prep(
        db,
        `SELECT 1 FROM destinations WHERE agent_group_id = ? AND kind = 'agent' AND target_agent_group_id = ?`,
      ).get(from, to);
    if (granted(group.id, row.target) || granted(row.target, group.id)) return;
    const target = getGroup(db, row.target);
    const unwire = (from: AgentGroup, to: AgentGroup) => {
      const mg = findMessagingGroup(db, AGENT_CHANNEL, agentChatId(from.name, to.name));
      if (!mg) return;
      for (const w of wiringsForMessagingGroup(db, mg.id))
        if (w.agentGroupId === to.id) deleteWiring(db, w.id);
    };
    unwire(group, target);
    unwire(target, group);
  })();
}

/** The agent chats with `group` on either side (`from->to` names it). */
export function agentChatsOf(db: Db, group: AgentGroup): string[] {
  return listMessagingGroups(db).flatMap((mg) => {
    const chat = mg.channelType === AGENT_CHANNEL ? parseAgentChat(mg.platformId) : null;
    return chat && (chat.from === group.name || chat.to === group.name) ? [mg.id] : [];
  });
}

/**
 * A group is going away: the other groups' wirings on the agent chats with it go too (its own
 * go with the group). Left behind, a group of that name made later would find them there.
 */
export function unwireAgentChatsOf(db: Db, group: AgentGroup): void {
  for (const id of agentChatsOf(db, group))
    for (const w of wiringsForMessagingGroup(db, id)) deleteWiring(db, w.id);
}

export function listDestinations(db: Db): DestinationRow[] {
  return (
    prep(
      db,
      `SELECT g.name AS grp, d.name, d.kind, d.thread_id, m.channel_type, m.platform_id FROM destinations d
         JOIN agent_groups g ON g.id = d.agent_group_id JOIN messaging_groups m ON m.id = d.messaging_group_id ORDER BY g.name, d.name`,
    ).all() as Array<{
      grp: string;
      name: string;
      kind: 'chat' | 'agent';
      thread_id: string | null;
      channel_type: string;
      platform_id: string;
    }>
  ).map((r) => ({
    group: r.grp,
    name: r.name,
    kind: r.kind,
    channel: r.channel_type,
    platformId: r.platform_id,
    threadId: r.thread_id,
  }));
}

/**
 * Messaging groups (a chat on a platform) and wirings (chat ↔ agent group, with how the agent
 * engages). A wiring's pattern is compiled when the wiring is saved, so a bad regex is a
 * clear error to the admin instead of a failure on some later message.
 */
import { prep } from '../../shared/sql.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { badRequest, conflict, notFound } from '../../shared/errors.js';
import type { Db } from '../db/open.js';
import type { Routing } from '../../shared/messages.js';

export interface MessagingGroup {
  id: string;
  channelType: string;
  platformId: string;
  name: string | null;
  isDirect: boolean;
}

export const EngageMode = z.enum(['pattern', 'mention', 'mention-sticky']);
export const SessionMode = z.enum(['shared', 'per-thread', 'agent-shared']);
export const SenderScope = z.enum(['all', 'members', 'admins']);
export const IgnoredPolicy = z.enum(['drop', 'accumulate']);

export const WiringInput = z.object({
  engageMode: EngageMode.default('pattern'),
  pattern: z.string().nullable().default(null),
  sessionMode: SessionMode.default('shared'),
  senderScope: SenderScope.default('all'),
  ignoredPolicy: IgnoredPolicy.default('drop'),
});
export type WiringInput = z.infer<typeof WiringInput>;

export interface Wiring extends WiringInput {
  id: string;
  messagingGroupId: string;
  agentGroupId: string;
}

interface MgRow {
  id: string;
  channel_type: string;
  platform_id: string;
  name: string | null;
  is_direct: number;
}
interface WRow {
  id: string;
  messaging_group_id: string;
  agent_group_id: string;
  engage_mode: string;
  pattern: string | null;
  session_mode: string;
  sender_scope: string;
  ignored_policy: string;
}

const mg = (r: MgRow): MessagingGroup => ({
  id: r.id,
  channelType: r.channel_type,
  platformId: r.platform_id,
  name: r.name,
  isDirect: r.is_direct === 1,
});
const wiring = (r: WRow): Wiring => ({
  id: r.id,
  messagingGroupId: r.messaging_group_id,
  agentGroupId: r.agent_group_id,
  engageMode: r.engage_mode as Wiring['engageMode'],
  pattern: r.pattern,
  sessionMode: r.session_mode as Wiring['sessionMode'],
  senderScope: r.sender_scope as Wiring['senderScope'],
  ignoredPolicy: r.ignored_policy as Wiring['ignoredPolicy'],
});

export function findMessagingGroup(db: Db, channelType: string, platformId: string): MessagingGroup | null {
  const r = prep(db, 'SELECT * FROM messaging_groups WHERE channel_type = ? AND platform_id = ?').get(
    channelType,
    platformId,
  ) as MgRow | undefined;
  return r ? mg(r) : null;
}

export function getMessagingGroup(db: Db, id: string): MessagingGroup | null {
  const r = prep(db, 'SELECT * FROM messaging_groups WHERE id = ?').get(id) as MgRow | undefined;
  return r ? mg(r) : null;
}

export function ensureMessagingGroup(
  db: Db,
  channelType: string,
  platformId: string,
  opts: { name?: string | null; isDirect?: boolean } = {},
  now = Date.now(),
): MessagingGroup {
  prep(
    db,
    `INSERT INTO messaging_groups (id, channel_type, platform_id, name, is_direct, created_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(channel_type, platform_id) DO NOTHING`,
  ).run(randomUUID(), channelType, platformId, opts.name ?? null, opts.isDirect ? 1 : 0, now);
  return findMessagingGroup(db, channelType, platformId)!;
}

export function listMessagingGroups(db: Db): MessagingGroup[] {
  return (prep(db, 'SELECT * FROM messaging_groups ORDER BY channel_type, platform_id').all() as MgRow[]).map(
    mg,
  );
}

/** Compile-check a wiring's pattern; throws a one-line error the admin can act on. */
export function validateWiring(input: WiringInput): void {
  if (input.engageMode === 'pattern' && (input.pattern == null || input.pattern === ''))
    throw badRequest('engage mode "pattern" needs --pattern REGEX');
  // Checked in every mode: a pattern stored now is the one a later --engage pattern uses.
  if (input.pattern == null || input.pattern === '') return;
  if (input.pattern.length > MAX_PATTERN)
    throw badRequest(`a pattern is at most ${MAX_PATTERN} characters (got ${input.pattern.length})`);
  try {
    new RegExp(input.pattern, 'iu');
  } catch (err) {
    throw badRequest(
      // The engine's message repeats the pattern (`/…/iu: reason`): the reason alone follows ours.
      `invalid pattern /${input.pattern}/: ${(err as Error).message.replace(/^Invalid regular expression: \/[\s\S]*\/[a-z]*: /, '')}`,
    );
  }
}

const MAX_PATTERN = 500;

export function createWiring(
  db: Db,
  messagingGroupId: string,
  agentGroupId: string,
  input: z.input<typeof WiringInput>,
  now = Date.now(),
): Wiring {
  const w = WiringInput.parse(input);
  validateWiring(w);
  const exists = prep(db, 'SELECT 1 FROM wirings WHERE messaging_group_id = ? AND agent_group_id = ?').get(
    messagingGroupId,
    agentGroupId,
  );
  if (exists) throw conflict('this chat is already wired to that group');
  const id = randomUUID();
  prep(
    db,
    `INSERT INTO wirings (id, messaging_group_id, agent_group_id, engage_mode, pattern, session_mode, sender_scope, ignored_policy, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    id,
    messagingGroupId,
    agentGroupId,
    w.engageMode,
    w.pattern,
    w.sessionMode,
    w.senderScope,
    w.ignoredPolicy,
    now,
  );
  return getWiring(db, id);
}

export function getWiring(db: Db, id: string): Wiring {
  const r = prep(db, 'SELECT * FROM wirings WHERE id = ?').get(id) as WRow | undefined;
  if (!r) throw notFound(`no wiring ${id}`);
  return wiring(r);
}

export function updateWiring(db: Db, id: string, patch: Partial<z.input<typeof WiringInput>>): Wiring {
  const cur = getWiring(db, id);
  const w = WiringInput.parse({ ...cur, ...patch });
  validateWiring(w);
  prep(
    db,
    'UPDATE wirings SET engage_mode=?, pattern=?, session_mode=?, sender_scope=?, ignored_policy=? WHERE id=?',
  ).run(w.engageMode, w.pattern, w.sessionMode, w.senderScope, w.ignoredPolicy, id);
  return getWiring(db, id);
}

export function deleteWiring(db: Db, id: string): void {
  const r = prep(db, 'DELETE FROM wirings WHERE id = ?').run(id);
  if (r.changes === 0) throw notFound(`no wiring ${id}`);
}

export function wiringsForMessagingGroup(db: Db, messagingGroupId: string): Wiring[] {
  return (
    prep(db, 'SELECT * FROM wirings WHERE messaging_group_id = ? ORDER BY created_at, id').all(
      messagingGroupId,
    ) as WRow[]
  ).map(wiring);
}

export function listWirings(
  db: Db,
): Array<Wiring & { channelType: string; platformId: string; group: string }> {
  const rows = prep(
    db,
    `SELECT w.*, m.channel_type, m.platform_id, g.name AS group_name FROM wirings w
       JOIN messaging_groups m ON m.id = w.messaging_group_id JOIN agent_groups g ON g.id = w.agent_group_id
       ORDER BY g.name, m.channel_type, m.platform_id`,
  ).all() as Array<WRow & { channel_type: string; platform_id: string; group_name: string }>;
  return rows.map((r) => ({
    ...wiring(r),
    channelType: r.channel_type,
    platformId: r.platform_id,
    group: r.group_name,
  }));
}

export function isSticky(db: Db, wiringId: string, threadKey: string): boolean {
  return !!prep(db, 'SELECT 1 FROM sticky_threads WHERE wiring_id = ? AND thread_key = ?').get(
    wiringId,
    threadKey,
  );
}

export function markSticky(db: Db, wiringId: string, threadKey: string, now = Date.now()): void {
  prep(db, 'INSERT OR IGNORE INTO sticky_threads (wiring_id, thread_key, created_at) VALUES (?, ?, ?)').run(
    wiringId,
    threadKey,
    now,
  );
}

/**
 * May this agent group post to `to`? Anywhere in a chat it is wired to; through a destination,
 * in that chat — or only in the destination's thread when the grant names one.
 */
export function mayPostTo(db: Db, agentGroupId: string, to: Routing): boolean {
  const wired = prep(
    db,
    `SELECT 1 FROM wirings w JOIN messaging_groups m ON m.id = w.messaging_group_id
       WHERE w.agent_group_id = ? AND m.channel_type = ? AND m.platform_id = ?`,
  ).get(agentGroupId, to.channelType, to.platformId);
  if (wired) return true;
  return !!prep(
    db,
    `SELECT 1 FROM destinations d JOIN messaging_groups m ON m.id = d.messaging_group_id
       WHERE d.agent_group_id = ? AND m.channel_type = ? AND m.platform_id = ?
         AND (d.thread_id IS NULL OR d.thread_id IS ?)`,
  ).get(agentGroupId, to.channelType, to.platformId, to.threadId);
}

/**
 * Names the agent may address: every chat its group is wired to ("<channel>:<platformId>",
 * or the chat's name) and every destination granted to the group. The current chat is always
 * reachable as "origin" and is not listed here.
 */
export function destinationsFor(
  db: Db,
  agentGroupId: string,
): Array<{
  name: string;
  kind: string;
  routing: { channelType: string; platformId: string; threadId: string | null };
}> {
  const out = new Map<
    string,
    {
      name: string;
      kind: string;
      routing: { channelType: string; platformId: string; threadId: string | null };
    }
  >();
  const wired = prep(
    db,
    `SELECT m.channel_type, m.platform_id, m.name FROM wirings w JOIN messaging_groups m ON m.id = w.messaging_group_id
       WHERE w.agent_group_id = ? ORDER BY m.channel_type, m.platform_id`,
  ).all(agentGroupId) as Array<{ channel_type: string; platform_id: string; name: string | null }>;
  for (const r of wired) {
    // An agent chat "X->Y" wired to this group is where X talks to it: it is addressed as agent:X.
    const peer = r.channel_type === 'agent' ? /^(.+)->/.exec(r.platform_id)?.[1] : undefined;
    const name = r.name ?? (peer ? `agent:${peer}` : `${r.channel_type}:${r.platform_id}`);
    out.set(name, {
      name,
      kind: 'chat',
      routing: { channelType: r.channel_type, platformId: r.platform_id, threadId: null },
    });
  }
  const granted = prep(
    db,
    `SELECT d.name, d.kind, d.thread_id, m.channel_type, m.platform_id FROM destinations d
       LEFT JOIN messaging_groups m ON m.id = d.messaging_group_id WHERE d.agent_group_id = ?`,
  ).all(agentGroupId) as Array<{
    name: string;
    kind: string;
    thread_id: string | null;
    channel_type: string | null;
    platform_id: string | null;
  }>;
  for (const r of granted) {
    if (!r.channel_type || !r.platform_id) continue;
    out.set(r.name, {
      name: r.name,
      kind: r.kind,
      routing: { channelType: r.channel_type, platformId: r.platform_id, threadId: r.thread_id },
    });
  }
  return [...out.values()];
}

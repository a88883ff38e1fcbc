/**
 * Sessions: one conversation state of one agent group. The session key encodes the wiring's
 * session mode — shared per chat, one per thread, or one for the whole agent group — so the
 * same event always lands in the same session.
 */
import { prep } from '../../shared/sql.js';
import { randomUUID } from 'node:crypto';
import { notFound } from '../../shared/errors.js';
import type { Db } from '../db/open.js';

export type SessionMode = 'shared' | 'per-thread' | 'agent-shared';

export interface Session {
  id: string;
  agentGroupId: string;
  sessionKey: string;
  messagingGroupId: string | null;
  threadId: string | null;
  sessionMode: SessionMode;
  status: string;
  outCursor: number;
  createdAt: number;
  lastActiveAt: number;
}

interface Row {
  id: string;
  agent_group_id: string;
  session_key: string;
  messaging_group_id: string | null;
  thread_id: string | null;
  session_mode: string;
  status: string;
  out_cursor: number;
  created_at: number;
  last_active_at: number;
}

const fromRow = (r: Row): Session => ({
  id: r.id,
  agentGroupId: r.agent_group_id,
  sessionKey: r.session_key,
  messagingGroupId: r.messaging_group_id,
  threadId: r.thread_id,
  sessionMode: r.session_mode as SessionMode,
  status: r.status,
  outCursor: r.out_cursor,
  createdAt: r.created_at,
  lastActiveAt: r.last_active_at,
});

export function sessionKey(mode: SessionMode, messagingGroupId: string, threadId: string | null): string {
  if (mode === 'agent-shared') return 'agent';
  if (mode === 'per-thread') return `thread:${messagingGroupId}:${threadId ?? ''}`;
  return `chat:${messagingGroupId}`;
}

/** The session a wiring's messages of this chat and thread go to, if it exists yet. */
export function existingSession(
  db: Db,
  agentGroupId: string,
  mode: SessionMode,
  messagingGroupId: string,
  threadId: string | null,
): Session | null {
  const key = sessionKey(mode, messagingGroupId, threadId);
  const r = prep(db, 'SELECT * FROM sessions WHERE agent_group_id = ? AND session_key = ?').get(
    agentGroupId,
    key,
  ) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function resolveSession(
  db: Db,
  agentGroupId: string,
  mode: SessionMode,
  messagingGroupId: string,
  threadId: string | null,
  now = Date.now(),
): { session: Session; created: boolean } {
  const existing = existingSession(db, agentGroupId, mode, messagingGroupId, threadId);
  if (existing) return { session: existing, created: false };
  const key = sessionKey(mode, messagingGroupId, threadId);
  const id = randomUUID();
  prep(
    db,
    `INSERT INTO sessions (id, agent_group_id, session_key, messaging_group_id, thread_id, session_mode, created_at, last_active_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    id,
    agentGroupId,
    key,
    mode === 'agent-shared' ? null : messagingGroupId,
    mode === 'per-thread' ? threadId : null,
    mode,
    now,
    now,
  );
  return { session: getSession(db, id), created: true };
}

/** Record activity on a session (routing calls it after the message is queued: off its path). */
export function touchSession(db: Db, id: string, now = Date.now()): void {
  prep(db, 'UPDATE sessions SET last_active_at = ? WHERE id = ?').run(now, id);
}

export function getSession(db: Db, id: string): Session {
  const r = prep(db, 'SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
  if (!r) throw notFound(`no session ${id}`);
  return fromRow(r);
}

/** The session whose id is `idOrPrefix` or starts with it (compared as text: no wildcards). */
export function findSession(db: Db, idOrPrefix: string): Session {
  if (!idOrPrefix) throw notFound('no session id given');
  const rows = prep(db, `SELECT * FROM sessions WHERE substr(id, 1, length(?)) = ? LIMIT 2`).all(
    idOrPrefix,
    idOrPrefix,
  ) as Row[];
  if (rows.length === 0) throw notFound(`no session matching "${idOrPrefix}"`);
  if (rows.length > 1) throw notFound(`session prefix "${idOrPrefix}" is ambiguous`);
  return fromRow(rows[0]!);
}

export function listSessions(db: Db, agentGroupId?: string): Session[] {
  const rows = agentGroupId
    ? (prep(db, 'SELECT * FROM sessions WHERE agent_group_id = ? ORDER BY last_active_at DESC').all(
        agentGroupId,
      ) as Row[])
    : (prep(db, 'SELECT * FROM sessions ORDER BY last_active_at DESC').all() as Row[]);
  return rows.map(fromRow);
}

export function setOutCursor(db: Db, id: string, cursor: number): void {
  prep(db, 'UPDATE sessions SET out_cursor = ? WHERE id = ? AND out_cursor < ?').run(cursor, id, cursor);
}

/** The sessions whose chat is one of these messaging groups. */
export function sessionsOnChats(db: Db, messagingGroupIds: string[]): Session[] {
  const stmt = prep(db, 'SELECT * FROM sessions WHERE messaging_group_id = ?');
  return messagingGroupIds.flatMap((id) => (stmt.all(id) as Row[]).map(fromRow));
}

/** Remove a session's row (its deliveries, questions and tasks go with it). */
export function deleteSession(db: Db, id: string): void {
  prep(db, 'DELETE FROM sessions WHERE id = ?').run(id);
}

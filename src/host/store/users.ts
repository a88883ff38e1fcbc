/** Users (one per platform identity), roles (owner/admin, global or per group) and chat memberships. */
import { prep } from '../../shared/sql.js';
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/open.js';

export interface User {
  id: string;
  channelType: string;
  platformUserId: string;
  displayName: string | null;
}

/**
 * The user of a platform identity, created on first sight; a new display name replaces the
 * stored one. Routing calls this for every message, so a known user with an unchanged name
 * costs one read and no write.
 */
export function ensureUser(
  db: Db,
  channelType: string,
  platformUserId: string,
  displayName?: string,
  now = Date.now(),
): User {
  const known = findUser(db, channelType, platformUserId);
  if (known && (displayName === undefined || displayName === known.displayName)) return known;
  prep(
    db,
    `INSERT INTO users (id, channel_type, platform_user_id, display_name, created_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT(channel_type, platform_user_id) DO UPDATE SET display_name = COALESCE(excluded.display_name, users.display_name)`,
  ).run(randomUUID(), channelType, platformUserId, displayName ?? null, now);
  return findUser(db, channelType, platformUserId)!;
}

function findUser(db: Db, channelType: string, platformUserId: string): User | null {
  const r = prep(db, 'SELECT * FROM users WHERE channel_type = ? AND platform_user_id = ?').get(
    channelType,
    platformUserId,
  ) as
    | {
        id: string;
        channel_type: string;
        platform_user_id: string;
        display_name: string | null;
      }
    | undefined;
  return r
    ? {
        id: r.id,
        channelType: r.channel_type,
        platformUserId: r.platform_user_id,
        displayName: r.display_name,
      }
    : null;
}

export function grantRole(
  db: Db,
  userId: string,
  role: 'owner' | 'admin',
  agentGroupId: string | null = null,
): void {
  prep(db, 'INSERT OR IGNORE INTO roles (user_id, role, agent_group_id) VALUES (?, ?, ?)').run(
    userId,
    role,
    agentGroupId,
  );
}

export function addMembership(db: Db, userId: string, messagingGroupId: string): void {
  prep(db, 'INSERT OR IGNORE INTO memberships (user_id, messaging_group_id) VALUES (?, ?)').run(
    userId,
    messagingGroupId,
  );
}

export function isAdmin(db: Db, userId: string, agentGroupId: string): boolean {
  return !!prep(
    db,
    `SELECT 1 FROM roles WHERE user_id = ? AND (agent_group_id IS NULL OR agent_group_id = ?)`,
  ).get(userId, agentGroupId);
}

export function isMember(db: Db, userId: string, messagingGroupId: string, agentGroupId: string): boolean {
  if (isAdmin(db, userId, agentGroupId)) return true;
  return !!prep(db, 'SELECT 1 FROM memberships WHERE user_id = ? AND messaging_group_id = ?').get(
    userId,
    messagingGroupId,
  );
}

/** SQLite-backed mailbox for channels that keep replies while a client is away. */
import { prep } from '../../shared/sql.js';
import type { Mailbox } from '../../channels/adapter.js';
import type { Db } from '../db/open.js';

export function sqliteMailbox(db: Db, now: () => number = Date.now): Mailbox {
  return {
    put(channelType, platformId, key, payload) {
      prep(
        db,
        'INSERT OR IGNORE INTO mailbox (channel_type, platform_id, idempotency_key, payload, created_at) VALUES (?, ?, ?, ?, ?)',
      ).run(channelType, platformId, key, JSON.stringify(payload), now());
    },
    list(channelType, platformId) {
      const rows = prep(
        db,
        'SELECT id, idempotency_key, payload FROM mailbox WHERE channel_type = ? AND platform_id = ? ORDER BY id',
      ).all(channelType, platformId) as Array<{ id: number; idempotency_key: string; payload: string }>;
      return rows.map((r) => ({
        id: r.id,
        key: r.idempotency_key,
        payload: JSON.parse(r.payload) as unknown,
      }));
    },
    drop(channelType, platformId, keys) {
      const stmt = prep(
        db,
        'DELETE FROM mailbox WHERE channel_type = ? AND platform_id = ? AND idempotency_key = ?',
      );
      db.transaction(() => {
        for (const k of keys) stmt.run(channelType, platformId, k);
      })();
    },
  };
}

/**
 * A session is going away: what it left for clients not yet connected goes too. Its keys are
 * `SESSION:…` (replies) and `edit:SESSION:…` (edits), set by delivery; left behind, they would
 * be shown to the next client of that chat, e.g. of a new group of the same name.
 */
export function dropSessionMail(db: Db, sessionId: string): void {
  prep(
    db,
    `DELETE FROM mailbox WHERE substr(idempotency_key, 1, length(@reply)) = @reply OR substr(idempotency_key, 1, length(@edit)) = @edit`,
  ).run({ reply: `${sessionId}:`, edit: `edit:${sessionId}:` });
}

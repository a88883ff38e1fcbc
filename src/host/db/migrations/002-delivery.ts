/**
 * Delivery ledger: one row per outbound message per session. Written 'sending' before the
 * platform call and 'sent' after, so a restart never sends a row twice blindly; and the
 * terminal/web mailbox that holds replies for a client that is not connected.
 */
export const name = '002-delivery';
export const sql = `
CREATE TABLE deliveries (
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  out_id TEXT NOT NULL,
  seq INTEGER,
  status TEXT NOT NULL CHECK (status IN ('sending', 'retry', 'sent', 'failed', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  platform_message_id TEXT,
  error TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, out_id)
);

CREATE TABLE mailbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX mailbox_target ON mailbox(channel_type, platform_id, id);
`;

/**
 * The vault: secrets encrypted with AES-256-GCM (the key never lives in this DB), which agent
 * groups may use each secret (grant_all = every group of this install, the default), and a
 * key check so a wrong key is refused before anything is read or written.
 */
export const name = '005-vault';
export const sql = `
CREATE TABLE vault_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  key_check BLOB NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE secrets (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('anthropic', 'openai', 'openai-compatible', 'codex-chatgpt')),
  base_url TEXT,
  sealed BLOB NOT NULL,
  grant_all INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_used_at INTEGER,
  last_status INTEGER
);

CREATE TABLE secret_grants (
  secret_id TEXT NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  PRIMARY KEY (secret_id, agent_group_id)
);
`;

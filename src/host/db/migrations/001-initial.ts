/** Agent groups, messaging groups, wirings, sessions, users and roles: the routing model. */
export const name = '001-initial';
export const sql = `
CREATE TABLE agent_groups (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  provider TEXT NOT NULL,
  model TEXT,
  effort TEXT,
  endpoint TEXT,
  assistant_name TEXT NOT NULL DEFAULT 'Assistant',
  timezone TEXT,
  skills TEXT NOT NULL DEFAULT '[]',
  mcp_servers TEXT NOT NULL DEFAULT '[]',
  packages TEXT NOT NULL DEFAULT '[]',
  extra_mounts TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE messaging_groups (
  id TEXT PRIMARY KEY,
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  name TEXT,
  is_direct INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (channel_type, platform_id)
);

CREATE TABLE wirings (
  id TEXT PRIMARY KEY,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  engage_mode TEXT NOT NULL CHECK (engage_mode IN ('pattern', 'mention', 'mention-sticky')),
  pattern TEXT,
  session_mode TEXT NOT NULL CHECK (session_mode IN ('shared', 'per-thread', 'agent-shared')),
  sender_scope TEXT NOT NULL DEFAULT 'all' CHECK (sender_scope IN ('all', 'members', 'admins')),
  ignored_policy TEXT NOT NULL DEFAULT 'drop' CHECK (ignored_policy IN ('drop', 'accumulate')),
  created_at INTEGER NOT NULL,
  UNIQUE (messaging_group_id, agent_group_id)
);

CREATE TABLE sticky_threads (
  wiring_id TEXT NOT NULL REFERENCES wirings(id) ON DELETE CASCADE,
  thread_key TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (wiring_id, thread_key)
);

CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  session_key TEXT NOT NULL,
  messaging_group_id TEXT REFERENCES messaging_groups(id) ON DELETE SET NULL,
  thread_id TEXT,
  session_mode TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active',
  out_cursor INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  last_active_at INTEGER NOT NULL,
  UNIQUE (agent_group_id, session_key)
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  channel_type TEXT NOT NULL,
  platform_user_id TEXT NOT NULL,
  display_name TEXT,
  created_at INTEGER NOT NULL,
  UNIQUE (channel_type, platform_user_id)
);

CREATE TABLE roles (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin')),
  agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, role, agent_group_id)
);

CREATE TABLE memberships (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, messaging_group_id)
);

CREATE TABLE destinations (
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('chat', 'agent')),
  messaging_group_id TEXT REFERENCES messaging_groups(id) ON DELETE CASCADE,
  target_agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE CASCADE,
  thread_id TEXT,
  PRIMARY KEY (agent_group_id, name)
);
`;

/**
 * Scheduled task series. One row per series (a one-shot is a series of one run). The host is
 * the only writer; next_run_at is the scheduled instant of the live occurrence (NULL once the
 * series is cancelled or done), so the scheduler's timer is armed on MIN(next_run_at).
 * routing is the chat the task was created from, used when the session has no default chat.
 */
export const name = '003-tasks';
export const sql = `
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  prompt TEXT NOT NULL,
  cron TEXT,
  at TEXT,
  script TEXT,
  timezone TEXT NOT NULL,
  routing TEXT,
  status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'cancelled', 'done')),
  next_run_at INTEGER,
  last_run_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((cron IS NULL) <> (at IS NULL))
);
CREATE INDEX tasks_due ON tasks(status, next_run_at);
CREATE INDEX tasks_group ON tasks(agent_group_id);
`;

/**
 * Task ids are names an agent chooses ("daily-digest"), so they are unique per agent group, not
 * across the install: one group can neither learn that another uses a name (an "already in
 * use" refusal) nor take a name away from it. SQLite cannot change a primary key in place, so
 * the table is rebuilt with the same columns and rows.
 */
export const name = '007-task-ids-per-group';
export const sql = `
CREATE TABLE tasks_new (
  id TEXT NOT NULL,
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
  PRIMARY KEY (agent_group_id, id),
  CHECK ((cron IS NULL) <> (at IS NULL))
);
INSERT INTO tasks_new (id, agent_group_id, session_id, prompt, cron, at, script, timezone, routing, status, next_run_at, last_run_at, created_at, updated_at)
  SELECT id, agent_group_id, session_id, prompt, cron, at, script, timezone, routing, status, next_run_at, last_run_at, created_at, updated_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX tasks_due ON tasks(status, next_run_at);
`;

/**
 * Questions an agent asked (ask_user_question) that wait for a person. A reply in the same
 * chat that names an option answers the oldest open one; the answer goes to the asking session.
 */
export const name = '004-questions';
export const sql = `
CREATE TABLE pending_questions (
  question_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  channel_type TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  thread_id TEXT,
  options TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'expired')),
  answer TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX pending_questions_chat ON pending_questions(channel_type, platform_id, status);
`;

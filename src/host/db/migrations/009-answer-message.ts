/**
 * Which platform message answered a question, so the same message delivered again (a
 * platform's retry, an agent chat's send replayed after a crash) is known as that answer and is
 * not queued a second time as a new chat message once its question is no longer open.
 */
export const name = '009-answer-message';
export const sql = `
ALTER TABLE pending_questions ADD COLUMN answer_message_id TEXT;
CREATE INDEX pending_questions_answered_by ON pending_questions(channel_type, platform_id, answer_message_id)
  WHERE answer_message_id IS NOT NULL;
`;

/**
 * Whether a question has reached its chat. A question is recorded before its send (so a retry
 * or a crash cannot lose it) but catches replies in the chat only once shown: while its send
 * waits in backoff, a person's "yes" or "1" is not taken as the answer to a question they have
 * not seen. Rows from before this migration were shown.
 */
export const name = '010-question-shown';
export const sql = `
ALTER TABLE pending_questions ADD COLUMN shown INTEGER NOT NULL DEFAULT 1;
`;

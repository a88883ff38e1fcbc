/**
 * Per-group approval policy for tools the agent would ask permission for: 'bypass' (run them:
 * the sandbox is the boundary), 'ask' (an admin of the chat allows or denies each one), 'deny'
 * (refuse them). Approval questions are answerable by admins only (admin_only). A question
 * belongs to the turn of the message it replies to (message_id): once that message settles or
 * its attempt fails, nobody waits for the answer and the question is expired.
 */
export const name = '006-approval';
export const sql = `
ALTER TABLE agent_groups ADD COLUMN approval TEXT NOT NULL DEFAULT 'bypass' CHECK (approval IN ('bypass', 'ask', 'deny'));
ALTER TABLE pending_questions ADD COLUMN admin_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pending_questions ADD COLUMN message_id TEXT;
`;

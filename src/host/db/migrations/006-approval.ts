/**
 * Per-group approval policy for tools the agent would ask permission for: 'bypass' (run them:
 * the sandbox is the boundary), 'ask' (an admin of the chat allows or denies each one), 'deny'
 * (refuse them). Approval questions are answerable by admins only (admin_only).
 */
export const name = '006-approval';
export const sql = `
ALTER TABLE agent_groups ADD COLUMN approval TEXT NOT NULL DEFAULT 'bypass' CHECK (approval IN ('bypass', 'ask', 'deny'));
ALTER TABLE pending_questions ADD COLUMN admin_only INTEGER NOT NULL DEFAULT 0;
`;

/**
 * Facts about the install itself. `first-run` is set once a data folder has had its first
 * start: its `main` group is made then and only then, so a user who deleted every group does
 * not get `main` back at the next start. An install from before this migration that has groups
 * is past its first run.
 */
export const name = '011-first-run';
export const sql = `
CREATE TABLE install_facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO install_facts (key, value) SELECT 'first-run', 'done' WHERE EXISTS (SELECT 1 FROM agent_groups);
`;

/** Agent groups: a persona with its own folder, provider and settings. */
import { prep } from '../../shared/sql.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { lineField } from '../../shared/fields.js';
import { badRequest, conflict, issueLine, notFound } from '../../shared/errors.js';
import { ApprovalPolicySchema } from '../../shared/messages.js';
import type { Db } from '../db/open.js';

export const GROUP_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
export { APPROVAL_POLICIES } from '../../shared/messages.js';

const StringList = z.array(z.string());
const McpServer = z.object({
  name: z.string().min(1),
  command: z.string().optional(),
  args: z.array(z.string()).default([]),
  url: z.string().optional(),
  instructions: z.string().optional(),
});
const ExtraMount = z.object({
  hostPath: z.string().min(1),
  containerPath: z.string().min(1),
  readonly: z.boolean().default(true),
});

export const GroupSettings = z.object({
  provider: z.string().min(1),
  model: lineField(200).nullable().default(null),
  effort: z.enum(EFFORTS).nullable().default(null),
  endpoint: lineField(100).nullable().default(null),
  assistantName: lineField(100).default('Assistant'),
  timezone: z.string().nullable().default(null),
  skills: StringList.default([]),
  mcpServers: z.array(McpServer).default([]),
  packages: StringList.default([]),
  extraMounts: z.array(ExtraMount).default([]),
  approval: ApprovalPolicySchema.default('bypass'),
});
export type GroupSettings = z.infer<typeof GroupSettings>;

/** Settings as saved, or a one-line error naming the field (never zod's JSON dump). */
function parseSettings(input: unknown): GroupSettings {
  const r = GroupSettings.safeParse(input);
  if (r.success) return r.data;
  throw badRequest(issueLine(r.error, 'group settings'));
}

export interface AgentGroup extends GroupSettings {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
}

interface Row {
  id: string;
  name: string;
  provider: string;
  model: string | null;
  effort: string | null;
  endpoint: string | null;
  assistant_name: string;
  timezone: string | null;
  skills: string;
  mcp_servers: string;
  packages: string;
  extra_mounts: string;
  approval: string;
  created_at: number;
  updated_at: number;
}

// Built once: a zod schema costs far more to build than to run (every group read parses these).
const McpServers = z.array(McpServer);
const ExtraMounts = z.array(ExtraMount);

function parseJson<T>(schema: z.ZodType<T>, text: string, column: string, group: string): T {
  const r = schema.safeParse(JSON.parse(text));
  if (!r.success) throw badRequest(`group ${group}: column ${column} holds invalid data`);
  return r.data;
}

function fromRow(r: Row): AgentGroup {
  return {
    id: r.id,
    name: r.name,
    provider: r.provider,
    model: r.model,
    effort: r.effort as AgentGroup['effort'],
    endpoint: r.endpoint,
    assistantName: r.assistant_name,
    timezone: r.timezone,
    skills: parseJson(StringList, r.skills, 'skills', r.name),
    mcpServers: parseJson(McpServers, r.mcp_servers, 'mcp_servers', r.name),
    packages: parseJson(StringList, r.packages, 'packages', r.name),
    extraMounts: parseJson(ExtraMounts, r.extra_mounts, 'extra_mounts', r.name),
    approval: ApprovalPolicySchema.parse(r.approval),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Settings in the column order of agent_groups (provider … extra_mounts, approval), JSON columns encoded. */
function columns(s: GroupSettings): Array<string | null> {
  return [
    s.provider,
    s.model,
    s.effort,
    s.endpoint,
    s.assistantName,
    s.timezone,
    JSON.stringify(s.skills),
    JSON.stringify(s.mcpServers),
    JSON.stringify(s.packages),
    JSON.stringify(s.extraMounts),
    s.approval,
  ];
}

export function validateGroupName(name: string): void {
  if (!GROUP_NAME.test(name)) {
    throw badRequest(
      `group name "${name}" must be 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit`,
    );
  }
}

export function createGroup(
  db: Db,
  name: string,
  input: z.input<typeof GroupSettings>,
  now = Date.now(),
): AgentGroup {
  validateGroupName(name);
  const s = parseSettings(input);
  if (getGroupByName(db, name)) throw conflict(`group "${name}" already exists`);
  const id = randomUUID();
  prep(
    db,
    `INSERT INTO agent_groups (id, name, provider, model, effort, endpoint, assistant_name, timezone, skills, mcp_servers, packages, extra_mounts, approval, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(id, name, ...columns(s), now, now);
  return getGroup(db, id);
}

export function getGroupByName(db: Db, name: string): AgentGroup | null {
  const r = prep(db, 'SELECT * FROM agent_groups WHERE name = ?').get(name) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function getGroup(db: Db, id: string): AgentGroup {
  const r = prep(db, 'SELECT * FROM agent_groups WHERE id = ?').get(id) as Row | undefined;
  if (!r) throw notFound(`no agent group with id ${id}`);
  return fromRow(r);
}

export function requireGroup(db: Db, name: string): AgentGroup {
  const g = getGroupByName(db, name);
  if (!g) {
    const known = listGroups(db).map((x) => x.name);
    throw notFound(`no group "${name}"${known.length ? ` (known: ${known.join(', ')})` : ''}`);
  }
  return g;
}

export function listGroups(db: Db): AgentGroup[] {
  return (prep(db, 'SELECT * FROM agent_groups ORDER BY name').all() as Row[]).map(fromRow);
}

export function updateGroup(
  db: Db,
  name: string,
  patch: Partial<z.input<typeof GroupSettings>>,
  now = Date.now(),
): AgentGroup {
  const g = requireGroup(db, name);
  const merged = parseSettings({ ...g, ...patch });
  prep(
    db,
    `UPDATE agent_groups SET provider=?, model=?, effort=?, endpoint=?, assistant_name=?, timezone=?, skills=?, mcp_servers=?, packages=?, extra_mounts=?, approval=?, updated_at=? WHERE id=?`,
  ).run(...columns(merged), now, g.id);
  return getGroup(db, g.id);
}

export function deleteGroup(db: Db, name: string): AgentGroup {
  const g = requireGroup(db, name);
  prep(db, 'DELETE FROM agent_groups WHERE id = ?').run(g.id);
  return g;
}

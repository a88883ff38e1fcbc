/**
 * The group's own MCP servers as the host hands them to the runner (one env variable, JSON),
 * whatever the provider. Polyclaw's own tool server is not among them: providers always attach it.
 */
import { z } from 'zod';

export const MCP_SERVERS_ENV = 'POLYCLAW_MCP_SERVERS';

export const McpServerSpec = z.object({
  name: z.string().min(1),
  /** Local stdio server. */
  command: z.string().min(1).optional(),
  args: z.array(z.string()).default([]),
  /** Remote (HTTP) server. */
  url: z.string().optional(),
});
export type McpServerSpec = z.infer<typeof McpServerSpec>;

/** The servers in `env`, or a one-line error naming what is wrong. */
export function mcpServersFromEnv(env: Readonly<Record<string, string | undefined>>): McpServerSpec[] {
  const raw = env[MCP_SERVERS_ENV];
  if (!raw) return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`${MCP_SERVERS_ENV} is not valid JSON`);
  }
  const r = z.array(McpServerSpec).safeParse(json);
  if (!r.success)
    throw new Error(`${MCP_SERVERS_ENV}: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  return r.data;
}

export function mcpServersEnv(
  servers: ReadonlyArray<{ name: string; command?: string; args?: string[]; url?: string }>,
): Record<string, string> {
  if (servers.length === 0) return {};
  return {
    [MCP_SERVERS_ENV]: JSON.stringify(
      servers.map(({ name, command, args, url }) => ({ name, command, args: args ?? [], url })),
    ),
  };
}

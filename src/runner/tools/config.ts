/**
 * How a provider launches the tool server, in the shape each agent's config wants. All of
 * them run the same stdio command inside the sandbox; the env only names the session dirs.
 */
import type { McpServerSpec } from '../../shared/mcp.js';

export interface StdioServer {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
}

export function toolServer(opts: {
  nodePath?: string;
  cliPath?: string;
  sessionDir: string;
  agentDir: string;
}): StdioServer {
  return {
    name: 'polyclaw',
    command: opts.nodePath ?? process.execPath,
    args: [opts.cliPath ?? process.argv[1] ?? '/app/dist/cli/main.js', 'tools'],
    env: { POLYCLAW_SESSION_DIR: opts.sessionDir, POLYCLAW_AGENT_DIR: opts.agentDir },
  };
}

/** Claude Agent SDK `mcpServers` entry. */
export const forClaude = (s: StdioServer) => ({
  [s.name]: { type: 'stdio' as const, command: s.command, args: s.args, env: s.env },
});

/**
 * Claude Agent SDK `mcpServers` entries for the group's own servers (stdio or remote HTTP).
 * One named like our tool server is left out: ours always wins its name.
 */
export function groupForClaude(
  servers: McpServerSpec[],
  ours: string,
): Record<string, { type: 'http'; url: string } | { type: 'stdio'; command: string; args: string[] }> {
  const out: ReturnType<typeof groupForClaude> = {};
  for (const m of servers) {
    if (m.name === ours) continue;
    if (m.url) out[m.name] = { type: 'http', url: m.url };
    else if (m.command) out[m.name] = { type: 'stdio', command: m.command, args: m.args };
  }
  return out;
}

/**
 * OpenCode `mcp` entry. `timeoutMs`: how long OpenCode waits for one tool call (its MCP
 * client's default is 60 s, which cut off any question a person took longer on).
 */
export const forOpencode = (s: StdioServer, timeoutMs?: number) => ({
  [s.name]: {
    type: 'local' as const,
    command: [s.command, ...s.args],
    environment: s.env,
    enabled: true,
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
  },
});

/** Codex config.toml `[mcp_servers.<name>]` fields (TOML rendering is the Codex provider's job). */
export const forCodex = (s: StdioServer) => ({ name: s.name, command: s.command, args: s.args, env: s.env });

/**
 * How a provider launches the tool server, in the shape each agent's config wants. All of
 * them run the same stdio command inside the sandbox; the env only names the session dirs.
 */
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

/** OpenCode `mcp` entry. */
export const forOpencode = (s: StdioServer) => ({
  [s.name]: { type: 'local' as const, command: [s.command, ...s.args], environment: s.env, enabled: true },
});

/** Codex config.toml `[mcp_servers.<name>]` fields (TOML rendering is the Codex provider's job). */
export const forCodex = (s: StdioServer) => ({ name: s.name, command: s.command, args: s.args, env: s.env });

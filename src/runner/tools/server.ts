/**
 * The MCP tool server: every registered tool over one McpServer. It speaks MCP on the given
 * streams (stdio by default) — stdout is protocol only; logs go to stderr. Tool failures
 * come back as isError results worded for the model, never as crashes of the server.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Readable, Writable } from 'node:stream';
import { createLogger, type Logger } from '../../shared/log.js';
import { queueContext } from './context.js';
import { toolRegistry } from './index.js';
import { ToolError, type ToolContext } from './tool.js';

export const SERVER_NAME = 'polyclaw';

export function buildServer(ctx: ToolContext, log: Logger): McpServer {
  const server = new McpServer({ name: SERVER_NAME, version: '0.1.0' });
  for (const name of toolRegistry.names()) {
    const def = toolRegistry.get(name);
    server.registerTool(
      name,
      { description: def.description, inputSchema: def.input },
      async (args: unknown, extra: { signal: AbortSignal }) => {
        try {
          const text = await def.run(args as never, ctx, extra.signal);
          return { content: [{ type: 'text' as const, text }] };
        } catch (err) {
          if (err instanceof ToolError)
            return { isError: true, content: [{ type: 'text' as const, text: err.message }] };
          log.error('tool failed', { tool: name, err });
          return {
            isError: true,
            content: [
              { type: 'text' as const, text: `${name} failed inside Polyclaw: ${(err as Error).message}` },
            ],
          };
        }
      },
    );
  }
  return server;
}

/**
 * Serve every tool to one client over `transport` for the session named in `env`; resolves
 * once the connection is up, with a close() that ends it and the session's files.
 */
export async function serve(
  transport: Transport,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ closed: Promise<void>; close(): Promise<void> }> {
  const log = createLogger().child('tools');
  const ctx = queueContext({
    sessionDir: env.POLYCLAW_SESSION_DIR ?? '/workspace/session',
    agentDir: env.POLYCLAW_AGENT_DIR ?? '/workspace/agent',
    log,
  });
  const server = buildServer(ctx, log);
  const closed = new Promise<void>((resolve) => (transport.onclose = () => resolve()));
  await server.connect(transport);
  return {
    closed,
    async close() {
      await server.close();
      ctx.close();
    },
  };
}

/** `polyclaw tools` without the fast start (see startup.ts): MCP on stdio from the first byte. */
export async function toolsMain(
  env: NodeJS.ProcessEnv = process.env,
  stdin: Readable = process.stdin,
  stdout: Writable = process.stdout,
): Promise<number> {
  const s = await serve(new StdioServerTransport(stdin, stdout), env);
  await Promise.race([s.closed, new Promise<void>((resolve) => stdin.once('end', () => resolve()))]);
  await s.close();
  return 0;
}

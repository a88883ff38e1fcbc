/**
 * A group's own MCP server for provider tests: a real stdio MCP server (the MCP SDK of this
 * repo) with one tool, echo {text} → "echoed <text>". Written into `dir`, which must be inside
 * the repo so that the server's imports resolve from its node_modules.
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeEchoMcpServer(dir: string): string {
  const file = path.join(dir, 'echo-mcp.mjs');
  fs.writeFileSync(
    file,
    [
      "import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';",
      "import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';",
      "import { z } from 'zod';",
      "const s = new McpServer({ name: 'echo', version: '1.0.0' });",
      "s.registerTool('echo', { description: 'echo', inputSchema: { text: z.string() } }, async ({ text }) =>",
      "  ({ content: [{ type: 'text', text: `echoed ${text}` }] }));",
      'await s.connect(new StdioServerTransport());',
    ].join('\n'),
  );
  return file;
}

/**
 * A real MCP client for the Polyclaw tool server, launched over stdio exactly as an agent
 * would launch it. The mock provider uses it to call tools by directive, so tool tests go
 * through the same process boundary and protocol as Claude, Codex and OpenCode.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { StdioServer } from '../tools/config.js';

export interface ToolCallResult {
  isError: boolean;
  text: string;
}

export class McpToolsClient {
  private client: Client | null = null;

  constructor(private readonly server: StdioServer) {}

  private async connect(): Promise<Client> {
    if (this.client) return this.client;
    const client = new Client({ name: 'polyclaw-mock', version: '0.1.0' });
    const transport = new StdioClientTransport({
      command: this.server.command,
      args: this.server.args,
      env: this.server.env,
      stderr: 'inherit',
    });
    await client.connect(transport);
    this.client = client;
    return client;
  }

  async call(
    name: string,
    args: Record<string, unknown>,
    timeoutMs = 24 * 3600_000,
  ): Promise<ToolCallResult> {
    const client = await this.connect();
    const r = await client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
    const content = (r.content ?? []) as Array<{ type: string; text?: string }>;
    return { isError: r.isError === true, text: content.map((c) => c.text ?? '').join('\n') };
  }

  async listTools(): Promise<string[]> {
    const client = await this.connect();
    return (await client.listTools()).tools.map((t) => t.name);
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.client = null;
  }
}

/**
 * Records the tool server's answers to the startup exchange (see startup.ts) from the real
 * server, so the fast front returns exactly what the server would. Run at build time
 * (`npm run build` writes dist/runner/tools/startup-manifest.json), and by the tests.
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createLogger } from '../../shared/log.js';
import { buildServer } from './server.js';
import { MANIFEST_FILE, type StartupManifest } from './startup.js';
import type { ToolContext } from './tool.js';

export async function recordStartup(): Promise<StartupManifest> {
  // Listing tools runs no tool: the context is never touched.
  const server = buildServer({} as ToolContext, createLogger({ level: 'error' }));
  const [client, end] = InMemoryTransport.createLinkedPair();
  const answers = new Map<string | number, Record<string, unknown>>();
  client.onmessage = (m: JSONRPCMessage) => {
    const { id, jsonrpc: _j, ...rest } = m as { id: string | number; jsonrpc: string };
    answers.set(id, rest);
  };
  await server.connect(end);
  await client.start();
  const ask = async (id: string, method: string, params: Record<string, unknown>) => {
    await client.send({ jsonrpc: '2.0', id, method, params } as JSONRPCMessage);
    for (let i = 0; i < 200 && !answers.has(id); i++) await new Promise((r) => setTimeout(r, 5));
    const a = answers.get(id);
    if (!a) throw new Error(`the tool server did not answer ${method}`);
    return a;
  };
  const discover = await ask('discover', 'server/discover', {});
  const init = await ask('init', 'initialize', {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'polyclaw-build', version: '0' },
  });
  await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
  const list = await ask('list', 'tools/list', {});
  await server.close();
  const { protocolVersion: _p, ...initialize } = init.result as Record<string, unknown>;
  return {
    latest: LATEST_PROTOCOL_VERSION,
    supported: [...SUPPORTED_PROTOCOL_VERSIONS],
    initialize,
    toolsList: list.result as Record<string, unknown>,
    discover,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  fs.writeFileSync(MANIFEST_FILE, JSON.stringify(await recordStartup()) + '\n');
}

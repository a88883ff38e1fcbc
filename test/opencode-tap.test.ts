/** The runner's tap between OpenCode and the gateway: credential swap, and the direct socket path. */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startTap, type Tap } from '../src/runner/providers/opencode-tap.js';
import { createLogger } from '../src/shared/log.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A stand-in gateway on a unix socket that answers with what it received. */
async function socketGateway(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-tap-'));
  const sock = path.join(dir, 'gw.sock');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, authorization: req.headers.authorization ?? null }));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(
    () => new Promise<void>((r) => server.close(() => r())),
    () => fs.rmSync(dir, { recursive: true, force: true }),
  );
  return sock;
}

async function through(tap: Tap, p: string): Promise<{ url: string; authorization: string | null }> {
  const r = await fetch(`${tap.url}${p}`, { headers: { authorization: 'Bearer placeholder-key' } });
  return (await r.json()) as { url: string; authorization: string | null };
}

describe('opencode tap', () => {
  it("talks to the gateway's unix socket directly when it has one, with the token in place of OpenCode's key", async () => {
    const sock = await socketGateway();
    // The target's port is closed: only the socket can answer.
    const tap = await startTap({
      target: 'http://127.0.0.1:9/endpoints/local',
      socketPath: sock,
      token: 'pcgw_token',
      onActivity: () => {},
      log: createLogger({ level: 'error' }),
    });
    cleanups.push(() => tap.close());
    expect(await through(tap, '/chat/completions')).toEqual({
      url: '/endpoints/local/chat/completions',
      authorization: 'Bearer pcgw_token',
    });
  });
});

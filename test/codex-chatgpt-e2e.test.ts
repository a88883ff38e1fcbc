/**
 * Codex with a ChatGPT subscription, end to end: the real codex CLI in a real bwrap sandbox of
 * a real host, whose group endpoint is a codex-chatgpt secret. The fake ChatGPT upstream must
 * see the REAL (gateway-refreshed) access token and account id; the sandbox's auth.json must
 * hold placeholders only; codex's own refresh (after a 401) must get placeholders.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, MAIN, startHostProc, tempHome, type HostProc } from './support/cli.js';
import { startFakeResponses, type FakeResponses } from './support/fake-responses.js';
import { jwt } from './support/gateway-kit.js';

const REAL_REFRESH = 'real-refresh-e2e-' + 'q'.repeat(24);
const EXPIRED = jwt({ exp: Math.floor(Date.now() / 1000) - 600, n: 0 });
const FRESH = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, n: 1 });
const ACCOUNT = 'acct-e2e-42';

/** The fake auth.openai.com token endpoint: counts refreshes, hands out FRESH. */
async function startTokenServer() {
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push(body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: FRESH, refresh_token: 'rotated-' + REAL_REFRESH }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, calls, close: () => new Promise((r) => server.close(r)) };
}

describe('codex ChatGPT subscription through the gateway in a bwrap sandbox', () => {
  let home: string;
  let host: HostProc;
  let fake: FakeResponses;
  let tokens: Awaited<ReturnType<typeof startTokenServer>>;
  const authFile = () => path.join(home, 'provider-state/codex/cx/home/auth.json');

  beforeAll(async () => {
    fake = await startFakeResponses();
    tokens = await startTokenServer();
    home = tempHome();
    fs.writeFileSync(
      path.join(home, 'config.json'),
      JSON.stringify({
        gateway: {
          upstreams: { 'codex-chatgpt': `${fake.url}/backend-api/codex` },
          chatgptTokenUrl: `${tokens.url}/oauth/token`,
        },
      }),
    );
    const authJson = JSON.stringify({
      OPENAI_API_KEY: null,
      tokens: { access_token: EXPIRED, refresh_token: REAL_REFRESH, account_id: ACCOUNT },
    });
    const set = spawnSync(
      process.execPath,
      [MAIN, 'secrets', 'set', 'sub', '--kind', 'codex-chatgpt', '--value-stdin'],
      {
        env: { ...process.env, POLYCLAW_HOME: home, POLYCLAW_LOG_LEVEL: 'warn' },
        input: authJson,
        encoding: 'utf8',
      },
    );
    expect(set.status, set.stderr).toBe(0);
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn', POLYCLAW_RETRY_BASE_MS: '100' });
    const g = cli(home, [
      'groups',
      'create',
      'cx',
      '--provider',
      'codex',
      '--model',
      'fake-model',
      '--endpoint',
      'sub',
      '--json',
    ]);
    expect(g.code, g.stderr + g.stdout).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    await tokens?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('injects the refreshed real token and account id; the sandbox holds placeholders', async () => {
    fake.script({ text: 'hello from chatgpt', deltas: ['hello ', 'from chatgpt'] });
    const r = await cliAsync(home, ['chat', '--group', 'cx', '-m', 'hello', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['hello from chatgpt']);
    const calls = fake.requests.filter((q) => q.url === '/backend-api/codex/responses');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${FRESH}`);
    expect(calls[0]!.headers['chatgpt-account-id']).toBe(ACCOUNT);
    expect(tokens.calls).toHaveLength(1);
    expect(JSON.parse(tokens.calls[0]!)).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: REAL_REFRESH,
    });
    const text = fs.readFileSync(authFile(), 'utf8');
    for (const secret of [REAL_REFRESH, EXPIRED, FRESH, ACCOUNT]) expect(text).not.toContain(secret);
    const auth = JSON.parse(text) as { tokens: { access_token: string; refresh_token: string } };
    expect(auth.tokens.refresh_token).toMatch(/^pcgw_/);
    const config = fs.readFileSync(path.join(home, 'provider-state/codex/cx/home/config.toml'), 'utf8');
    expect(config).toContain('requires_openai_auth = true');
    expect(config).toContain('cli_auth_credentials_store = "file"');
  }, 70_000);

  // Not yet green: after a scripted 401, codex 0.169 app-server ended the turn with "Your access
  // token could not be refreshed because you have since logged out or signed in to another
  // account" instead of calling the refresh URL (see docs/codex-chatgpt.md). The refresh request
  // shape itself is covered by test/gateway-chatgpt.test.ts.
  it.todo("answers codex's own refresh (after a 401) with placeholders");
});

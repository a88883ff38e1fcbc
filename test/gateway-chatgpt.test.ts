/**
 * The ChatGPT-subscription path against fake upstreams: the real access token and account id
 * are injected, an expired token is refreshed once (concurrent requests share one refresh) and
 * stored back, a sandbox's own refresh attempt gets placeholders, and a client that leaves
 * during a refresh starts no upstream request.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeholderAuthJson } from '../src/gateway/chatgpt-auth.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { request, startKit, type Kit, jwt } from './support/gateway-kit.js';
import { listenLoopback } from './support/http-kit.js';

describe('gateway ChatGPT subscription', () => {
  let up: FakeUpstream;
  let kit: Kit;
  let tok: string;
  const REFRESH = 'real-refresh-token-' + 'r'.repeat(30);

  beforeAll(async () => {
    up = await startFakeUpstream({ refreshDelayMs: 100 });
    kit = await startKit({
      upstreams: { 'codex-chatgpt': `${up.url}/backend-api/codex` },
      chatgptTokenUrl: `${up.url}/oauth/token`,
    });
    const expired = jwt({ exp: Math.floor(Date.now() / 1000) - 60 });
    kit.vault.set({
      name: 'chatgpt',
      kind: 'codex-chatgpt',
      value: JSON.stringify({
        OPENAI_API_KEY: null,
        tokens: { access_token: expired, refresh_token: REFRESH, account_id: 'acct-123' },
      }),
    });
    tok = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's').token;
  });
  afterAll(async () => {
    await kit.close();
    await up.close();
  });

  it('refreshes an expired token once for concurrent requests and injects it', async () => {
    up.nextAccessToken = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, n: 1 });
    const placeholder = JSON.parse(placeholderAuthJson('acct-123', tok, Date.now())) as {
      tokens: { access_token: string };
    };
    const rs = await Promise.all(
      [0, 1, 2].map(() =>
        request(kit.socket, {
          method: 'POST',
          path: '/chatgpt/responses',
          headers: { authorization: `Bearer ${placeholder.tokens.access_token}` },
          body: '{}',
        }),
      ),
    );
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(up.refreshCalls).toBe(1);
    const refreshReq = up.requests.find((r) => r.url === '/oauth/token')!;
    expect(JSON.parse(refreshReq.body)).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: REFRESH,
    });
    const calls = up.requests.filter((r) => r.url === '/backend-api/codex/responses');
    expect(calls).toHaveLength(3);
    for (const c of calls) {
      expect(c.headers.authorization).toBe(`Bearer ${up.nextAccessToken}`);
      expect(c.headers['chatgpt-account-id']).toBe('acct-123');
    }
    // Stored back: a new request needs no refresh.
    await request(kit.socket, { path: '/chatgpt/models', headers: { authorization: `Bearer ${tok}` } });
    expect(up.refreshCalls).toBe(1);
  });

  it("answers the sandbox's own refresh with placeholders", async () => {
    const r = await request(kit.socket, {
      method: 'POST',
      path: '/chatgpt-auth/oauth/token',
      headers: { authorization: `Bearer ${tok}` },
      body: '{}',
    });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as Record<string, string>;
    expect(body.refresh_token).toBe(tok);
    expect(r.body).not.toContain(REFRESH);
    expect(r.body).not.toContain(up.nextAccessToken);
    expect(up.refreshCalls).toBe(1);
  });

  it("identifies codex 0.169's own refresh by the body (it sends no Authorization)", async () => {
    const r = await request(kit.socket, {
      method: 'POST',
      path: '/chatgpt-auth/oauth/token',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: 'app_EMoamEEZ73f0CkXaXp7hrann',
        grant_type: 'refresh_token',
        refresh_reason: 'proactive_expiry',
        refresh_token: tok,
      }),
    });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as Record<string, string>).refresh_token).toBe(tok);
    expect(r.body).not.toContain(REFRESH);
    const bad = await request(kit.socket, {
      method: 'POST',
      path: '/chatgpt-auth/oauth/token',
      body: JSON.stringify({ refresh_token: 'pcgw_' + 'x'.repeat(43) }),
    });
    expect(bad.status).toBe(401);
    const backend = await request(kit.socket, {
      path: '/chatgpt-auth/backend/api/codex/accounts/check',
      headers: { authorization: `Bearer ${tok}` },
    });
    expect(backend.status).toBe(404);
    expect(up.refreshCalls).toBe(1);
  });
});

describe('gateway ChatGPT refresh and a client that leaves', () => {
  it('a client gone during a slow refresh starts no upstream request and is audited at once', async () => {
    const tokens = await startFakeUpstream({ refreshDelayMs: 600 });
    tokens.nextAccessToken = jwt({ exp: Math.floor(Date.now() / 1000) + 3600 });
    // Counts requests as their headers arrive (a hanging upstream request never sends a body end).
    const seen: string[] = [];
    const backend = await listenLoopback(
      http.createServer((req, res) => {
        seen.push(req.url ?? '');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }),
    );
    const kit = await startKit({
      upstreams: { 'codex-chatgpt': `${backend.url}/backend-api/codex` },
      chatgptTokenUrl: `${tokens.url}/oauth/token`,
    });
    try {
      kit.vault.set({
        name: 'chatgpt',
        kind: 'codex-chatgpt',
        value: JSON.stringify({
          OPENAI_API_KEY: null,
          tokens: {
            access_token: jwt({ exp: Math.floor(Date.now() / 1000) - 60 }),
            refresh_token: 'r'.repeat(30),
            account_id: 'acct-9',
          },
        }),
      });
      const tok = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's').token;
      const gone = request(kit.socket, {
        method: 'POST',
        path: '/chatgpt/responses',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
        body: '{}',
        timeoutMs: 150,
      });
      await expect(gone).rejects.toThrow('request timed out');
      expect(tokens.refreshCalls).toBe(1);
      await expect
        .poll(() => kit.audit.find((e) => e.route === 'chatgpt'), { timeout: 3000 })
        .toMatchObject({
          status: 0,
          error: 'client closed',
        });
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual([]);
      // The refreshed token was stored: the next request goes straight through.
      const ok = await request(kit.socket, {
        path: '/chatgpt/models',
        headers: { authorization: `Bearer ${tok}` },
      });
      expect(ok.status).toBe(200);
      expect(seen).toEqual(['/backend-api/codex/models']);
      expect(tokens.refreshCalls).toBe(1);
    } finally {
      await kit.close();
      await backend.close();
      await tokens.close();
    }
  });
});

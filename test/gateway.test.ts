/**
 * The gateway against a fake upstream on 127.0.0.1: token → group, grants, credential
 * injection, streaming, abuse (malformed, huge headers, slow clients, dying upstreams), audit.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { raw, request, startKit, type Kit } from './support/gateway-kit.js';

const KEY_A = 'sk-ant-api03-REALKEY-' + 'a'.repeat(40);
const KEY_O = 'sk-proj-REALOPENAI-' + 'o'.repeat(40);
const KEY_LOCAL = 'local-endpoint-key-' + 'l'.repeat(20);

describe('gateway reverse proxy', () => {
  let up: FakeUpstream;
  let kit: Kit;
  let tokA: string;
  let tokB: string;

  beforeAll(async () => {
    up = await startFakeUpstream();
    kit = await startKit({
      upstreams: { anthropic: up.url, openai: up.url },
      maxHeaderBytes: 16 * 1024,
      idleTimeoutMs: 1500,
    });
    kit.vault.set({ name: 'claude', kind: 'anthropic', value: KEY_A });
    kit.vault.set({ name: 'oai', kind: 'openai', value: KEY_O });
    kit.vault.set({ name: 'local', kind: 'openai-compatible', value: KEY_LOCAL, baseUrl: `${up.url}/v1` });
    kit.vault.grant('local', kit.groups.a.id); // local: alpha only
    tokA = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'sa').token;
    tokB = kit.gateway.issue({ groupId: kit.groups.b.id, groupName: 'beta' }, 'sb').token;
  });
  afterAll(async () => {
    await kit.close();
    await up.close();
  });
  afterEach(() => {
    up.requests.length = 0;
  });

  it('injects the real Anthropic key and strips the placeholder', async () => {
    const r = await request(kit.socket, {
      method: 'POST',
      path: '/anthropic/v1/messages?beta=true',
      headers: { 'x-api-key': tokA, 'content-type': 'application/json', cookie: 'x=1' },
      body: '{"stream":true}',
    });
    expect(r.status).toBe(200);
    expect(r.body).toContain('event: done');
    const rec = up.requests[0]!;
    expect(rec.url).toBe('/v1/messages?beta=true');
    expect(rec.headers['x-api-key']).toBe(KEY_A);
    expect(rec.headers.authorization).toBeUndefined();
    expect(rec.headers.cookie).toBeUndefined();
    expect(rec.body).toBe('{"stream":true}');
    expect(JSON.stringify(rec.headers)).not.toContain(tokA);
    expect(r.body + JSON.stringify(r.headers)).not.toContain(KEY_A);
  });

  it('injects a Bearer key for OpenAI and for a named OpenAI-compatible endpoint', async () => {
    const o = await request(kit.socket, {
      path: '/openai/v1/models',
      headers: { authorization: `Bearer ${tokB}` },
    });
    expect(o.status).toBe(200);
    expect(up.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEY_O}`);
    const l = await request(kit.socket, {
      path: '/endpoints/local/models',
      headers: { authorization: `Bearer ${tokA}` },
    });
    expect(l.status).toBe(200);
    expect(up.requests.at(-1)!.url).toBe('/v1/models');
    expect(up.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEY_LOCAL}`);
    // A keyless local endpoint (Ollama): stored with an empty value, forwarded with no key at all.
    kit.vault.set({ name: 'ollama', kind: 'openai-compatible', value: '', baseUrl: `${up.url}/v1` });
    kit.vault.grantAll('ollama');
    const n = await request(kit.socket, {
      path: '/endpoints/ollama/models',
      headers: { authorization: `Bearer ${tokA}` },
    });
    expect(n.status).toBe(200);
    expect(up.requests.at(-1)!.headers.authorization).toBeUndefined();
    expect(() => kit.vault.set({ name: 'nokey', kind: 'anthropic', value: ' ' })).toThrow(
      'the secret value is empty',
    );
  });

  it('refuses unknown, missing and revoked tokens without contacting the upstream', async () => {
    const t = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'gone');
    t.revoke();
    const variants: Array<Record<string, string>> = [
      {},
      { 'x-api-key': 'pcgw_' + 'x'.repeat(43) },
      { 'x-api-key': KEY_A },
      { 'x-api-key': t.token },
    ];
    for (const headers of variants) {
      const r = await request(kit.socket, { path: '/anthropic/v1/models', headers });
      expect(r.status).toBe(401);
      expect(r.body).toContain('unknown or expired gateway token');
    }
    expect(up.requests).toHaveLength(0);
  });

  it("refuses a group without a grant, and one group's token cannot reach another's secret", async () => {
    const r = await request(kit.socket, {
      path: '/endpoints/local/models',
      headers: { authorization: `Bearer ${tokB}` },
    });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.message).toContain('agent group "beta" has no grant');
    kit.vault.revoke('claude', kit.groups.b.id);
    const c = await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': tokB } });
    expect(c.status).toBe(403);
    const ok = await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': tokA } });
    expect(ok.status).toBe(200);
    kit.vault.grantAll('claude');
    expect(up.requests).toHaveLength(1);
    const missing = await request(kit.socket, { path: '/chatgpt/models', headers: { 'x-api-key': tokA } });
    expect(missing.status).toBe(401); // a credential problem: clients fail at once, no retries
    expect(JSON.parse(missing.body).error.message).toBe(
      'the vault holds no codex-chatgpt secret (polyclaw secrets set)',
    );
    const unknown = await request(kit.socket, { path: '/elsewhere/x', headers: { 'x-api-key': tokA } });
    expect(unknown.status).toBe(404);
  });

  it('streams SSE as it arrives (first event long before the last)', async () => {
    const t0 = Date.now();
    const firstAt = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: kit.socket,
          method: 'POST',
          path: '/anthropic/v1/messages?events=5&gapMs=200',
          headers: { 'x-api-key': tokA },
          agent: false,
        },
        (res) => {
          let first = 0;
          res.on('data', () => (first ||= Date.now() - t0));
          res.on('end', () => resolve(first));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    const total = Date.now() - t0;
    expect(total).toBeGreaterThanOrEqual(800);
    expect(firstAt).toBeLessThan(300);
  });

  it('answers malformed requests and huge headers, and keeps serving others', async () => {
    const bad = await raw(kit.socket, 'THIS IS NOT HTTP\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    const huge = await raw(
      kit.socket,
      `GET /anthropic/v1/models HTTP/1.1\r\nhost: x\r\nx-api-key: ${tokA}\r\nx-big: ${'y'.repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1\.1 431/);
    const ok = await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': tokA } });
    expect(ok.status).toBe(200);
  });

  it('a stalled client is dropped while other requests go through', async () => {
    const slow = net.connect(kit.socket);
    slow.on('error', () => slow.destroy());
    slow.write(
      `POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: ${tokA}\r\ncontent-length: 100000\r\n\r\n{"par`,
    );
    const closed = new Promise<void>((r) => slow.on('close', () => r()));
    for (let i = 0; i < 3; i++) {
      const r = await request(kit.socket, {
        path: '/openai/v1/models',
        headers: { authorization: `Bearer ${tokB}` },
      });
      expect(r.status).toBe(200);
    }
    await Promise.race([
      closed,
      new Promise((_, rej) => setTimeout(() => rej(new Error('slow client not dropped')), 8000)),
    ]);
  });

  it('an upstream that dies mid-stream ends only that response', async () => {
    const dying = request(kit.socket, { path: '/anthropic/die', headers: { 'x-api-key': tokA } }).then(
      (r) => ({ ok: true as const, r }),
      (err: Error) => ({ ok: false as const, err }),
    );
    const other = request(kit.socket, {
      method: 'POST',
      path: '/openai/v1/responses?events=3&gapMs=50',
      headers: { authorization: `Bearer ${tokB}` },
      body: '{}',
    });
    const [d, o] = await Promise.all([dying, other]);
    expect(d.ok).toBe(false);
    expect(o.status).toBe(200);
    expect(o.body).toContain('event: done');
    expect(o.body).not.toContain('partial');
    const again = await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': tokA } });
    expect(again.status).toBe(200);
  });

  it('an unreachable upstream is a 502, not a crash', async () => {
    kit.vault.set({ name: 'dead', kind: 'openai-compatible', value: 'k', baseUrl: 'http://127.0.0.1:9' });
    const r = await request(kit.socket, {
      path: '/endpoints/dead/models',
      headers: { authorization: `Bearer ${tokA}` },
    });
    expect(r.status).toBe(502);
    kit.vault.delete('dead');
  });

  it('audits every request without a secret or a token, and records last use', () => {
    expect(kit.audit.length).toBeGreaterThan(10);
    const e = kit.audit.find((x) => x.route === 'anthropic' && x.status === 200)!;
    expect(e).toMatchObject({ group: 'alpha', method: expect.any(String) });
    expect(e.durationMs).toBeGreaterThanOrEqual(0);
    expect(e.bytesOut).toBeGreaterThan(0);
    const all = JSON.stringify(kit.audit) + kit.logLines.join('\n');
    for (const s of [KEY_A, KEY_O, KEY_LOCAL, tokA, tokB]) expect(all).not.toContain(s);
    const claude = kit.vault.list().find((s) => s.name === 'claude')!;
    expect(claude.lastUsedAt).toBeGreaterThan(0);
    expect(claude.lastStatus).toBe(200);
  });

  it('enforces a per-group hourly request budget', async () => {
    kit.policies.beta = { allowHosts: [], requestsPerHour: 2 };
    const codes: number[] = [];
    for (let i = 0; i < 3; i++)
      codes.push(
        (
          await request(kit.socket, {
            path: '/openai/v1/models',
            headers: { authorization: `Bearer ${tokB}` },
          })
        ).status,
      );
    expect(codes).toEqual([200, 200, 429]);
    delete kit.policies.beta;
  });

  it('serves the loopback TCP listener the same way', async () => {
    const r = await fetch(`http://127.0.0.1:${kit.tcpPort}/openai/v1/models`, {
      headers: { authorization: `Bearer ${tokA}` },
    });
    expect(r.status).toBe(200);
    await r.text();
  });
});

/**
 * The gateway against hostile paths and failing collaborators, with a fake upstream on
 * 127.0.0.1: a path cannot climb out of a secret's base URL, the route table matches only its
 * own names, a client's `anthropic-beta` list survives a subscription token, and a secret store
 * that fails to record a use or to open a secret neither crashes the gateway nor leaks a token.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SecretSource } from '../src/gateway/contract.js';
import { ChatgptRefresher, FORCED_REFRESH_MS } from '../src/gateway/chatgpt-refresher.js';
import { isPrivateAddress } from '../src/gateway/egress.js';
import { upstreamUrl } from '../src/gateway/routes.js';
import type { Vault } from '../src/gateway/vault.js';
import type { Config } from '../src/host/config.js';
import { gatewayDeps } from '../src/host/gateway-host.js';
import { createLogger } from '../src/shared/log.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { raw, request, startKit, type Kit, jwt } from './support/gateway-kit.js';

const OAT = 'sk-ant-oat01-REALSUBSCRIPTION-' + 's'.repeat(40);

describe('gateway paths and routes', () => {
  let up: FakeUpstream;
  let kit: Kit;
  let tok: string;

  beforeAll(async () => {
    up = await startFakeUpstream();
    kit = await startKit({
      upstreams: { anthropic: up.url, openai: up.url, 'codex-chatgpt': `${up.url}/backend-api/codex` },
    });
    kit.vault.set({ name: 'oai', kind: 'openai', value: 'sk-proj-' + 'o'.repeat(40) });
    kit.vault.set({ name: 'claude', kind: 'anthropic', value: OAT });
    kit.vault.set({ name: 'local', kind: 'openai-compatible', value: 'k', baseUrl: `${up.url}/v1` });
    kit.vault.set({
      name: 'chatgpt',
      kind: 'codex-chatgpt',
      value: JSON.stringify({
        OPENAI_API_KEY: null,
        tokens: {
          access_token: jwt({ exp: Math.floor(Date.now() / 1000) + 3600 }),
          refresh_token: 'r'.repeat(30),
          account_id: 'acct-1',
        },
      }),
    });
    tok = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's').token;
  });
  afterAll(async () => {
    await kit.close();
    await up.close();
  });
  afterEach(() => {
    up.requests.length = 0;
  });

  it('refuses dot segments, backslashes and encoded slashes without contacting the upstream', async () => {
    const paths = [
      '/chatgpt/../../backend-api/me',
      '/chatgpt/%2e%2e/%2E%2e/backend-api/me',
      '/chatgpt/.%2E/x/models',
      '/chatgpt/./models',
      '/endpoints/local/../../admin',
      '/endpoints/local/%2e%2e/admin?x=1',
      '/openai/v1%2fmodels',
      '/openai/v1%5Cmodels',
      '/openai/v1\\..\\models',
    ];
    for (const path of paths) {
      const r = await request(kit.socket, { path, headers: { authorization: `Bearer ${tok}` } });
      expect(r.status, path).toBe(400);
      const message = (JSON.parse(r.body) as { error: { message: string } }).error.message;
      expect(message).not.toContain('\n');
    }
    expect(up.requests).toEqual([]);
    // Dots inside a segment are ordinary characters.
    const ok = await request(kit.socket, {
      path: '/endpoints/local/a..b/models',
      headers: { authorization: `Bearer ${tok}` },
    });
    expect(ok.status).toBe(200);
    expect(up.requests.map((q) => q.url)).toEqual(['/v1/a..b/models']);
  });

  it('keeps the final upstream URL under the base URL path', () => {
    expect(upstreamUrl('https://chatgpt.com/backend-api/codex', '/responses')?.href).toBe(
      'https://chatgpt.com/backend-api/codex/responses',
    );
    expect(upstreamUrl('https://chatgpt.com/backend-api/codex/', '/../me')).toBeNull();
    expect(upstreamUrl('http://127.0.0.1:9/v1', '/../v1x/models')).toBeNull();
    expect(upstreamUrl('http://127.0.0.1:9', '/../admin')?.pathname).toBe('/admin');
  });

  it('matches only its own route names (/constructor is no route)', async () => {
    const r = await request(kit.socket, {
      path: '/constructor/x',
      headers: { authorization: `Bearer ${tok}` },
    });
    expect(r.status).toBe(404);
    expect(up.requests).toEqual([]);
    const deps = gatewayDeps(
      {
        gateway: { groups: { alpha: { allowHosts: ['x.example'], requestsPerHour: 5 } } },
      } as unknown as Config,
      kit.vault,
      createLogger({ sink: () => {} }),
    );
    expect(deps.policy('constructor')).toEqual({ allowHosts: [], requestsPerHour: null });
    expect(deps.policy('alpha')).toEqual({ allowHosts: ['x.example'], requestsPerHour: 5 });
  });

  it("adds the subscription beta to the client's anthropic-beta list instead of replacing it", async () => {
    const r = await request(kit.socket, {
      path: '/anthropic/v1/models',
      headers: { 'x-api-key': tok, 'anthropic-beta': 'foo, oauth-2025-04-20,bar' },
    });
    expect(r.status).toBe(200);
    const seen = up.requests[0]!.headers;
    expect(seen.authorization).toBe(`Bearer ${OAT}`);
    expect(String(seen['anthropic-beta']).split(',')).toEqual(['foo', 'oauth-2025-04-20', 'bar']);
    await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': tok } });
    expect(up.requests[1]!.headers['anthropic-beta']).toBe('oauth-2025-04-20');
  });
});

describe('request framing on the pooled upstream connections', () => {
  let up: FakeUpstream;
  let kit: Kit;

  beforeAll(async () => {
    up = await startFakeUpstream();
    kit = await startKit({ upstreams: { anthropic: up.url } });
    kit.vault.set({
      name: 'local',
      kind: 'openai-compatible',
      value: 'sk-REAL-LOCAL',
      baseUrl: `${up.url}/v1`,
    });
    kit.vault.set({ name: 'claude', kind: 'anthropic', value: 'sk-ant-api03-' + 'b'.repeat(40) });
  });
  afterAll(async () => {
    await kit.close();
    await up.close();
  });

  it("a chunked body on a GET stays that request's body: it cannot become the next request, with the next caller's key", async () => {
    const alpha = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's1').token;
    const beta = kit.gateway.issue({ groupId: kit.groups.b.id, groupName: 'beta' }, 's2').token;
    const smuggled = 'GET /admin/escaped HTTP/1.1\r\nX-J: ';
    const first = await raw(
      kit.socket,
      `GET /endpoints/local/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alpha}\r\n` +
        `transfer-encoding: chunked\r\nconnection: close\r\n\r\n` +
        `${Buffer.byteLength(smuggled).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
    );
    expect(first).toMatch(/^HTTP\/1\.1 200 /);
    const second = await request(kit.socket, {
      path: '/anthropic/v1/models',
      headers: { 'x-api-key': beta },
    });
    expect(second.status).toBe(200);
    expect(second.body).toContain('fake-model');
    expect(up.requests.map((q) => [q.method, q.url])).toEqual([
      ['GET', '/v1/models'],
      ['GET', '/v1/models'],
    ]);
    expect(up.requests[0]!.body).toBe(smuggled);
    expect(up.requests[1]!.headers['x-api-key']).toBe('sk-ant-api03-' + 'b'.repeat(40));
  });

  it('an upstream status the client side cannot carry is a 502, and the gateway goes on serving', async () => {
    const odd = net.createServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n'));
    });
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (odd.address() as net.AddressInfo).port;
      kit.vault.set({
        name: 'odd',
        kind: 'openai-compatible',
        value: 'k',
        baseUrl: `http://127.0.0.1:${port}/v1`,
      });
      const tok = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's3').token;
      const r = await request(kit.socket, {
        path: '/endpoints/odd/models',
        headers: { authorization: `Bearer ${tok}` },
      });
      expect(r.status).toBe(502);
      expect(r.body).toContain('cannot be passed on');
      const next = await request(kit.socket, {
        path: '/endpoints/local/models',
        headers: { authorization: `Bearer ${tok}` },
      });
      expect(next.status).toBe(200);
    } finally {
      await new Promise<void>((r) => odd.close(() => r()));
    }
  });
});

describe('connections the gateway does not keep', () => {
  it('a refused client is hung up on after its answer, however slowly it sends a body; past the cap, connections are refused', async () => {
    const kit = await startKit({ maxConnections: 3 });
    try {
      const trickler = net.connect(kit.socket);
      trickler.on('error', () => trickler.destroy());
      let answer = '';
      trickler.on('data', (c) => (answer += c.toString()));
      const closed = new Promise<number>((r) => trickler.on('close', () => r(Date.now())));
      const t0 = Date.now();
      trickler.write(
        'POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: nope\r\ncontent-length: 100000\r\n\r\n{',
      );
      const drip = setInterval(() => trickler.writable && trickler.write('x'), 100);
      try {
        expect((await closed) - t0).toBeLessThan(4000);
      } finally {
        clearInterval(drip);
      }
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      const idle = Array.from({ length: 3 }, () => net.connect(kit.socket));
      await Promise.all(idle.map((s) => new Promise((r) => s.once('connect', r))));
      const extra = await raw(kit.socket, 'GET /anthropic/v1/models HTTP/1.1\r\nhost: x\r\n\r\n', 2000);
      expect(extra).toBe(''); // closed at once, unanswered
      for (const s of idle) s.destroy();
    } finally {
      await kit.close();
    }
  });
});

describe('requests one sandbox may have open at once', () => {
  it('past the cap a sandbox gets 429 at once; another sandbox is still served', async () => {
    const up = await startFakeUpstream({ events: 40, gapMs: 50 });
    const kit = await startKit({ upstreams: { anthropic: up.url }, maxPerSandbox: 2 });
    try {
      kit.vault.set({ name: 'claude', kind: 'anthropic', value: 'sk-ant-api03-' + 'c'.repeat(40) });
      const a = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'busy').token;
      const b = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'calm').token;
      const stream = (tok: string) =>
        request(kit.socket, {
          method: 'POST',
          path: '/anthropic/v1/messages',
          headers: { 'x-api-key': tok },
          body: '{}',
        });
      const long = [stream(a), stream(a)];
      await expect.poll(() => up.requests.length).toBe(2);
      const third = await stream(a);
      expect(third.status).toBe(429);
      expect(third.body).toContain('too many requests open at once');
      expect(
        (await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': b } })).status,
      ).toBe(200);
      expect((await Promise.all(long)).map((r) => r.status)).toEqual([200, 200]);
      // Its places are given back as its requests end.
      expect(
        (await request(kit.socket, { path: '/anthropic/v1/models', headers: { 'x-api-key': a } })).status,
      ).toBe(200);
    } finally {
      await kit.close();
      await up.close();
    }
  });
});

describe('gateway with a failing secret store', () => {
  let up: FakeUpstream;
  let kit: Kit;
  let vault: Vault;

  beforeAll(async () => {
    up = await startFakeUpstream();
    const secrets: SecretSource = {
      forKind: (c, k) => vault.forKind(c, k),
      byName: (c, n) => {
        if (n === 'broken') throw new Error('the secret could not be opened');
        return vault.byName(c, n);
      },
      markUsed: () => {
        throw new Error('database is locked');
      },
      replaceValue: (id, v) => vault.replaceValue(id, v),
    };
    kit = await startKit({ secrets, upstreams: { anthropic: up.url } });
    vault = kit.vault;
    vault.set({ name: 'claude', kind: 'anthropic', value: 'sk-ant-api03-' + 'a'.repeat(40) });
  });
  afterAll(async () => {
    await kit.close();
    await up.close();
  });

  it('a use that cannot be recorded is logged; requests complete and are audited', async () => {
    const tok = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's').token;
    for (let i = 0; i < 2; i++) {
      const r = await request(kit.socket, {
        method: 'POST',
        path: '/anthropic/v1/messages',
        headers: { 'x-api-key': tok },
        body: '{}',
      });
      expect(r.status).toBe(200);
      expect(r.body).toContain('event: done');
    }
    await expect.poll(() => kit.audit.filter((e) => e.route === 'anthropic').length).toBe(2);
    expect(kit.audit.filter((e) => e.route === 'anthropic').map((e) => e.status)).toEqual([200, 200]);
    expect(kit.logLines.some((l) => l.includes('database is locked'))).toBe(true);
  });

  it('a ticket whose endpoint secret cannot be opened leaves no token behind', () => {
    const before = kit.gateway.tokens.size;
    expect(() => kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'sb', 'broken')).toThrow(
      'the secret could not be opened',
    );
    expect(kit.gateway.tokens.size).toBe(before);
  });
});

describe('ChatGPT token refreshes a 401 forces', () => {
  it('only for the token in use now, and at most once a minute per secret', async () => {
    let clock = 1_000_000;
    let calls = 0;
    const stored: string[] = [];
    const fetchFn = (async () => {
      calls += 1;
      return new Response(
        JSON.stringify({ access_token: jwt({ exp: 9e9, n: calls }), refresh_token: 'r2' }),
        {
          status: 200,
        },
      );
    }) as unknown as typeof fetch;
    const refresher = new ChatgptRefresher({
      secrets: { replaceValue: (_id: string, v: string) => stored.push(v) } as unknown as SecretSource,
      tokenUrl: 'http://127.0.0.1:9/oauth/token',
      fetch: fetchFn,
      now: () => clock,
      log: createLogger({ level: 'error' }),
    });
    const auth = (access: string) =>
      JSON.stringify({ tokens: { access_token: access, refresh_token: 'r1', account_id: 'a' } });
    const first = jwt({ exp: 9e9, n: 0 });
    const secret = {
      id: 'c',
      name: 'chatgpt',
      kind: 'codex-chatgpt' as const,
      baseUrl: null,
      value: auth(first),
    };
    // A 401 to an older token than the one in use changes nothing.
    refresher.markRejected('c', 'an-older-token');
    expect((await refresher.credential(secret)).accessToken).toBe(first);
    expect(calls).toBe(0);
    // A 401 to the token in use: one refresh, stored before use.
    refresher.markRejected('c', first);
    const second = (await refresher.credential(secret)).accessToken;
    expect(calls).toBe(1);
    expect(second).not.toBe(first);
    expect(stored).toHaveLength(1);
    // The new token rejected at once again: not before a minute has passed.
    const next = { ...secret, value: auth(second) };
    refresher.markRejected('c', second);
    expect((await refresher.credential(next)).accessToken).toBe(second);
    expect(calls).toBe(1);
    clock += FORCED_REFRESH_MS;
    await refresher.credential(next);
    expect(calls).toBe(2);
  });
});

describe('private addresses egress refuses', () => {
  it('in every spelling, IPv4 written as IPv6 included; public ones pass', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      'fe80::1',
      'febf::1',
      'fd00::5',
      '::',
      '::7f00:1',
      '::127.0.0.1',
      '::ffff:0:127.0.0.1',
      '64:ff9b::7f00:1',
      '64:ff9b:1::a00:1',
      '2002:7f00:1::1',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      'fec0::1',
      '198.18.0.1',
      '192.0.0.8',
    ])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of ['8.8.8.8', '::ffff:808:808', '2606:4700::1111'])
      expect(isPrivateAddress(ip), ip).toBe(false);
    expect(isPrivateAddress('not-an-address')).toBe(true);
  });
});

describe('a refreshed ChatGPT token the vault cannot store', () => {
  it('is kept in memory and used, not refreshed again, and stored once the vault takes it', async () => {
    let calls = 0;
    let failing = true;
    const stored: string[] = [];
    const refresher = new ChatgptRefresher({
      secrets: {
        replaceValue: (_id: string, v: string) => {
          if (failing) throw new Error('database is locked');
          stored.push(v);
        },
      } as unknown as SecretSource,
      tokenUrl: 'http://127.0.0.1:9/oauth/token',
      fetch: (async () => {
        calls += 1;
        return new Response(
          JSON.stringify({ access_token: jwt({ exp: 9e9, n: calls }), refresh_token: 'rotated' }),
        );
      }) as unknown as typeof fetch,
      now: () => 1_000_000,
      log: createLogger({ level: 'error', sink: () => {} }),
    });
    const expired = JSON.stringify({
      tokens: { access_token: jwt({ exp: 1 }), refresh_token: 'r1', account_id: 'a' },
    });
    const secret = {
      id: 'c',
      name: 'chatgpt',
      kind: 'codex-chatgpt' as const,
      baseUrl: null,
      value: expired,
    };
    const fresh = (await refresher.credential(secret)).accessToken;
    expect(calls).toBe(1);
    expect(stored).toEqual([]);
    // The vault still holds the old value: the kept token is used, with no second refresh.
    expect((await refresher.credential(secret)).accessToken).toBe(fresh);
    expect(calls).toBe(1);
    failing = false;
    await refresher.credential(secret);
    expect(stored).toHaveLength(1);
    expect(JSON.parse(stored[0]!).tokens.refresh_token).toBe('rotated');
  });
});

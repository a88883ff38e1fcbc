/**
 * CONNECT egress through the gateway: allowlisted names reach their (127.0.0.1) target, every
 * other name is refused with a readable reason, and names resolving to private addresses are
 * refused unless the gateway allows them. Hostnames are mapped by an injected resolver; the
 * only network target ever used is 127.0.0.1.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoTarget } from './support/fake-upstream.js';
import { startKit, type Kit } from './support/gateway-kit.js';

const HOSTS: Record<string, string> = {
  'registry.example.test': '127.0.0.1',
  'api.allowed.test': '127.0.0.1',
  'evil.test': '127.0.0.1',
};
const resolve = async (h: string) => {
  const ip = HOSTS[h];
  if (!ip) throw new Error(`ENOTFOUND ${h}`);
  return ip;
};
const connect = (ip: string, port: number) => {
  if (ip !== '127.0.0.1') throw new Error(`test tried to reach ${ip}`);
  return net.connect({ host: ip, port });
};

function connectVia(socket: string, authority: string, token: string | null, send = 'ping'): Promise<string> {
  return new Promise((resolveP) => {
    const s = net.connect(socket);
    let out = '';
    let sent = false;
    const timer = setTimeout(() => s.destroy(), 3000);
    s.on('data', (c) => {
      out += c.toString();
      if (out.includes('200 Connection Established') && !sent) {
        sent = true;
        s.write(send);
      }
      if (out.includes(`banner|${send}`)) s.destroy();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      clearTimeout(timer);
      resolveP(out);
    });
    const auth = token
      ? `proxy-authorization: Basic ${Buffer.from(`polyclaw:${token}`).toString('base64')}\r\n`
      : '';
    s.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n${auth}\r\n`);
  });
}

describe('gateway CONNECT egress', () => {
  let kit: Kit;
  let strict: Kit;
  let target: { port: number; close(): Promise<void> };
  let tokA: string;
  let tokB: string;

  beforeAll(async () => {
    target = await startEchoTarget('banner|');
    kit = await startKit({ resolve, connect, allowPrivateEgress: true });
    strict = await startKit({ resolve, connect });
    kit.policies.alpha = { allowHosts: ['registry.example.test', '*.allowed.test'], requestsPerHour: null };
    strict.policies.alpha = { allowHosts: ['registry.example.test'], requestsPerHour: null };
    tokA = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 's1').token;
    tokB = kit.gateway.issue({ groupId: kit.groups.b.id, groupName: 'beta' }, 's2').token;
  });
  afterAll(async () => {
    await kit.close();
    await strict.close();
    await target.close();
  });

  it('tunnels to an allowlisted host (exact and wildcard)', async () => {
    for (const h of ['registry.example.test', 'api.allowed.test']) {
      const out = await connectVia(kit.socket, `${h}:${target.port}`, tokA);
      expect(out).toContain('HTTP/1.1 200 Connection Established');
      expect(out).toContain('banner|ping');
    }
  });

  it('refuses other hosts, other groups and missing tokens with a readable reason', async () => {
    const denied = await connectVia(kit.socket, `evil.test:${target.port}`, tokA);
    expect(denied).toMatch(/^HTTP\/1\.1 403/);
    expect(denied).toContain('egress to evil.test is not allowed for agent group "alpha"');
    expect(denied).not.toContain('banner');
    const otherGroup = await connectVia(kit.socket, `registry.example.test:${target.port}`, tokB);
    expect(otherGroup).toMatch(/^HTTP\/1\.1 403/);
    const noToken = await connectVia(kit.socket, `registry.example.test:${target.port}`, null);
    expect(noToken).toMatch(/^HTTP\/1\.1 407/);
    const bad = await connectVia(kit.socket, 'not a target', tokA);
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    const suffixTrick = await connectVia(kit.socket, `allowed.test.evil.test:${target.port}`, tokA);
    expect(suffixTrick).toMatch(/^HTTP\/1\.1 403/);
  });

  it('refuses an allowlisted name that resolves to a private address by default', async () => {
    const t = strict.gateway.issue({ groupId: strict.groups.a.id, groupName: 'alpha' }, 's3').token;
    const out = await connectVia(strict.socket, `registry.example.test:${target.port}`, t);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toContain('private address');
  });

  it('refuses plain-HTTP proxying and audits tunnels', async () => {
    const r = await fetch(`http://127.0.0.1:${kit.tcpPort}/x`).catch((e: Error) => e);
    expect(r).not.toBeInstanceOf(Error);
    const entries = kit.audit.filter((e) => e.method === 'CONNECT');
    expect(entries.some((e) => e.status === 200 && e.route.startsWith('connect registry.example.test'))).toBe(
      true,
    );
    expect(entries.some((e) => e.status === 403)).toBe(true);
    expect(JSON.stringify(kit.audit)).not.toContain(tokA);
  });
});

describe('open tunnels', () => {
  /** A tunnel left open: resolves with a close() and a promise of its end. */
  async function openTunnel(kit: Kit, port: number, token: string) {
    const s = net.connect(kit.socket);
    const ended = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', () => s.destroy());
    let out = '';
    const established = new Promise<void>((r) =>
      s.on('data', (c) => {
        out += c.toString();
        if (out.includes('banner|')) r();
      }),
    );
    const auth = Buffer.from(`polyclaw:${token}`).toString('base64');
    s.write(`CONNECT registry.example.test:${port} HTTP/1.1\r\nproxy-authorization: Basic ${auth}\r\n\r\n`);
    await established;
    return { s, ended };
  }
  const within = (p: Promise<void>, ms: number) =>
    Promise.race([p.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), ms))]);

  it("close when their sandbox's token is revoked, and after the idle timeout; others stay", async () => {
    const target = await startEchoTarget('banner|');
    const kit = await startKit({ resolve, connect, allowPrivateEgress: true, idleTimeoutMs: 600 });
    try {
      kit.policies.alpha = { allowHosts: ['registry.example.test'], requestsPerHour: null };
      const one = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'sb1');
      const two = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'sb2');
      const a = await openTunnel(kit, target.port, one.token);
      const b = await openTunnel(kit, target.port, two.token);
      one.revoke();
      expect(await within(a.ended, 300)).toBe('closed');
      // The other sandbox's tunnel lives on while used, and goes once idle.
      for (let i = 0; i < 3; i++) {
        b.s.write('x');
        expect(await within(b.ended, 200)).toBe('still open');
      }
      expect(await within(b.ended, 2000)).toBe('closed');
    } finally {
      await kit.close();
      await target.close();
    }
  });
});

describe('a tunnel whose token is revoked while its name resolves', () => {
  it('dials nothing: no connection reaches the target', async () => {
    let connections = 0;
    const target = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
    let release!: () => void;
    const resolving = new Promise<void>((r) => (release = r));
    const slowResolve = async (h: string) => {
      await resolving;
      return resolve(h);
    };
    const kit = await startKit({ resolve: slowResolve, connect, allowPrivateEgress: true });
    try {
      kit.policies.alpha = { allowHosts: ['registry.example.test'], requestsPerHour: null };
      const ticket = kit.gateway.issue({ groupId: kit.groups.a.id, groupName: 'alpha' }, 'sb');
      const port = (target.address() as net.AddressInfo).port;
      const out = connectVia(kit.socket, `registry.example.test:${port}`, ticket.token);
      await new Promise((r) => setTimeout(r, 100));
      ticket.revoke();
      release();
      expect(await out).not.toContain('200 Connection Established');
      await new Promise((r) => setTimeout(r, 300));
      expect(connections).toBe(0);
    } finally {
      await kit.close();
      await new Promise<void>((r) => target.close(() => r()));
    }
  });
});

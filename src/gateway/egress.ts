/**
 * The egress half of the gateway: HTTP CONNECT tunnels for general outbound traffic (an
 * agent fetching a page, npm install). Invariants:
 *  - the caller is identified by its token (Proxy-Authorization) and only hosts on its group's
 *    allowlist are reached; the default allowlist is empty;
 *  - the check is on the requested name, then the resolved address must not be loopback,
 *    private or link-local unless the gateway was told to allow that (tests), so an allowlisted
 *    name cannot be pointed at the host's own services;
 *  - a refusal is a complete HTTP answer with a sentence the agent can read and act on.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { errorMessage } from '../shared/errors.js';
import type { Caller, Connector, GroupPolicy, Resolver } from './contract.js';

export const defaultResolver: Resolver = async (host) => (await dns.lookup(host)).address;
export const defaultConnector: Connector = (ip, port) => net.connect({ host: ip, port });

export function parseTarget(authority: string | undefined): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(authority ?? '');
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port };
}

export function hostAllowed(host: string, allow: string[]): boolean {
  return allow.some((a) => {
    const p = a.toLowerCase();
    if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
    return host === p;
  });
}

/**
 * Addresses that are not the public internet. A BlockList also matches an IPv4 address written
 * as IPv6 in any form (`::ffff:127.0.0.1`, `::ffff:7f00:1`), which string prefixes did not.
 */
const PRIVATE = (() => {
  const b = new net.BlockList();
  for (const [a, bits] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.0.2.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['198.51.100.0', 24],
    ['203.0.113.0', 24],
    ['224.0.0.0', 3],
  ] as const)
    b.addSubnet(a, bits, 'ipv4');
  for (const [a, bits] of [
    // IPv4-compatible (::127.0.0.1, :: and ::1 among them) and IPv4-translated forms, NAT64,
    // 6to4 and Teredo: each can carry an IPv4 address of the host's own networks.
    ['::', 96],
    ['::ffff:0:0:0', 96],
    ['64:ff9b::', 96],
    ['64:ff9b:1::', 48],
    ['100::', 64],
    ['2001::', 32],
    ['2001:db8::', 32],
    ['2002::', 16],
    ['fc00::', 7],
    ['fe80::', 10],
    ['fec0::', 10],
  ] as const)
    b.addSubnet(a, bits, 'ipv6');
  return b;
})();

export function isPrivateAddress(ip: string): boolean {
  const family = net.isIPv4(ip) ? 'ipv4' : net.isIPv6(ip) ? 'ipv6' : null;
  return family ? PRIVATE.check(ip, family) : true;
}

export function refuse(sock: net.Socket, status: number, reason: string, message: string): void {
  const body = `polyclaw gateway: ${message}\n`;
  if (!sock.destroyed)
    sock.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
}

export interface TunnelOptions {
  caller: Caller;
  policy: GroupPolicy;
  resolve: Resolver;
  connect: Connector;
  allowPrivate: boolean;
  connectTimeoutMs: number;
  /** An open tunnel with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
}

/** Open the tunnel or refuse; resolves with the status and bytes for the audit line. */
export async function tunnel(
  authority: string | undefined,
  client: net.Socket,
  head: Buffer,
  o: TunnelOptions,
): Promise<{ route: string; status: number; bytesIn: number; bytesOut: number; error?: string }> {
  const t = parseTarget(authority);
  if (!t) {
    refuse(client, 400, 'Bad Request', 'CONNECT needs host:port');
    return { route: 'connect', status: 400, bytesIn: 0, bytesOut: 0 };
  }
  const route = `connect ${t.host}:${t.port}`;
  if (!hostAllowed(t.host, o.policy.allowHosts)) {
    refuse(
      client,
      403,
      'Forbidden',
      `egress to ${t.host} is not allowed for agent group "${o.caller.groupName}". The owner can allow it in config.json under gateway.groups.${o.caller.groupName}.allowHosts.`,
    );
    return { route, status: 403, bytesIn: 0, bytesOut: 0 };
  }
  let ip: string;
  try {
    ip = await o.resolve(t.host);
  } catch (err) {
    refuse(client, 502, 'Bad Gateway', `cannot resolve ${t.host}: ${errorMessage(err)}`);
    return { route, status: 502, bytesIn: 0, bytesOut: 0, error: 'resolve' };
  }
  if (!o.allowPrivate && isPrivateAddress(ip)) {
    refuse(client, 403, 'Forbidden', `${t.host} resolves to a private address; egress there is refused`);
    return { route, status: 403, bytesIn: 0, bytesOut: 0 };
  }
  // Its token revoked (the sandbox gone) while the name resolved: no connection is made for it.
  if (client.destroyed) return { route, status: 0, bytesIn: 0, bytesOut: 0, error: 'client closed' };
  return new Promise((resolve) => {
    const up = o.connect(ip, t.port);
    const stats = { bytesIn: head.length, bytesOut: 0 };
    let open = false;
    const timer = setTimeout(() => up.destroy(new Error('connect timed out')), o.connectTimeoutMs);
    const finish = (status: number, error?: string) => {
      clearTimeout(timer);
      client.destroy();
      up.destroy();
      resolve({ route, status, ...stats, ...(error ? { error } : {}) });
    };
    up.once('connect', () => {
      clearTimeout(timer);
      open = true;
      up.setNoDelay(true);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      client.on('data', (c: Buffer) => (stats.bytesIn += c.length));
      up.on('data', (c: Buffer) => (stats.bytesOut += c.length));
      // Node drops the server's own timeout from a socket it hands to 'connect': without
      // these, a tunnel nobody uses stays open for as long as either side lives.
      client.setTimeout(o.idleTimeoutMs, () => finish(200, 'idle'));
      up.setTimeout(o.idleTimeoutMs, () => finish(200, 'idle'));
      client.pipe(up);
      up.pipe(client);
    });
    up.on('error', (err) => {
      if (!open) {
        clearTimeout(timer);
        refuse(client, 502, 'Bad Gateway', `cannot reach ${t.host}:${t.port}: ${errorMessage(err)}`);
        resolve({ route, status: 502, ...stats, error: errorMessage(err) });
      } else finish(200, errorMessage(err));
    });
    up.on('close', () => open && finish(200));
    client.on('error', () => finish(200, 'client error'));
    // Gone before the upstream answered too: the dial is dropped, not left for the idle timeout.
    client.on('close', () => (open ? finish(200) : finish(0, 'client closed')));
  });
}

/**
 * Test kit for the gateway: a temp data dir with a real central DB and vault, two groups, a
 * gateway on a unix socket pointed at a fake upstream, and small HTTP helpers over the socket.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { openCentralDb, type Db } from '../../src/host/db/open.js';
import { createGroup, type AgentGroup } from '../../src/host/store/groups.js';
import type { AuditEntry, GatewayDeps, GroupPolicy } from '../../src/gateway/contract.js';
import { Gateway, GATEWAY_SOCKET } from '../../src/gateway/gateway.js';
import { Vault } from '../../src/gateway/vault.js';
import { createLogger } from '../../src/shared/log.js';
import { tempHome } from './cli.js';

export interface Kit {
  home: string;
  db: Db;
  vault: Vault;
  gateway: Gateway;
  socket: string;
  tcpPort: number;
  groups: { a: AgentGroup; b: AgentGroup };
  audit: AuditEntry[];
  logLines: string[];
  policies: Record<string, GroupPolicy>;
  close(): Promise<void>;
}

export async function startKit(deps: Partial<GatewayDeps> = {}): Promise<Kit> {
  const home = tempHome('polyclaw-gw-');
  const db = openCentralDb(path.join(home, 'polyclaw.db'));
  const vault = Vault.open(db, { kind: 'file', path: path.join(home, 'vault.key') });
  const a = createGroup(db, 'alpha', { provider: 'mock' });
  const b = createGroup(db, 'beta', { provider: 'mock' });
  const audit: AuditEntry[] = [];
  const logLines: string[] = [];
  const policies: Record<string, GroupPolicy> = {};
  const gateway = new Gateway({
    secrets: vault,
    policy: (g) => policies[g] ?? { allowHosts: [], requestsPerHour: null },
    log: createLogger({ level: 'debug', sink: (l) => logLines.push(l) }),
    audit: (e) => audit.push(e),
    ...deps,
  });
  const r = await gateway.listen({ socketDir: path.join(home, 'gateway'), tcpPort: 0 });
  return {
    home,
    db,
    vault,
    gateway,
    socket: r.socket,
    tcpPort: r.tcpPort!,
    groups: { a, b },
    audit,
    logLines,
    policies,
    async close() {
      await gateway.close();
      db.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(
  socket: string,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Write raw bytes to the socket and collect what comes back until it closes (or the timeout). */
export function raw(socket: string, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, timeoutMs);
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('error', () => s.destroy());
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(data);
  });
}

export { GATEWAY_SOCKET };

/** An unsigned JWT carrying `claims` (the gateway reads only its `exp` and account claims). */
export const jwt = (claims: object) =>
  `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

/**
 * The gateway server: one HTTP server listening on a unix socket (bind-mounted into bwrap
 * sandboxes) and optionally on a loopback TCP port (runtimes without the socket). It owns the
 * token registry, the per-group request budget, and the audit log. Invariants:
 *  - a bad request (malformed, oversized headers, a stalled client) is answered or dropped on
 *    its own connection only; no request can crash the process or see another's data;
 *  - the audit line names group, route, method, status, bytes and duration — never a header value;
 *  - tokens are revoked when their sandbox exits; a stopped gateway leaves no socket file behind.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { errorMessage, PolyclawError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { CHATGPT_TOKEN_URL } from './chatgpt-auth.js';
import { ChatgptRefresher } from './chatgpt-refresher.js';
import { answerSandboxAuth, isSandboxAuth } from './chatgpt-sandbox.js';
import type { AuditEntry, Caller, GatewayDeps, GatewayTicket, SandboxGatewayAccess } from './contract.js';
import { defaultConnector, defaultResolver, refuse, tunnel } from './egress.js';
import { proxyRequest, sendError, type ProxyContext } from './proxy.js';
import { credentialOf, TokenRegistry } from './tokens.js';

export const GATEWAY_SOCKET = 'gateway.sock';
/**
 * The longest unix socket path the kernel takes (sun_path less its NUL: 108 bytes on Linux, 104
 * on macOS and the BSDs). Node silently cuts a longer one, so the socket would appear somewhere
 * else: every listener checks its path against this first.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Throws a config error naming the path and the limit when `socket` is too long to bind. */
export function checkSocketPath(socket: string, advice = ''): void {
  const bytes = Buffer.byteLength(socket);
  if (bytes > MAX_SOCKET_PATH_BYTES)
    throw new PolyclawError(
      'config',
      `the socket path ${socket} is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte limit for unix sockets${advice ? `: ${advice}` : ''}`,
    );
}
const HOUR = 3_600_000;

export class Gateway implements SandboxGatewayAccess {
  readonly tokens = new TokenRegistry();
  private servers: http.Server[] = [];
  private sockets = new Set<net.Socket>();
  /** Open requests and tunnels by sandbox (maxPerSandbox). */
  private open = new Map<string, number>();
  /** Open CONNECT tunnels by sandbox: its token's revocation closes them. */
  private tunnels = new Map<string, Set<net.Socket>>();
  private budget = new Map<string, { windowStart: number; count: number }>();
  private ctx: ProxyContext;
  private now: () => number;
  private log: Logger;
  private socketDir: string | null = null;
  private tcpPort: number | null = null;

  constructor(private readonly d: GatewayDeps) {
    this.now = d.now ?? Date.now;
    this.log = d.log;
    this.ctx = {
      secrets: d.secrets,
      upstreams: d.upstreams ?? {},
      refresher: new ChatgptRefresher({
        secrets: d.secrets,
        tokenUrl: d.chatgptTokenUrl ?? CHATGPT_TOKEN_URL,
        fetch: d.fetch ?? fetch,
        now: this.now,
        log: d.log,
      }),
      agents: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
      log: d.log,
    };
  }

  /**
   * Listen on `<socketDir>/gateway.sock` (dir made 0700) and, if tcpPort is a number, 127.0.0.1:tcpPort.
   * A failure closes whatever had opened: a listener left behind would keep the process alive.
   */
  async listen(opts: {
    socketDir: string;
    tcpPort?: number | null;
  }): Promise<{ socket: string; tcpPort: number | null }> {
    const socket = path.join(opts.socketDir, GATEWAY_SOCKET);
    checkSocketPath(socket);
    fs.mkdirSync(opts.socketDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(opts.socketDir, 0o700);
    fs.rmSync(socket, { force: true });
    this.socketDir = opts.socketDir;
    try {
      await this.listenOne(socket);
      fs.chmodSync(socket, 0o600);
      if (typeof opts.tcpPort === 'number') {
        const s = await this.listenOne({ port: opts.tcpPort, host: '127.0.0.1' });
        this.tcpPort = (s.address() as net.AddressInfo).port;
      }
    } catch (err) {
      await this.close();
      this.socketDir = null;
      throw err;
    }
    return { socket, tcpPort: this.tcpPort };
  }

  issue(caller: Omit<Caller, 'sandboxId'>, sandboxId: string, endpoint?: string | null): GatewayTicket {
    if (!this.socketDir) throw new Error('the gateway is not listening');
    const who = { ...caller, sandboxId };
    // The endpoint's secret is opened (which can throw) before the token exists: a failure
    // must not leave a token that nothing will ever revoke.
    const found = endpoint ? this.d.secrets.byName(who, endpoint) : null;
    const token = this.tokens.issue(who);
    return {
      endpointKind: found?.ok ? found.secret.kind : null,
      token,
      socketDir: this.socketDir,
      socketName: GATEWAY_SOCKET,
      tcpPort: this.tcpPort,
      revoke: () => {
        this.tokens.revoke(token);
        // A tunnel was authorised once, at its start: it must not outlive the sandbox's token.
        for (const sock of this.tunnels.get(sandboxId) ?? []) sock.destroy();
        this.tunnels.delete(sandboxId);
      },
    };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.ctx.agents.http.destroy();
    this.ctx.agents.https.destroy();
    if (this.socketDir) fs.rmSync(path.join(this.socketDir, GATEWAY_SOCKET), { force: true });
  }

  private listenOne(where: string | { port: number; host: string }): Promise<http.Server> {
    const server = http.createServer({
      maxHeaderSize: this.d.maxHeaderBytes ?? 32 * 1024,
      headersTimeout: Math.min(this.d.idleTimeoutMs ?? 60_000, 60_000),
      requestTimeout: 0,
      keepAliveTimeout: 5_000,
    });
    server.timeout = this.d.idleTimeoutMs ?? 10 * 60_000;
    server.maxConnections = this.d.maxConnections ?? 1024;
    server.on('drop', () => this.log.warn('gateway connection refused: too many open'));
    server.on('connection', (s: net.Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('request', (req, res) => void this.onRequest(req, res));
    server.on(
      'connect',
      (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => void this.onConnect(req, sock, head),
    );
    server.on('clientError', (err: NodeJS.ErrnoException, sock: net.Socket) => {
      this.log.debug('gateway client error', { code: err.code });
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (sock.writable && !sock.destroyed)
        sock.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else sock.destroy();
    });
    server.on('timeout', (s: net.Socket) => s.destroy());
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const onListening = () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error('gateway server error', { err }));
        this.servers.push(server);
        resolve(server);
      };
      // A unix socket is created inside the 0700 socket dir, so no one else can reach it
      // before it is chmod-ed; no process-wide umask juggling.
      if (typeof where === 'string') server.listen(where, onListening);
      else server.listen(where.port, where.host, onListening);
    });
  }

  /** Take one of the sandbox's places for `until` (a response or socket) till it closes; false when all are taken. */
  private hold(sandboxId: string, until: { once(ev: 'close', fn: () => void): unknown }): boolean {
    const n = this.open.get(sandboxId) ?? 0;
    if (n >= (this.d.maxPerSandbox ?? 128)) return false;
    this.open.set(sandboxId, n + 1);
    until.once('close', () => {
      const left = (this.open.get(sandboxId) ?? 1) - 1;
      if (left > 0) this.open.set(sandboxId, left);
      else this.open.delete(sandboxId);
    });
    return true;
  }

  /** Counts one request against the group's hourly budget; false when it is spent. */
  private spend(caller: Caller, perHour: number | null): boolean {
    if (perHour === null) return true;
    const t = this.now();
    let b = this.budget.get(caller.groupId);
    if (!b || t - b.windowStart >= HOUR) this.budget.set(caller.groupId, (b = { windowStart: t, count: 0 }));
    if (b.count >= perHour) return false;
    b.count++;
    return true;
  }

  private audit(e: AuditEntry): void {
    if (this.d.audit) this.d.audit(e);
    else this.log.info('gateway request', { ...e });
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = this.now();
    const caller = this.tokens.lookup(credentialOf(req.headers));
    const base = { group: caller?.groupName ?? '-', method: req.method ?? '-' };
    const finish = (o: {
      route: string;
      status: number;
      bytesOut: number;
      bytesIn?: number;
      error?: string;
    }) => this.audit({ ...base, bytesIn: 0, ...o, durationMs: this.now() - t0 });
    try {
      if (/^[a-z]+:\/\//i.test(req.url ?? '')) {
        hangUpAfter(req, res);
        sendError(res, 403, 'plain-HTTP proxying is not offered; use HTTPS (CONNECT) to allowlisted hosts');
        return finish({ route: 'proxy', status: 403, bytesOut: 0 });
      }
      if (isSandboxAuth(req.url)) {
        // Codex's own refresh carries its token in the body, not in a header.
        const lookup = (c: string | null) => this.tokens.lookup(c);
        const { caller: c, ...o } = await answerSandboxAuth({ lookup }, req, res);
        base.group = c?.groupName ?? '-';
        return finish(o);
      }
      if (!caller) {
        hangUpAfter(req, res);
        sendError(res, 401, 'unknown or expired gateway token');
        return finish({ route: routeName(req.url), status: 401, bytesOut: 0 });
      }
      if (!this.hold(caller.sandboxId, res)) {
        hangUpAfter(req, res);
        sendError(res, 429, 'this sandbox has too many requests open at once; wait for some to end');
        return finish({ route: routeName(req.url), status: 429, bytesOut: 0 });
      }
      if (!this.spend(caller, this.d.policy(caller.groupName).requestsPerHour)) {
        hangUpAfter(req, res);
        sendError(res, 429, `agent group "${caller.groupName}" has used its hourly request budget`);
        return finish({ route: routeName(req.url), status: 429, bytesOut: 0 });
      }
      finish(await proxyRequest(this.ctx, caller, req, res));
    } catch (err) {
      this.log.error('gateway request failed', { err: errorMessage(err) });
      sendError(res, 500, 'gateway error');
      finish({ route: routeName(req.url), status: 500, bytesOut: 0, error: 'internal' });
    }
  }

  private async onConnect(req: http.IncomingMessage, sock: net.Socket, head: Buffer): Promise<void> {
    const t0 = this.now();
    sock.on('error', (err) => this.log.debug('connect client error', { err: errorMessage(err) }));
    const caller = this.tokens.lookup(credentialOf(req.headers, true));
    const base = { group: caller?.groupName ?? '-', method: 'CONNECT' };
    if (!caller) {
      refuse(sock, 407, 'Proxy Authentication Required', 'unknown or expired gateway token');
      return this.audit({ ...base, route: 'connect', status: 407, bytesIn: 0, bytesOut: 0, durationMs: 0 });
    }
    if (!this.hold(caller.sandboxId, sock)) {
      refuse(sock, 429, 'Too Many Requests', 'this sandbox has too many requests open at once');
      return this.audit({ ...base, route: 'connect', status: 429, bytesIn: 0, bytesOut: 0, durationMs: 0 });
    }
    const policy = this.d.policy(caller.groupName);
    if (!this.spend(caller, policy.requestsPerHour)) {
      refuse(
        sock,
        429,
        'Too Many Requests',
        `agent group "${caller.groupName}" has used its hourly request budget`,
      );
      return this.audit({ ...base, route: 'connect', status: 429, bytesIn: 0, bytesOut: 0, durationMs: 0 });
    }
    let open = this.tunnels.get(caller.sandboxId);
    if (!open) this.tunnels.set(caller.sandboxId, (open = new Set()));
    open.add(sock);
    sock.once('close', () => {
      open.delete(sock);
      if (open.size === 0 && this.tunnels.get(caller.sandboxId) === open)
        this.tunnels.delete(caller.sandboxId);
    });
    try {
      const r = await tunnel(req.url, sock, head, {
        caller,
        policy,
        resolve: this.d.resolve ?? defaultResolver,
        connect: this.d.connect ?? defaultConnector,
        allowPrivate: this.d.allowPrivateEgress ?? false,
        connectTimeoutMs: 10_000,
        idleTimeoutMs: this.d.idleTimeoutMs ?? 10 * 60_000,
      });
      this.audit({ ...base, ...r, durationMs: this.now() - t0 });
    } catch (err) {
      this.log.error('gateway tunnel failed', { err: errorMessage(err) });
      sock.destroy();
    }
  }
}

/** The longest a refused client's connection outlives its answer. */
const HANG_UP_MS = 1000;

/**
 * A refused request's connection ends with its answer (no keep-alive: Node closes it once the
 * answer is out), and at the latest HANG_UP_MS after it. Before, a client without a token held
 * the connection for as long as it trickled a body.
 */
function hangUpAfter(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.shouldKeepAlive = false;
  req.resume();
  res.once('finish', () => setTimeout(() => req.socket.destroy(), HANG_UP_MS).unref());
}

function routeName(url: string | undefined): string {
  return /^\/([a-z-]+)/.exec(url ?? '')?.[1] ?? '-';
}

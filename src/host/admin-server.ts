/**
 * Admin socket: a unix socket (mode 0600) in $POLYCLAW_HOME speaking newline-delimited JSON.
 * Request {id, op, args} → response {id, ok:true, result} | {id, ok:false, error:{code,message}};
 * the host may also push {event, ...} lines (terminal chat). A bad line gets an error reply
 * and never closes or crashes anything else.
 */
import fs from 'node:fs';
import net from 'node:net';
import { z } from 'zod';
import { checkSocketPath } from '../gateway/gateway.js';
import { toWireError } from '../shared/errors.js';
import { lineSplitter } from '../shared/lines.js';
import type { Logger } from '../shared/log.js';

export interface Connection {
  send(msg: Record<string, unknown>): void;
  onClose(fn: () => void): void;
}

export type Handler = (op: string, args: unknown, conn: Connection) => Promise<unknown>;

const MAX_LINE = 1024 * 1024;

/**
 * A client that stops reading (a chat suspended with Ctrl-Z, a peer that hung) would make the
 * host keep every event for it in memory. Once more than `stallBytes` wait for it for longer
 * than `stallMs`, it is disconnected: its replies stay kept in the mailbox for the next chat.
 * A long backlog on attach is a burst, not a stall: it drains within the time.
 */
export interface StallLimits {
  stallBytes: number;
  stallMs: number;
  now: () => number;
}
const STALL_DEFAULTS: StallLimits = { stallBytes: 8 * 1024 * 1024, stallMs: 60_000, now: Date.now };

const Request = z.object({ id: z.unknown().optional(), op: z.string(), args: z.unknown().optional() });

export class AdminServer {
  private server: net.Server | null = null;
  private sockets = new Set<net.Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly handler: Handler,
    private readonly log: Logger,
    private readonly stall: StallLimits = STALL_DEFAULTS,
  ) {}

  /** A failure leaves nothing listening (an open server would keep the process alive). */
  async listen(): Promise<void> {
    checkSocketPath(this.socketPath, 'use a shorter POLYCLAW_HOME');
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((sock) => this.accept(sock));
    // The socket appears inside $POLYCLAW_HOME, which the host keeps 0700: nobody else can
    // connect in the moment before the chmod (no process-wide umask juggling).
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    this.server = server;
    try {
      fs.chmodSync(this.socketPath, 0o600);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    const closers: Array<() => void> = [];
    let stalledAt: number | null = null;
    sock.on('drain', () => (stalledAt = null));
    const conn: Connection = {
      send: (msg) => {
        if (sock.destroyed) return;
        sock.write(JSON.stringify(msg) + '\n');
        if (sock.writableLength <= this.stall.stallBytes) return;
        const now = this.stall.now();
        stalledAt ??= now;
        if (now - stalledAt < this.stall.stallMs) return;
        this.log.warn('admin client stopped reading: disconnected (its replies stay kept)', {
          waiting: sock.writableLength,
        });
        sock.destroy();
      },
      onClose: (fn) => closers.push(fn),
    };
    sock.setEncoding('utf8');
    sock.on(
      'data',
      lineSplitter((line) => void this.request(line, conn), {
        maxChars: MAX_LINE,
        onOverflow: () => {
          conn.send({
            id: null,
            ok: false,
            error: { code: 'bad_request', message: 'request line too long' },
          });
          sock.destroy();
        },
      }),
    );
    sock.on('error', (err) => this.log.debug('admin client error', { err }));
    sock.on('close', () => {
      this.sockets.delete(sock);
      for (const f of closers) f();
    });
  }

  private async request(line: string, conn: Connection): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      conn.send({
        id: null,
        ok: false,
        error: { code: 'bad_request', message: 'request is not valid JSON' },
      });
      return;
    }
    const parsed = Request.safeParse(raw);
    if (!parsed.success) {
      const id = typeof raw === 'object' && raw !== null && 'id' in raw ? (raw.id ?? null) : null;
      conn.send({
        id,
        ok: false,
        error: { code: 'bad_request', message: 'a request is a JSON object with an "op" string' },
      });
      return;
    }
    const msg = parsed.data;
    const id = msg.id ?? null;
    try {
      const result = await this.handler(msg.op, msg.args, conn);
      conn.send({ id, ok: true, result: result ?? null });
    } catch (err) {
      const wire = toWireError(err);
      if (wire.code === 'internal') this.log.error('admin op failed', { op: msg.op, err });
      conn.send({ id, ok: false, error: wire });
    }
  }
}

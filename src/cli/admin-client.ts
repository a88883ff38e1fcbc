/**
 * Client of the admin socket. `connectAdmin` resolves null when no host is listening, so
 * commands can fall back to working on the data dir directly. A line from the socket that is
 * not a JSON object means whatever listens there does not speak the protocol: every pending
 * request fails with one line saying so, and the connection is dropped.
 */
import { lineSplitter } from '../shared/lines.js';
import net from 'node:net';
import { PolyclawError, type ErrorCode } from '../shared/errors.js';

export interface AdminClient {
  request(op: string, args?: unknown): Promise<unknown>;
  onEvent(fn: (ev: Record<string, unknown>) => void): void;
  onClose(fn: () => void): void;
  close(): void;
}

export function connectAdmin(socketPath: string): Promise<AdminClient | null> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(null);
      else reject(err);
    });
    sock.once('connect', () => resolve(client(sock)));
  });
}

function client(sock: net.Socket): AdminClient {
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const listeners: Array<(ev: Record<string, unknown>) => void> = [];
  const closers: Array<() => void> = [];
  sock.setEncoding('utf8');
  sock.on(
    'data',
    lineSplitter((line) => {
      if (sock.destroyed) return;
      const msg = parseLine(line);
      if (!msg) {
        const shown = JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
        fail(
          new PolyclawError(
            'unavailable',
            `the admin socket sent a line that is not a JSON object: ${shown}`,
          ),
        );
        sock.destroy();
        return;
      }
      if ('event' in msg) {
        for (const l of listeners) l(msg);
        return;
      }
      const p = pending.get(msg.id as number);
      if (!p) return;
      pending.delete(msg.id as number);
      if (msg.ok) p.resolve(msg.result);
      else {
        const e = msg.error as { code?: ErrorCode; message?: unknown } | undefined;
        const message = typeof e?.message === 'string' ? e.message : 'the host refused the request';
        p.reject(new PolyclawError(e?.code ?? 'internal', message));
      }
    }),
  );
  const fail = (err: PolyclawError) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  let closed = false;
  const gone = () => new PolyclawError('unavailable', 'the host closed the connection');
  sock.on('close', () => {
    closed = true;
    fail(gone());
    for (const f of closers) f();
  });
  sock.on('error', (err) => fail(new PolyclawError('unavailable', `admin socket error: ${err.message}`)));
  return {
    request(op, args) {
      // After the close nothing answers: a request made then fails at once (a write to a
      // destroyed socket reports to no one, and would leave the caller waiting for ever).
      if (closed || sock.destroyed) return Promise.reject(gone());
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        sock.write(JSON.stringify({ id, op, args }) + '\n');
      });
    },
    onEvent: (fn) => listeners.push(fn),
    onClose: (fn) => closers.push(fn),
    close: () => sock.end(),
  };
}

function parseLine(line: string): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

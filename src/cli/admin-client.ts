/**
 * Client of the admin socket. `connectAdmin` resolves null when no host is listening, so
 * commands can fall back to working on the data dir directly.
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
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ('event' in msg) {
        for (const l of listeners) l(msg);
        return;
      }
      const p = pending.get(msg.id as number);
      if (!p) return;
      pending.delete(msg.id as number);
      if (msg.ok) p.resolve(msg.result);
      else {
        const e = msg.error as { code: ErrorCode; message: string };
        p.reject(new PolyclawError(e.code, e.message));
      }
    }),
  );
  sock.on('close', () => {
    for (const p of pending.values())
      p.reject(new PolyclawError('unavailable', 'the host closed the connection'));
    pending.clear();
    for (const f of closers) f();
  });
  sock.on('error', (err) => {
    for (const p of pending.values())
      p.reject(new PolyclawError('unavailable', `admin socket error: ${err.message}`));
    pending.clear();
  });
  return {
    request(op, args) {
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

/**
 * The admin socket takes lines from any local client of the owner: a bad line gets one error
 * reply and never closes the connection (except a line over the size limit) nor stops the host.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer, type Connection } from '../src/host/admin-server.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server() {
  const dir = tempHome('polyclaw-admin-');
  const sock = path.join(dir, 'admin.sock');
  const s = new AdminServer(sock, async (op, args) => ({ op, args }), createLogger({ level: 'error' }));
  await s.listen();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => s.close());
  return sock;
}

/** A client that sends lines and collects the parsed reply lines. */
async function client(sock: string) {
  const c = net.connect(sock);
  await new Promise((r) => c.once('connect', r));
  // The server may close a connection it refused before reading all of it (EPIPE/ECONNRESET).
  c.on('error', () => undefined);
  cleanups.push(() => void c.destroy());
  const replies: Array<Record<string, unknown>> = [];
  let buf = '';
  c.setEncoding('utf8');
  c.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      replies.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  return { c, replies, closed };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('admin socket', () => {
  it('answers every bad line with one error and goes on serving the connection', async () => {
    const sock = await server();
    const { c, replies } = await client(sock);
    const bad = ['not json', 'null', '5', '"op"', '[]', '{"op": 1}', '{"id": 7}'];
    for (const line of bad) c.write(line + '\n');
    c.write('{"id": 8, "op": "groups.list", "args": {"a": 1}}\n');
    await until(() => replies.length === bad.length + 1);
    expect(replies.slice(0, bad.length)).toEqual([
      { id: null, ok: false, error: { code: 'bad_request', message: 'request is not valid JSON' } },
      ...bad.slice(1, -1).map(() => ({
        id: null,
        ok: false,
        error: { code: 'bad_request', message: 'a request is a JSON object with an "op" string' },
      })),
      {
        id: 7,
        ok: false,
        error: { code: 'bad_request', message: 'a request is a JSON object with an "op" string' },
      },
    ]);
    expect(replies.at(-1)).toEqual({ id: 8, ok: true, result: { op: 'groups.list', args: { a: 1 } } });
  });

  it('closes a connection whose line is over the limit, with a reason; other clients go on', async () => {
    const sock = await server();
    const big = await client(sock);
    big.c.write('x'.repeat(1024 * 1024 + 10));
    await big.closed;
    expect(big.replies).toEqual([
      { id: null, ok: false, error: { code: 'bad_request', message: 'request line too long' } },
    ]);
    const next = await client(sock);
    next.c.write('{"id": 1, "op": "ping"}\n');
    await until(() => next.replies.length === 1);
    expect(next.replies[0]).toMatchObject({ id: 1, ok: true });
  });
});

describe('a client that stops reading', () => {
  it('is disconnected once events wait for it too long; one that reads gets a long burst whole', async () => {
    const dir = tempHome('polyclaw-admin-');
    const sock = path.join(dir, 'admin.sock');
    let clock = 0;
    const conns: Connection[] = [];
    const s = new AdminServer(
      sock,
      async (op, _args, conn) => {
        conns.push(conn);
        return { op };
      },
      createLogger({ level: 'error' }),
      { stallBytes: 1024 * 1024, stallMs: 60_000, now: () => clock },
    );
    await s.listen();
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => s.close());
    const connect = async () => {
      const c = net.connect(sock);
      c.on('error', () => undefined);
      cleanups.push(() => void c.destroy());
      await new Promise((r) => c.once('connect', r));
      c.write('{"id":1,"op":"hello"}\n');
      await new Promise((r) => c.once('data', r));
      return c;
    };
    const event = { event: 'message', text: 'x'.repeat(100_000) };
    // A reader: a 5 MB burst (a long backlog on attach) arrives whole.
    const reader = await connect();
    let got = 0;
    reader.on('data', (d: Buffer) => (got += d.length));
    for (let i = 0; i < 50; i++) conns[0]!.send(event);
    await new Promise((r) => setTimeout(r, 500));
    expect(got).toBeGreaterThan(50 * 100_000);
    expect(reader.destroyed).toBe(false);
    // A client that stopped reading: kept while the time runs, then disconnected.
    const stopped = await connect();
    stopped.pause();
    let dropped = false;
    conns[1]!.onClose(() => (dropped = true));
    for (let i = 0; i < 30; i++) conns[1]!.send(event);
    clock += 59_000;
    conns[1]!.send(event);
    await new Promise((r) => setTimeout(r, 100));
    expect(dropped).toBe(false);
    clock += 2_000;
    conns[1]!.send(event);
    await new Promise((r) => setTimeout(r, 100));
    expect(dropped).toBe(true);
  }, 20_000);
});

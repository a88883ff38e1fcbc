/**
 * A fake model upstream on 127.0.0.1 for gateway tests and the bench. It records the headers
 * of every request (tests assert the real key arrived) but never echoes them back, so nothing
 * a sandbox receives can contain a credential.
 *   POST /v1/messages, /v1/responses, /v1/chat/completions  SSE: `events` events `gapMs` apart
 *   GET  /v1/models, /models                                 JSON list
 *   GET  /bytes?n=N&chunk=C                                  N bytes streamed in C-byte chunks
 *   GET  /die                                                headers + one chunk, then the socket is destroyed
 *   POST /oauth/token                                        ChatGPT-style refresh (counts calls)
 */
import http from 'node:http';
import { listenLoopback, onBody } from './http-kit.js';

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeUpstream {
  url: string;
  port: number;
  requests: Recorded[];
  refreshCalls: number;
  /** Next refresh answer's access token. */
  nextAccessToken: string;
  close(): Promise<void>;
}

export async function startFakeUpstream(
  opts: { events?: number; gapMs?: number; refreshDelayMs?: number } = {},
): Promise<FakeUpstream> {
  const state: FakeUpstream = {
    url: '',
    port: 0,
    requests: [],
    refreshCalls: 0,
    nextAccessToken: 'refreshed-access-token',
    close: () => listening.close(),
  };
  const server = http.createServer((req, res) => {
    onBody(req, (body) => {
      state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname.endsWith('/models')) {
        const b = JSON.stringify({ data: [{ id: 'fake-model' }] });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(b);
      } else if (u.pathname === '/bytes') {
        const n = Number(u.searchParams.get('n') ?? 1024);
        const chunk = Buffer.alloc(Number(u.searchParams.get('chunk') ?? 16384), 'x');
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const pump = () => {
          while (sent < n) {
            const c = chunk.subarray(0, Math.min(chunk.length, n - sent));
            sent += c.length;
            if (!res.write(c)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (u.pathname === '/die') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: partial\n\n');
        setTimeout(() => req.socket.destroy(), 20);
      } else if (u.pathname === '/oauth/token') {
        state.refreshCalls++;
        const reply = JSON.stringify({
          access_token: state.nextAccessToken,
          refresh_token: 'rotated-refresh-token',
        });
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(reply);
        }, opts.refreshDelayMs ?? 0);
      } else if (req.method === 'POST') {
        const events = Number(u.searchParams.get('events') ?? opts.events ?? 3);
        const gap = Number(u.searchParams.get('gapMs') ?? opts.gapMs ?? 0);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        let i = 0;
        const tick = () => {
          if (res.destroyed) return;
          if (i >= events) {
            res.end('event: done\ndata: {}\n\n');
            return;
          }
          res.write(`event: delta\ndata: {"i":${i++}}\n\n`);
          if (gap) setTimeout(tick, gap);
          else setImmediate(tick);
        };
        tick();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
  });
  const listening = await listenLoopback(server);
  state.port = listening.port;
  state.url = listening.url;
  return state;
}

/** A TCP server on 127.0.0.1 that answers every connection with a banner and echoes: a CONNECT target. */
export async function startEchoTarget(banner: string): Promise<{ port: number; close(): Promise<void> }> {
  const netMod = await import('node:net');
  const server = netMod.createServer((s) => {
    s.on('error', () => s.destroy());
    s.write(banner);
    s.pipe(s);
  });
  const { port, close } = await listenLoopback(server);
  return { port, close };
}

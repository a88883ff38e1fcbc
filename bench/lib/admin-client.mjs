/**
 * Admin-socket client for benches: newline-delimited JSON requests by id, pushed events to a
 * handler (stamped with performance.now() on arrival), and a one-call chat turn.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export /** Newline-delimited JSON client for the admin socket: request/response by id, events by handler. */
function connect(sockPath) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(sockPath);
    const pending = new Map();
    const client = { sock, nextId: 1, onEvent: () => {}, onClose: () => {} };
    client.request = (op, args) =>
      new Promise((res, rej) => {
        const id = client.nextId++;
        pending.set(id, { res, rej });
        sock.write(JSON.stringify({ id, op, args }) + '\n');
      });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0;) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line);
        const p = msg.id != null && pending.get(msg.id);
        if (p) {
          pending.delete(msg.id);
          if (msg.ok) p.res(msg.result);
          else p.rej(new Error(`${msg.error?.code}: ${msg.error?.message}`));
        } else if (msg.event) client.onEvent(msg, performance.now());
      }
    });
    sock.once('connect', () => {
      sock.off('error', reject);
      sock.on('error', (err) => console.error(`admin socket error: ${err.message}`));
      resolve(client);
    });
    sock.once('error', reject);
    sock.on('close', () => {
      for (const p of pending.values()) p.rej(new Error('admin socket closed'));
      pending.clear();
      client.onClose();
    });
  });
}

/** Send one chat message on an attached client and resolve with the ms until its reply arrives. */
export function chatTurn(client, platformId, text, timeoutMs = 30_000) {
  const pmid = randomUUID();
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const timer = setTimeout(
      () => reject(new Error(`no reply to "${text}" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const prev = client.onEvent;
    client.onEvent = (ev, at) => {
      if (ev.event === 'message' && ev.replyTo === pmid) {
        clearTimeout(timer);
        client.onEvent = prev;
        resolve({ ms: at - t0, text: ev.text });
      } else prev(ev, at);
    };
    client
      .request('chat.send', { platformId, text, sender: { id: 'bench' }, platformMessageId: pmid })
      .catch((err) => {
        clearTimeout(timer);
        client.onEvent = prev;
        reject(err);
      });
  });
}

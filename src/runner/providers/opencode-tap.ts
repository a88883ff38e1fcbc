/**
 * The tap: a loopback HTTP hop between OpenCode and the gateway, inside the runner. It exists
 * for two reasons:
 *  - the gateway token stays in the runner: OpenCode sends a placeholder key, the tap replaces
 *    every credential header with `Authorization: Bearer <token>` (the gateway then swaps in the
 *    real key), so neither OpenCode's config nor its environment holds a credential;
 *  - every byte the model endpoint streams back is activity: a slow local model that is still
 *    sending (headers, keep-alive comments, tokens) does not trip the turn's idle timer even
 *    before OpenCode emits its first event.
 * Responses are piped through unbuffered (SSE stays live). Only 127.0.0.1 targets exist here;
 * in a bwrap sandbox the tap talks to the gateway's unix socket directly (`socketPath`), not
 * through the runner's loopback forwarder: one hop fewer on every model call.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';

const DROP = new Set([
  'authorization',
  'x-api-key',
  'proxy-authorization',
  'host',
  'connection',
  'keep-alive',
]);

export interface Tap {
  url: string;
  close(): Promise<void>;
}

export async function startTap(opts: {
  target: string;
  /** Connect here instead of the target's host and port (the path still comes from `target`). */
  socketPath?: string | null;
  token: string | null;
  onActivity: () => void;
  log: Logger;
}): Promise<Tap> {
  const target = new URL(opts.target);
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROP.has(k)) headers[k] = v;
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const base = target.pathname.replace(/\/$/, '');
    const up = http.request(
      {
        ...(opts.socketPath
          ? { socketPath: opts.socketPath }
          : { protocol: target.protocol, hostname: target.hostname, port: target.port }),
        path: base + (req.url ?? '/'),
        method: req.method,
        headers,
        agent,
      },
      (ur) => {
        opts.onActivity();
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        res.flushHeaders();
        ur.on('data', () => opts.onActivity());
        ur.on('aborted', () => res.destroy());
        ur.pipe(res);
      },
    );
    up.setNoDelay(true);
    up.on('error', (err) => {
      opts.log.warn('model request through the gateway failed', { err: errorMessage(err) });
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `gateway unreachable: ${errorMessage(err)}` } }));
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

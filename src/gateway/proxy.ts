/**
 * The reverse-proxy half of the gateway: one model request from a sandbox to its upstream.
 * Invariants:
 *  - the caller is identified by its per-sandbox token before anything else; unknown → 401;
 *  - the group must hold a grant for the secret; otherwise 403, and the upstream is not contacted;
 *  - every credential the client sent (x-api-key, Authorization, Proxy-Authorization, cookies)
 *    is stripped, and only the real one the upstream expects is added;
 *  - the path cannot leave the secret's base URL (see routes.ts); a refused path is a 400;
 *  - the response streams through as it arrives (no buffering: SSE stays live), with
 *    backpressure both ways; an upstream that dies mid-stream ends only this response;
 *  - a client that leaves, even while a ChatGPT token is being refreshed, stops its upstream
 *    request (or none is started);
 *  - recording a secret's use is best effort: a failing write is logged and never reaches the
 *    request (it runs from stream events, where a throw would take the process down);
 *  - error bodies the sandbox sees name routes and groups, never a secret value.
 */
import http from 'node:http';
import https from 'node:https';
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ChatgptRefresher } from './chatgpt-refresher.js';
import {
  DEFAULT_UPSTREAMS,
  type Caller,
  type OpenedSecret,
  type SecretKind,
  type SecretLookup,
  type SecretSource,
} from './contract.js';
import { resolveRoute, upstreamUrl } from './routes.js';

const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);
const STRIP_REQUEST = new Set([
  'authorization',
  'x-api-key',
  'proxy-authorization',
  'cookie',
  'chatgpt-account-id',
]);

export interface ProxyContext {
  secrets: SecretSource;
  upstreams: Partial<Record<SecretKind, string>>;
  refresher: ChatgptRefresher;
  agents: { http: http.Agent; https: https.Agent };
  log: Logger;
}

/** What the request handler learned, for the audit line. */
export interface Outcome {
  route: string;
  status: number;
  bytesOut: number;
  bytesIn?: number;
  error?: string;
}

export function sendError(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: 'error', error: { type: 'polyclaw_gateway', message } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function lookupError(
  lookup: Extract<SecretLookup, { ok: false }>,
  caller: Caller,
  what: string,
): [number, string] {
  if (lookup.reason === 'not_granted')
    return [403, `agent group "${caller.groupName}" has no grant for ${what} (polyclaw secrets grant)`];
  // A credential problem, not an outage: clients fail at once instead of retrying a 5xx.
  return [401, `the vault holds ${what.replace(/^(any|the) /, 'no ')} (polyclaw secrets set)`];
}

/** Put the real credential in. `anthropic-beta` is a list: the client's own betas stay. */
function addCredential(headers: Record<string, string | string[]>, cred: Record<string, string>): void {
  for (const [k, v] of Object.entries(cred)) {
    const had = headers[k];
    if (k !== 'anthropic-beta' || had === undefined) {
      headers[k] = v;
      continue;
    }
    const list = [had, v].flat().flatMap((x) => x.split(',').map((b) => b.trim()));
    headers[k] = [...new Set(list.filter(Boolean))].join(',');
  }
}

/** Whether the client has gone; `onGone` runs once when it leaves before its response ended. */
interface ClientWatch {
  gone: boolean;
  onGone: (() => void) | null;
}

function watchClient(res: http.ServerResponse): ClientWatch {
  const w: ClientWatch = { gone: false, onGone: null };
  res.on('close', () => {
    if (res.writableFinished) return;
    w.gone = true;
    w.onGone?.();
  });
  return w;
}

async function credentialHeaders(ctx: ProxyContext, s: OpenedSecret): Promise<Record<string, string>> {
  switch (s.kind) {
    case 'anthropic':
      // Subscription tokens from `claude setup-token` are OAuth bearer tokens; API keys use x-api-key.
      return s.value.startsWith('sk-ant-oat')
        ? { authorization: `Bearer ${s.value}`, 'anthropic-beta': 'oauth-2025-04-20' }
        : { 'x-api-key': s.value };
    case 'openai':
      return { authorization: `Bearer ${s.value}` };
    case 'openai-compatible':
      return s.value ? { authorization: `Bearer ${s.value}` } : {}; // a keyless local server
    case 'codex-chatgpt': {
      const c = await ctx.refresher.credential(s);
      return {
        authorization: `Bearer ${c.accessToken}`,
        ...(c.accountId ? { 'chatgpt-account-id': c.accountId } : {}),
      };
    }
  }
}

export async function proxyRequest(
  ctx: ProxyContext,
  caller: Caller,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<Outcome> {
  // Watched before anything can wait (a token refresh), so a client leaving then is noticed.
  const client = watchClient(res);
  const r = resolveRoute(ctx.secrets, caller, req.url ?? '/');
  if (!r.ok) {
    req.resume();
    sendError(res, r.status, r.message);
    return { route: '-', status: r.status, bytesOut: 0 };
  }
  if (!r.lookup.ok) {
    const [status, msg] = lookupError(r.lookup, caller, r.what);
    sendError(res, status, msg);
    return { route: r.route, status, bytesOut: 0 };
  }
  const secret = r.lookup.secret;
  const base = secret.baseUrl ?? ctx.upstreams[secret.kind] ?? DEFAULT_UPSTREAMS[secret.kind];
  if (!base) {
    sendError(res, 503, `the secret "${secret.name}" has no base URL`);
    return { route: r.route, status: 503, bytesOut: 0 };
  }
  const target = upstreamUrl(base, r.rest);
  if (!target) {
    req.resume();
    sendError(res, 400, `the path leaves the base URL of ${r.route}`);
    return { route: r.route, status: 400, bytesOut: 0 };
  }
  let cred: Record<string, string>;
  try {
    cred = await credentialHeaders(ctx, secret);
  } catch (err) {
    sendError(res, 502, `could not obtain a credential for ${r.route}: ${errorMessage(err)}`);
    return { route: r.route, status: 502, bytesOut: 0, error: 'credential' };
  }
  // Gone during the refresh: no upstream request is started for nobody.
  if (client.gone) return { route: r.route, status: 0, bytesOut: 0, error: 'client closed' };
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP.has(k) || STRIP_REQUEST.has(k) || k.startsWith('x-polyclaw-')) continue;
    headers[k] = v;
  }
  addCredential(headers, cred);
  return forward(ctx, secret, r.route, target, headers, req, res, client);
}

function forward(
  ctx: ProxyContext,
  secret: OpenedSecret,
  route: string,
  target: URL,
  headers: Record<string, string | string[]>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  client: ClientWatch,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { route, status: 0, bytesOut: 0, bytesIn: 0 };
    let settled = false;
    const done = (error?: string) => {
      if (settled) return;
      settled = true;
      if (error) out.error = error;
      try {
        ctx.secrets.markUsed(secret.id, out.status);
      } catch (err) {
        ctx.log.error('could not record the use of a secret', {
          secret: secret.name,
          err: errorMessage(err),
        });
      }
      resolve(out);
    };
    // A body goes on with the framing it came with. A chunked one sent on bare (Node frames a
    // GET, DELETE or OPTIONS body neither by length nor by chunks unless told) would be read by
    // the upstream as the next request on the pooled connection: another path, and the next
    // caller's credential, another group's included.
    if (req.headers['transfer-encoding'] !== undefined) {
      headers['transfer-encoding'] = 'chunked';
      delete headers['content-length'];
    }
    const lib = target.protocol === 'https:' ? https : http;
    const up = lib.request(target, {
      method: req.method,
      headers,
      agent: target.protocol === 'https:' ? ctx.agents.https : ctx.agents.http,
    });
    up.setNoDelay(true);
    up.on('response', (ur) => {
      out.status = ur.statusCode ?? 502;
      const sentToken = String(headers.authorization ?? '').replace(/^Bearer /, '');
      if (out.status === 401 && secret.kind === 'codex-chatgpt')
        ctx.refresher.markRejected(secret.id, sentToken);
      const h: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ur.headers)) if (v !== undefined && !HOP.has(k)) h[k] = v;
      try {
        res.writeHead(out.status, h);
      } catch (err) {
        // A status or header the client side cannot carry (say, status 099): thrown here, it
        // would take the host down. The upstream connection is not reused.
        ur.destroy();
        out.status = 502;
        sendError(res, 502, `upstream for ${route} sent a response that cannot be passed on`);
        done(`upstream: ${errorMessage(err)}`);
        return;
      }
      res.flushHeaders();
      ur.on('data', (c: Buffer) => (out.bytesOut += c.length));
      ur.on('aborted', () => res.destroy());
      ur.on('error', (err) => {
        res.destroy();
        done(`upstream: ${errorMessage(err)}`);
      });
      ur.pipe(res);
      // After the pipe's own 'end' listener: the response is ended towards the client before
      // the use is recorded (a DB write).
      ur.on('end', () => done());
    });
    up.on('error', (err) => {
      if (settled) return; // after the answer was given (or refused): nothing left to tell
      if (!res.headersSent) {
        out.status = 502;
        sendError(res, 502, `upstream for ${route} failed: ${errorMessage(err).split('\n')[0]}`);
      } else res.destroy();
      done(`upstream: ${errorMessage(err)}`);
    });
    // The client went away: stop the upstream request and stream.
    client.onGone = () => {
      up.destroy();
      done(out.error ?? 'client closed');
    };
    req.on('error', () => up.destroy());
    req.on('data', (c: Buffer) => (out.bytesIn! += c.length));
    req.pipe(up);
  });
}

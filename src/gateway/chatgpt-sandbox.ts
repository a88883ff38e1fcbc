/**
 * The sandbox side of the ChatGPT-subscription path: what codex inside a sandbox sends to
 * `/chatgpt-auth/...` (CODEX_REFRESH_TOKEN_URL_OVERRIDE and chatgpt_base_url point there).
 * Verified with codex 0.169.0 (docs/codex-chatgpt.md): its refresh is
 * `POST {override}` with JSON `{client_id, grant_type:"refresh_token", refresh_reason,
 * refresh_token}` and NO Authorization header, so the caller is identified by the body's
 * refresh_token, which in a placeholder auth.json is the sandbox's gateway token.
 * Invariants: the answer holds placeholders only (never a vault value); an unknown token gets
 * 401; nothing under /chatgpt-auth is forwarded upstream (backend calls such as
 * /api/codex/accounts/check get a local 404).
 */
import type http from 'node:http';
import { placeholderRefreshReply } from './chatgpt-auth.js';
import type { Caller } from './contract.js';
import { sendError, type Outcome } from './proxy.js';
import { credentialOf } from './tokens.js';

export const SANDBOX_AUTH_PREFIX = '/chatgpt-auth/';
const REFRESH_PATH = '/chatgpt-auth/oauth/token';
const MAX_BODY = 64 * 1024;

export function isSandboxAuth(url: string | undefined): boolean {
  return (url ?? '').startsWith(SANDBOX_AUTH_PREFIX);
}

function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(size <= MAX_BODY ? Buffer.concat(chunks).toString('utf8') : null));
    req.on('error', () => resolve(null));
  });
}

function bodyRefreshToken(body: string | null): string | null {
  if (!body) return null;
  try {
    const v = (JSON.parse(body) as { refresh_token?: unknown }).refresh_token;
    return typeof v === 'string' ? v : null;
  } catch {
    return null; // not JSON: the caller is then identified by its headers only
  }
}

export async function answerSandboxAuth(
  d: { lookup(cred: string | null): Caller | null },
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<Outcome & { caller: Caller | null }> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== REFRESH_PATH || req.method !== 'POST') {
    req.resume();
    const caller = d.lookup(credentialOf(req.headers));
    sendError(res, 404, `${path} is not forwarded: only the model route /chatgpt reaches ChatGPT`);
    return { route: 'chatgpt-auth', status: 404, bytesOut: 0, caller };
  }
  const fromBody = bodyRefreshToken(await readBody(req));
  const cred = d.lookup(fromBody) ? fromBody : credentialOf(req.headers);
  const caller = d.lookup(cred);
  if (!caller || !cred) {
    sendError(res, 401, 'unknown or expired gateway token');
    return { route: 'chatgpt-auth', status: 401, bytesOut: 0, caller: null };
  }
  // No account id: the sandbox's auth.json has none (the gateway adds the real one on the wire),
  // and codex 0.169 refuses a refresh whose account differs from the one it holds.
  const body = JSON.stringify(placeholderRefreshReply(null, cred.split('.').pop() ?? ''));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  return { route: 'chatgpt-auth', status: 200, bytesOut: body.length, caller };
}

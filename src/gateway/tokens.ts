/**
 * Per-sandbox gateway tokens. A token is 32 random bytes, valid from the sandbox's start until
 * its exit; it names the calling agent group and is worthless outside the gateway. Only the
 * SHA-256 of a token is kept as the map key, so lookups do not compare token bytes directly.
 * Besides a bare token, a credential may be a placeholder JWT (ChatGPT auth.json) whose last
 * segment is the token: that is how Codex, which sends its auth.json token, is identified.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from './contract.js';

export const TOKEN_PREFIX = 'pcgw_';
const TOKEN_RE = /^pcgw_[A-Za-z0-9_-]{43}$/;

const hash = (t: string) => createHash('sha256').update(t).digest('base64');

export class TokenRegistry {
  private byHash = new Map<string, Caller>();

  issue(caller: Caller): string {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    this.byHash.set(hash(token), caller);
    return token;
  }

  revoke(token: string): void {
    this.byHash.delete(hash(token));
  }

  lookup(credential: string | null | undefined): Caller | null {
    if (!credential) return null;
    let t = credential.trim();
    if (!TOKEN_RE.test(t)) t = t.split('.').pop() ?? '';
    if (!TOKEN_RE.test(t)) return null;
    return this.byHash.get(hash(t)) ?? null;
  }

  get size(): number {
    return this.byHash.size;
  }
}

type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** The credential a client sent: x-api-key, Authorization: Bearer, or Proxy-Authorization. */
export function credentialOf(headers: Headers, proxy = false): string | null {
  if (proxy) {
    const p = one(headers['proxy-authorization']);
    if (!p) return null;
    const [scheme, rest = ''] = p.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer') return rest;
    if (scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(rest, 'base64').toString('utf8');
      return decoded.slice(decoded.indexOf(':') + 1);
    }
    return null;
  }
  const k = one(headers['x-api-key']);
  if (k) return k;
  const a = one(headers.authorization);
  if (a && /^bearer /i.test(a)) return a.slice(7);
  return null;
}

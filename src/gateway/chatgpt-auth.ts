/**
 * The Codex ChatGPT-subscription credential (`auth.json` written by `codex login`).
 * Invariants: the real tokens stay in the vault and in this process; a sandbox only ever sees
 * `placeholderAuthJson()` (same shape, fake tokens); one refresh per secret runs at a time, and
 * its result is stored back in the vault before any request uses it.
 * What was not verifiable here (no codex binary): the exact refresh request codex-rs sends and
 * whether codex accepts a far-future placeholder without trying to refresh; see README.
 */
import { z } from 'zod';
import { badRequest, PolyclawError } from '../shared/errors.js';

/** Codex CLI's public OAuth client id and token endpoint (as used by `codex login`). */
export const CODEX_CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';
export const CHATGPT_TOKEN_URL = 'https://auth.openai.com/oauth/token';
/** Refresh this long before the access token's `exp`. */
const EARLY_MS = 5 * 60_000;

const Tokens = z
  .object({
    id_token: z.string().optional(),
    access_token: z.string().min(1),
    refresh_token: z.string().min(1),
    account_id: z.string().nullable().optional(),
  })
  .passthrough();
const AuthJson = z
  .object({
    OPENAI_API_KEY: z.string().nullable().optional(),
    tokens: Tokens,
    last_refresh: z.string().optional(),
  })
  .passthrough();
export type AuthJson = z.infer<typeof AuthJson>;

const HEADER_SAFE = /^[\x21-\x7e]+$/;

export function parseAuthJson(text: string): AuthJson {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw badRequest('a codex-chatgpt secret must be the auth.json written by `codex login` (not JSON)');
  }
  const r = AuthJson.safeParse(raw);
  if (!r.success)
    throw badRequest(
      'a codex-chatgpt secret must be an auth.json with tokens.access_token and refresh_token',
    );
  if (!HEADER_SAFE.test(r.data.tokens.access_token))
    throw badRequest('auth.json access_token has characters not allowed in a header');
  return r.data;
}

function jwtClaims(token: string | undefined): Record<string, unknown> | null {
  const part = token?.split('.')[1];
  if (!part) return null;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Account id: the explicit field, else the id_token's ChatGPT claim. */
export function accountId(auth: AuthJson): string | null {
  if (auth.tokens.account_id) return auth.tokens.account_id;
  const claims = jwtClaims(auth.tokens.id_token)?.['https://api.openai.com/auth'] as
    { chatgpt_account_id?: string } | undefined;
  return claims?.chatgpt_account_id ?? null;
}

/** Expiry of the access token from its JWT `exp`, or null when it is opaque. */
export function expiresAt(auth: AuthJson): number | null {
  const exp = jwtClaims(auth.tokens.access_token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : null;
}

export function needsRefresh(auth: AuthJson, now: number): boolean {
  const exp = expiresAt(auth);
  return exp !== null && exp - EARLY_MS <= now;
}

const RefreshReply = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  id_token: z.string().optional(),
});

/** Swap the refresh token for new tokens at the token endpoint; returns the new auth.json. */
export async function refreshAuth(
  auth: AuthJson,
  tokenUrl: string,
  fetchFn: typeof fetch,
  now: number,
): Promise<AuthJson> {
  const res = await fetchFn(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: CODEX_CLIENT_ID,
      grant_type: 'refresh_token',
      refresh_token: auth.tokens.refresh_token,
      scope: 'openid profile email',
    }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new PolyclawError('unavailable', `ChatGPT token refresh failed with HTTP ${res.status}`);
  }
  const r = RefreshReply.safeParse(await res.json());
  if (!r.success) throw new PolyclawError('unavailable', 'ChatGPT token refresh returned an unexpected body');
  if (!HEADER_SAFE.test(r.data.access_token))
    throw new PolyclawError('unavailable', 'ChatGPT token refresh returned an unusable token');
  return {
    ...auth,
    tokens: {
      ...auth.tokens,
      access_token: r.data.access_token,
      refresh_token: r.data.refresh_token ?? auth.tokens.refresh_token,
      id_token: r.data.id_token ?? auth.tokens.id_token,
    },
    last_refresh: new Date(now).toISOString(),
  };
}

/**
 * Unsigned JWT with a far-future exp whose signature segment is the sandbox's gateway token:
 * it parses like a real token, identifies the sandbox to the gateway, and is worthless anywhere else.
 */
function fakeJwt(claims: Record<string, unknown>, token: string): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'none', typ: 'JWT' })}.${b(claims)}.${token}`;
}

const FAR_FUTURE_S = 4_102_444_800; // 2100-01-01

/** The auth.json a sandbox gets: same shape, placeholder tokens, the (non-secret) account id. */
export function placeholderAuthJson(account: string | null, token: string, now: number): string {
  const authClaim = { 'https://api.openai.com/auth': { chatgpt_account_id: account ?? 'polyclaw' } };
  return JSON.stringify({
    OPENAI_API_KEY: null,
    tokens: {
      id_token: fakeJwt({ exp: FAR_FUTURE_S, email: 'sandbox@polyclaw.invalid', ...authClaim }, token),
      access_token: fakeJwt({ exp: FAR_FUTURE_S, ...authClaim }, token),
      refresh_token: token,
      account_id: account,
    },
    last_refresh: new Date(now).toISOString(),
  });
}

/** What the gateway answers when a sandbox tries to refresh its placeholder itself. */
export function placeholderRefreshReply(account: string | null, token: string): Record<string, string> {
  const claims = {
    exp: FAR_FUTURE_S,
    'https://api.openai.com/auth': { chatgpt_account_id: account ?? 'polyclaw' },
  };
  return {
    id_token: fakeJwt(claims, token),
    access_token: fakeJwt(claims, token),
    refresh_token: token,
  };
}

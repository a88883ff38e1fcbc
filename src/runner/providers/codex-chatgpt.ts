/**
 * Codex with a ChatGPT subscription (the group's endpoint secret is of kind codex-chatgpt).
 * Verified with codex 0.169.0 (docs/codex-chatgpt.md):
 *  - a custom model provider with `requires_openai_auth = true` sends the auth.json access
 *    token as `Authorization: Bearer` plus `chatgpt-account-id`, to {base_url}/responses and
 *    {base_url}/models — base_url is the gateway's /chatgpt route, which swaps in the real ones;
 *  - `chatgpt_base_url` (backend calls: /api/codex/accounts/check, settings/user, ps/mcp) is
 *    pointed at the gateway's /chatgpt-auth, which answers them locally;
 *  - the env var CODEX_REFRESH_TOKEN_URL_OVERRIDE sends codex's own refresh to the gateway.
 * Invariant: CODEX_HOME/auth.json only ever holds placeholderAuthJson(): fake JWTs whose
 * signature segment is the per-sandbox gateway token, and no account id (the gateway adds it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { placeholderAuthJson } from '../../gateway/chatgpt-auth.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';

export interface ChatgptMode {
  /** Model provider base URL (codex appends /responses, /models). */
  baseUrl: string;
  /** chatgpt_base_url: codex's backend calls, answered by the gateway without forwarding. */
  backendUrl: string;
  /** CODEX_REFRESH_TOKEN_URL_OVERRIDE. */
  refreshUrl: string;
}

export function chatgptMode(env: Readonly<Record<string, string | undefined>>): ChatgptMode | null {
  const gw = env.POLYCLAW_GATEWAY_URL?.replace(/\/$/, '');
  if (!gw || env.POLYCLAW_ENDPOINT_KIND !== 'codex-chatgpt') return null;
  return {
    baseUrl: `${gw}/chatgpt`,
    backendUrl: `${gw}/chatgpt-auth/backend`,
    refreshUrl: `${gw}/chatgpt-auth/oauth/token`,
  };
}

/** Write the placeholder auth.json (atomically, 0600) for this sandbox's gateway token. */
export function writePlaceholderAuth(codexHome: string, gatewayToken: string, now: number): string {
  fs.mkdirSync(codexHome, { recursive: true });
  const file = path.join(codexHome, 'auth.json');
  writeFileAtomic(file, placeholderAuthJson(null, gatewayToken, now), 0o600);
  return file;
}

/**
 * The environment of the codex process, built from an allowlist only. Invariant: nothing
 * key-like from the runner's environment reaches codex — not the gateway token variable,
 * not an OPENAI_API_KEY that leaked into a dev shell. The one credential codex holds is the
 * per-sandbox gateway token, under the model provider's env_key (KEY_ENV), which the gateway
 * strips and replaces with the real key on the wire. Proxy variables are allowed even though
 * they embed that same token (the host sets them so egress goes through the gateway).
 */
import { KEY_ENV } from './codex-config.js';

const EXACT = new Set([
  'PATH',
  'HOME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TERM',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
]);
const KEYLIKE = /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION)/i;

export function codexEnv(
  env: Readonly<Record<string, string | undefined>>,
  opts: { codexHome: string; gatewayToken: string; tmpDir?: string; refreshUrl?: string },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const allowed = EXACT.has(k) || k.startsWith('LC_');
    // Proxy URLs carry the gateway token by design; every other allowed name must not look like a key.
    if (allowed && (/proxy/i.test(k) || !KEYLIKE.test(k))) out[k] = v;
  }
  out.CODEX_HOME = opts.codexHome;
  // CODEX_HOME must not sit under the temp dir (FINDINGS §A); an explicit TMPDIR elsewhere keeps it so.
  if (opts.tmpDir) out.TMPDIR = opts.tmpDir;
  out[KEY_ENV] = opts.gatewayToken;
  // ChatGPT mode: codex's own token refresh goes to the gateway, which answers with placeholders.
  if (opts.refreshUrl) out.CODEX_REFRESH_TOKEN_URL_OVERRIDE = opts.refreshUrl;
  return out;
}

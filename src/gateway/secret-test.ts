/**
 * `polyclaw secrets test NAME`: one cheap authenticated request (a model listing) through a
 * real gateway instance on a private socket, exactly as a sandbox's request would go. The
 * result carries the status only; the upstream's body is discarded (it could echo anything).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { notFound } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { GatewayDeps, SecretKind, SecretSource } from './contract.js';
import { Gateway, GATEWAY_SOCKET } from './gateway.js';
import type { Vault } from './vault.js';

const PROBE_PATH: Record<SecretKind, string> = {
  anthropic: '/v1/models',
  openai: '/v1/models',
  'openai-compatible': '/models',
  'codex-chatgpt': '/models?client_version=0.0.0',
};

/** How long the probe waits for the upstream's answer. */
const PROBE_TIMEOUT_MS = 30_000;

export async function testSecret(
  vault: Vault,
  name: string,
  deps: Omit<GatewayDeps, 'secrets' | 'policy'> & { log: Logger; timeoutMs?: number },
): Promise<{ name: string; ok: boolean; status: number; durationMs: number; reason?: string }> {
  const timeoutMs = deps.timeoutMs ?? PROBE_TIMEOUT_MS;
  // The gateway's upstream request can end after this function returned (and the caller closed
  // the vault's DB): whatever it records then is dropped.
  let open = true;
  const info = vault.list().find((s) => s.name === name);
  if (!info) throw notFound(`no secret named "${name}"`);
  // The test may use the secret whatever its grants: it acts for the owner, not a group.
  const source: SecretSource = {
    forKind: () => ({ ok: false, reason: 'none' }),
    byName: (_c, n) => (n === name ? vault.openForOwner(n) : { ok: false, reason: 'none' }),
    markUsed: (id, status) => {
      if (open) vault.markUsed(id, status);
    },
    replaceValue: (id, v) => vault.replaceValue(id, v),
  };
  const gw = new Gateway({
    ...deps,
    secrets: source,
    policy: () => ({ allowHosts: [], requestsPerHour: null }),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-secret-test-'));
  const t0 = Date.now();
  try {
    await gw.listen({ socketDir: dir, tcpPort: null });
    const ticket = gw.issue({ groupId: '-', groupName: '(owner test)' }, 'secrets-test');
    const answer = await new Promise<{ status: number; body: string } | null>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: path.join(dir, GATEWAY_SOCKET),
          path: `/endpoints/${name}${PROBE_PATH[info.kind]}`,
          headers: { authorization: `Bearer ${ticket.token}`, 'anthropic-version': '2023-06-01' },
          timeout: timeoutMs,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 4096) body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => {
        resolve(null);
        req.destroy();
      });
      req.on('error', reject);
      req.end();
    });
    const durationMs = Date.now() - t0;
    if (!answer)
      return { name, ok: false, status: 0, durationMs, reason: `no answer within ${timeoutMs / 1000} s` };
    const { status, body } = answer;
    const ok = status >= 200 && status < 300;
    return ok ? { name, ok, status, durationMs } : { name, ok, status, durationMs, reason: reasonOf(body) };
  } finally {
    await gw.close();
    open = false;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What an error answer says: its JSON error message (Anthropic, OpenAI, ours), else its first line. */
function reasonOf(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message);
    if (typeof m === 'string' && m.trim()) return m.trim().split('\n')[0]!.slice(0, 300);
  } catch {
    // not JSON: the text itself
  }
  return body.trim().split('\n')[0]?.slice(0, 300) || 'no reason given';
}

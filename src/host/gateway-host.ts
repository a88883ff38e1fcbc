/**
 * Host wiring of the vault and the gateway: open the vault (refusing a wrong key before the
 * host starts anything), start the gateway on $POLYCLAW_HOME/gateway/gateway.sock and the
 * configured loopback port, and describe what a sandbox gets to reach it. A sandbox gets a
 * token and loopback URLs only; its proxy variables carry the token, never a secret.
 */
import type { Mount } from '../sandbox/runtime.js';
import { Gateway } from '../gateway/gateway.js';
import {
  SANDBOX_GATEWAY_DIR,
  SANDBOX_GATEWAY_PORT,
  type GatewayDeps,
  type GatewayTicket,
} from '../gateway/contract.js';
import { Vault } from '../gateway/vault.js';
import type { Logger } from '../shared/log.js';
import { paths, vaultKeySource, type Config } from './config.js';
import type { Db } from './db/open.js';

export function openVault(db: Db, env: NodeJS.ProcessEnv = process.env): Vault {
  return Vault.open(db, vaultKeySource(env));
}

export function gatewayDeps(config: Config, vault: Vault, log: Logger): GatewayDeps {
  return {
    secrets: vault,
    // Own entries only: a group named like an Object property ("constructor") gets the default.
    policy: (group) => {
      const own = Object.hasOwn(config.gateway.groups, group) ? config.gateway.groups[group] : undefined;
      return own ?? { allowHosts: [], requestsPerHour: null };
    },
    log,
    upstreams: config.gateway.upstreams,
    chatgptTokenUrl: config.gateway.chatgptTokenUrl,
  };
}

export async function startGateway(opts: {
  db: Db;
  config: Config;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}): Promise<{ gateway: Gateway; vault: Vault }> {
  const vault = openVault(opts.db, opts.env);
  const gateway = new Gateway(gatewayDeps(opts.config, vault, opts.log));
  const r = await gateway.listen({
    socketDir: paths(opts.config.home).gatewayDir,
    tcpPort: opts.config.gateway.tcpPort,
  });
  opts.log.info('gateway listening', { socket: r.socket, tcpPort: r.tcpPort });
  return { gateway, vault };
}

/** Mounts and env a sandbox needs to reach the gateway through its ticket. */
export function sandboxGatewayView(
  ticket: GatewayTicket,
  isolating: boolean,
): { mounts: Mount[]; env: Record<string, string> } {
  let url: string;
  const env: Record<string, string> = {};
  const mounts: Mount[] = [];
  if (isolating) {
    // Only the directory holding the socket, read-only: connecting to a socket needs no write access to the mount.
    mounts.push({ source: ticket.socketDir, target: SANDBOX_GATEWAY_DIR, mode: 'ro' });
    env.POLYCLAW_GATEWAY_SOCKET = `${SANDBOX_GATEWAY_DIR}/${ticket.socketName}`;
    env.POLYCLAW_GATEWAY_PORT = String(SANDBOX_GATEWAY_PORT);
    url = `http://127.0.0.1:${SANDBOX_GATEWAY_PORT}`;
  } else if (ticket.tcpPort !== null) {
    url = `http://127.0.0.1:${ticket.tcpPort}`;
  } else return { mounts, env };
  const proxy = url.replace('http://', `http://polyclaw:${ticket.token}@`);
  Object.assign(env, {
    POLYCLAW_GATEWAY_URL: url,
    POLYCLAW_GATEWAY_TOKEN: ticket.token,
    HTTPS_PROXY: proxy,
    https_proxy: proxy,
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    ...(ticket.endpointKind ? { POLYCLAW_ENDPOINT_KIND: ticket.endpointKind } : {}),
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  });
  return { mounts, env };
}

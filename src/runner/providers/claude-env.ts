/**
 * The Claude Code CLI's whole environment (the SDK's `options.env` replaces process.env).
 * Invariants:
 *  - built from an allowlist, never by copying the runner's env: the runner holds POLYCLAW_*
 *    variables and proxy URLs carrying the gateway token, none of which the CLI may inherit;
 *  - the only credential is the sandbox's gateway token, sent as x-api-key to the gateway
 *    route; the gateway swaps it for the real key, so no real key ever enters the sandbox;
 *  - the settings FINDINGS §C verified offline are always set (no DNS, no extra model calls);
 *  - in an isolating sandbox the model calls go straight to the gateway's unix socket
 *    (ANTHROPIC_UNIX_SOCKET: Claude Code then sends its Anthropic API requests over that socket,
 *    with the path of ANTHROPIC_BASE_URL), one process hop fewer than the runner's loopback
 *    forwarder; without it (or with a CLI that ignores it) the base URL still reaches the gateway.
 */
import path from 'node:path';
import { ProviderConfigError } from '../../shared/provider.js';

/** No Claude turn can start under this configuration: the runner fails the message at once. */
export class ClaudeConfigError extends ProviderConfigError {
  override name = 'ClaudeConfigError';
}

/** The host contribution names the gateway route the model calls use ('/anthropic' or '/endpoints/NAME'). */
export const ROUTE_VAR = 'POLYCLAW_CLAUDE_ROUTE';
/** Per-group Claude config dir inside the sandbox (host contribution sets it; default under the agent dir). */
export const CONFIG_DIR_VAR = 'POLYCLAW_CLAUDE_CONFIG_DIR';
export const DEFAULT_CONFIG_SUBDIR = '.claude-config';

const PASS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'] as const;

export interface ClaudeEnvInput {
  env: Readonly<Record<string, string | undefined>>;
  agentDir: string;
  model?: string;
  isRoot: boolean;
}

export function claudeConfigDir(env: Readonly<Record<string, string | undefined>>, agentDir: string): string {
  return env[CONFIG_DIR_VAR] || path.join(agentDir, DEFAULT_CONFIG_SUBDIR);
}

/** The gateway route as the SDK's base URL: the SDK appends /v1/messages itself. */
export function claudeBaseUrl(env: Readonly<Record<string, string | undefined>>): string {
  const gw = env.POLYCLAW_GATEWAY_URL;
  if (!gw) throw new ClaudeConfigError('no gateway in this sandbox (POLYCLAW_GATEWAY_URL is unset)');
  const route = env[ROUTE_VAR] || '/anthropic';
  if (!/^\/(anthropic|endpoints\/[a-z0-9][a-z0-9_.-]{0,62})$/.test(route))
    throw new ClaudeConfigError(`bad Claude gateway route "${route}"`);
  return gw.replace(/\/$/, '') + route;
}

export function claudeEnv(input: ClaudeEnvInput): Record<string, string> {
  const { env } = input;
  const token = env.POLYCLAW_GATEWAY_TOKEN;
  if (!token)
    throw new ClaudeConfigError('no gateway token in this sandbox (POLYCLAW_GATEWAY_TOKEN is unset)');
  const out: Record<string, string> = {};
  for (const k of PASS) {
    const v = env[k];
    if (v) out[k] = v;
  }
  out.HOME ??= input.agentDir;
  out.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  Object.assign(out, {
    ANTHROPIC_BASE_URL: claudeBaseUrl(env),
    ANTHROPIC_API_KEY: token,
    CLAUDE_CONFIG_DIR: claudeConfigDir(env, input.agentDir),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    // MCP tools listed directly instead of behind ToolSearch (one model round trip less per tool).
    ENABLE_TOOL_SEARCH: 'false',
    // A turn's work ends with the turn: subagents and shells run in the foreground. Background
    // work would report into a CLI that Polyclaw has parked or closed, and its answer would
    // either be lost or taken for the answer to the next message.
    CLAUDE_CODE_DISABLE_BACKGROUND_TASKS: '1',
  });
  if (env.POLYCLAW_GATEWAY_SOCKET) out.ANTHROPIC_UNIX_SOCKET = env.POLYCLAW_GATEWAY_SOCKET;
  if (input.isRoot) out.IS_SANDBOX = '1';
  if (input.model) {
    out.ANTHROPIC_MODEL = input.model;
    out.ANTHROPIC_DEFAULT_HAIKU_MODEL = input.model;
    out.ANTHROPIC_DEFAULT_SONNET_MODEL = input.model;
    out.ANTHROPIC_DEFAULT_OPUS_MODEL = input.model;
  }
  return out;
}

/**
 * Renders and writes `$CODEX_HOME/config.toml` before every app-server start. The settings are
 * the verified offline ones (shared/reference/agent-clis/FINDINGS.md §A): a custom model
 * provider pointed at the gateway route with wire_api "responses" (codex POSTs
 * {base_url}/responses), plugins/analytics/feedback/update checks off, no retries inside codex
 * (the runner and host own retries; that includes unbounded_connection_retries). Invariants:
 *  - every string goes through tomlString(); a value containing a newline or other control
 *    character is refused with a CodexConfigError naming the key (never silently mangled);
 *  - an effort outside EFFORTS is refused here, not passed to codex;
 *  - the file is written atomically (tmp + rename) so a crashed write never leaves half a config.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { StdioServer } from '../tools/config.js';
import { ProviderConfigError } from '../../shared/provider.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';

export const CODEX_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
/** Name of the custom model provider, and of the env var carrying its (placeholder) key. */
export const PROVIDER_ID = 'polyclaw';
export const KEY_ENV = 'POLYCLAW_CODEX_KEY';

export class CodexConfigError extends ProviderConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'CodexConfigError';
  }
}

/** codex 0.169 refuses approval_policy = "untrusted" in config.toml (it is a thread param only). */
export type ConfigApprovalPolicy = 'never' | 'on-request';

/**
 * approveTools: codex never asks approval for this server's tools (our own tool server).
 * toolTimeoutSec: how long codex waits for one tool call (codex's default is 60 s).
 */
export type CodexMcpServer = StdioServer & { approveTools?: boolean; toolTimeoutSec?: number };

export interface CodexConfig {
  model: string;
  effort?: string;
  baseUrl: string;
  approvalPolicy: ConfigApprovalPolicy;
  /** MCP servers: ours first, then the group's. */
  mcpServers: CodexMcpServer[];
  /** ChatGPT-subscription mode: auth.json (placeholder) instead of env_key; see codex-chatgpt.ts. */
  chatgpt?: { backendUrl: string };
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** A TOML basic string. Control characters are refused: a newline could inject config keys. */
export function tomlString(value: string, key: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new CodexConfigError(`config.toml: ${key} must be a single line without control characters`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function tomlKey(k: string, what: string): string {
  return BARE_KEY.test(k) ? k : tomlString(k, what);
}

export function validateEffort(effort: string | undefined): void {
  if (effort !== undefined && !(CODEX_EFFORTS as readonly string[]).includes(effort))
    throw new CodexConfigError(
      `unknown reasoning effort "${effort}" (expected one of ${CODEX_EFFORTS.join(', ')})`,
    );
}

export function renderConfig(c: CodexConfig): string {
  validateEffort(c.effort);
  const s = tomlString;
  const lines = [
    '# Written by Polyclaw before every start; edits are overwritten.',
    `model = ${s(c.model, 'model')}`,
    `model_provider = ${s(PROVIDER_ID, 'model_provider')}`,
    ...(c.effort ? [`model_reasoning_effort = ${s(c.effort, 'effort')}`] : []),
    `approval_policy = ${s(c.approvalPolicy, 'approval_policy')}`,
    'sandbox_mode = "danger-full-access"',
    'check_for_update_on_startup = false',
    'project_doc_max_bytes = 32768',
    ...(c.chatgpt
      ? [
          `chatgpt_base_url = ${s(c.chatgpt.backendUrl, 'chatgpt_base_url')}`,
          'cli_auth_credentials_store = "file"',
        ]
      : []),
    '',
    `[model_providers.${PROVIDER_ID}]`,
    'name = "Polyclaw gateway"',
    `base_url = ${s(c.baseUrl, 'base_url')}`,
    'wire_api = "responses"',
    ...(c.chatgpt
      ? ['requires_openai_auth = true', 'supports_websockets = false']
      : [`env_key = ${s(KEY_ENV, 'env_key')}`]),
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
    '[features]',
    'plugins = false',
    'shell_snapshot = false',
    // On by default in 0.169: a refused connection is retried for ever (no turn/completed, each
    // notice restarting our idle timer). Off, the turn fails at once as httpConnectionFailed.
    'unbounded_connection_retries = false',
  ];
  const seen = new Set<string>();
  for (const m of c.mcpServers) {
    if (seen.has(m.name)) throw new CodexConfigError(`config.toml: MCP server "${m.name}" is listed twice`);
    seen.add(m.name);
    const key = tomlKey(m.name, `mcp_servers name`);
    lines.push('', `[mcp_servers.${key}]`, `command = ${s(m.command, `mcp_servers.${m.name}.command`)}`);
    lines.push(`args = [${m.args.map((a) => s(a, `mcp_servers.${m.name}.args`)).join(', ')}]`);
    if (m.approveTools) lines.push('default_tools_approval_mode = "approve"');
    if (m.toolTimeoutSec !== undefined) lines.push(`tool_timeout_sec = ${Math.ceil(m.toolTimeoutSec)}`);
    const env = Object.entries(m.env);
    if (env.length) {
      lines.push('', `[mcp_servers.${key}.env]`);
      for (const [k, v] of env)
        lines.push(
          `${tomlKey(k, `mcp_servers.${m.name}.env key`)} = ${s(v, `mcp_servers.${m.name}.env.${k}`)}`,
        );
    }
  }
  return lines.join('\n') + '\n';
}

/** Render first (so a bad value throws before anything is touched), then write atomically. */
export function writeConfig(codexHome: string, c: CodexConfig): string {
  const text = renderConfig(c);
  fs.mkdirSync(codexHome, { recursive: true });
  const file = path.join(codexHome, 'config.toml');
  writeFileAtomic(file, text, 0o600);
  return file;
}

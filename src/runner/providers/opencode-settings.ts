/**
 * OpenCode provider settings, read once from the runner's environment (the host contribution
 * sets them) and validated with zod: a bad value fails the provider at construction with one
 * line, never halfway through a turn. Per-group values come from the group's contribution, a
 * few timeouts can be overridden by `.polyclaw-opencode.json` in the group folder (slow local
 * models).
 *
 * Invariants: nothing here is a credential. The gateway token stays in the runner; OpenCode is
 * given a placeholder key and reaches the model only through the runner's tap (opencode-tap.ts).
 * The approval policy is the group's setting (ProviderContext.approval), never read from the
 * group folder or the environment: the agent can edit the folder, so it must not decide what
 * it is allowed to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { notInstalled, opencodeBinary } from '../../shared/agent-binaries.js';
import { ApprovalPolicySchema, type ApprovalPolicy } from '../../shared/messages.js';

const Ms = z.coerce
  .number()
  .int()
  .min(100)
  .max(24 * 3_600_000);

export const GroupFile = z
  .object({
    idleTimeoutMs: Ms.optional(),
    startTimeoutMs: Ms.optional(),
    maxRetries: z.number().int().min(1).max(20).optional(),
  })
  .strict();

import { mcpServersFromEnv, type McpServerSpec } from '../../shared/mcp.js';
import { ProviderConfigError } from '../../shared/provider.js';
export type { McpServerSpec };

export interface OpencodeSettings {
  binary: string;
  model: string;
  effort: string | null;
  /** Vault entry whose gateway route the model calls use; null = the standard `/openai` route. */
  endpoint: string | null;
  gatewayUrl: string;
  /** The gateway's unix socket when the sandbox has it (bwrap): the tap talks to it directly. */
  gatewaySocket: string | null;
  gatewayToken: string | null;
  idleTimeoutMs: number;
  startTimeoutMs: number;
  /** Consecutive `retry` statuses after which the turn fails instead of waiting on. */
  maxRetries: number;
  /** The group's approval policy (opencode-config.ts maps it onto OpenCode's permission rules). */
  approval: ApprovalPolicy;
  mcpServers: McpServerSpec[];
  /** Root of OpenCode's isolated HOME and XDG dirs (per group: lives in the group folder). */
  stateDir: string;
}

export class OpencodeSettingsError extends ProviderConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'OpencodeSettingsError';
  }
}

export const GROUP_FILE = '.polyclaw-opencode.json';
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

function readGroupFile(agentDir: string): z.infer<typeof GroupFile> {
  const file = path.join(agentDir, GROUP_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // The agent writes this file: a typo is a configuration error (failed at once, not retried).
    throw new OpencodeSettingsError(`${GROUP_FILE} is not valid JSON: ${(err as Error).message}`);
  }
  // Loud, not ignored: an admin who once set it here must not believe it is still in force.
  if (json && typeof json === 'object' && 'approval' in json)
    throw new OpencodeSettingsError(
      `${GROUP_FILE}: "approval" is no longer read from the group folder; remove it and set the group's policy with \`polyclaw groups update NAME --approval bypass|ask|deny\``,
    );
  const r = GroupFile.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new OpencodeSettingsError(`${GROUP_FILE}: ${field}${issue?.message}`);
  }
  return r.data;
}

function num(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const r = Ms.safeParse(v);
  if (!r.success) throw new OpencodeSettingsError(`${name} must be a number of milliseconds (got "${v}")`);
  return r.data;
}

export function readSettings(opts: {
  agentDir: string;
  model?: string;
  effort?: string;
  /** The group's approval policy (default 'bypass'). */
  approval?: ApprovalPolicy;
  env: Readonly<Record<string, string | undefined>>;
  binary?: string;
}): OpencodeSettings {
  const { env } = opts;
  const file = readGroupFile(opts.agentDir);
  const gatewayUrl = env.POLYCLAW_GATEWAY_URL;
  if (!gatewayUrl)
    throw new OpencodeSettingsError(
      'no POLYCLAW_GATEWAY_URL: OpenCode reaches its model only through the gateway',
    );
  let mcpServers: McpServerSpec[];
  try {
    mcpServers = mcpServersFromEnv(env);
  } catch (err) {
    throw new OpencodeSettingsError((err as Error).message);
  }
  const approval = ApprovalPolicySchema.safeParse(opts.approval ?? 'bypass');
  if (!approval.success)
    throw new OpencodeSettingsError(`unknown approval policy "${String(opts.approval)}"`);
  const binary = opts.binary ?? (env.OPENCODE_BIN || opencodeBinary()); // an empty OPENCODE_BIN counts as unset
  if (!binary) throw new OpencodeSettingsError(notInstalled('opencode'));
  return {
    binary,
    model: opts.model ?? 'gpt-5-mini',
    effort: opts.effort ?? null,
    endpoint: env.POLYCLAW_MODEL_ENDPOINT || null,
    gatewayUrl: gatewayUrl.replace(/\/$/, ''),
    gatewaySocket: env.POLYCLAW_GATEWAY_SOCKET || null,
    gatewayToken: env.POLYCLAW_GATEWAY_TOKEN ?? null,
    idleTimeoutMs: file.idleTimeoutMs ?? num(env, 'OPENCODE_IDLE_TIMEOUT_MS') ?? DEFAULT_IDLE_TIMEOUT_MS,
    startTimeoutMs: file.startTimeoutMs ?? num(env, 'OPENCODE_START_TIMEOUT_MS') ?? 30_000,
    maxRetries: file.maxRetries ?? 3,
    approval: approval.data,
    mcpServers,
    stateDir: path.join(opts.agentDir, '.polyclaw', 'opencode'),
  };
}

/**
 * Builds the SandboxSpec of a session: the mount table, the provider's contribution, a
 * minimal environment (no host variables, no secrets), and the runner command. Paths are
 * sandbox paths; for a non-isolating runtime they are translated back to host paths.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { mcpServersEnv } from '../shared/mcp.js';
import { hostProviderRegistry } from '../providers/index.js';
import { buildMounts, hostPathFor, SANDBOX_AGENT, SANDBOX_APP, SANDBOX_SESSION } from '../sandbox/mounts.js';
import type { SandboxRuntime, SandboxSpec } from '../sandbox/runtime.js';
import type { Config } from './config.js';
import type { GatewayTicket } from '../gateway/contract.js';
import { sandboxGatewayView } from './gateway-host.js';
import type { AgentGroup } from './store/groups.js';

export function groupDir(home: string, group: string): string {
  return path.join(home, 'groups', group);
}

export function sessionDir(home: string, group: string, sessionId: string): string {
  return path.join(home, 'sessions', group, sessionId);
}

export function buildSpec(opts: {
  config: Config;
  runtime: SandboxRuntime;
  installId: string;
  group: AgentGroup;
  sessionId: string;
  /** The sandbox's gateway token; its mounts and env are the sandbox's only way out. */
  gateway?: GatewayTicket;
}): SandboxSpec {
  const { config, runtime, group } = opts;
  const gdir = groupDir(config.home, group.name);
  const contribution = hostProviderRegistry.get(group.provider).contribute({
    groupName: group.name,
    groupDir: gdir,
    model: group.model,
    effort: group.effort,
    endpoint: group.endpoint,
    mcpServers: group.mcpServers,
    skills: group.skills,
    approval: group.approval,
    config,
  });
  const mounts = buildMounts({
    installDir: config.installDir,
    groupDir: gdir,
    sessionDir: sessionDir(config.home, group.name, opts.sessionId),
    skillsDir: path.join(config.installDir, 'skills'),
    extra: contribution.mounts,
  });
  const p = (target: string) => (runtime.isolating ? target : hostPathFor(mounts, target));
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: p(SANDBOX_AGENT),
    LANG: 'C.UTF-8',
    TZ: group.timezone ?? config.timezone,
    POLYCLAW_SESSION_DIR: p(SANDBOX_SESSION),
    POLYCLAW_AGENT_DIR: p(SANDBOX_AGENT),
    ...mcpServersEnv(group.mcpServers),
    ...contribution.env,
  };
  if (opts.gateway) {
    const g = sandboxGatewayView(opts.gateway, runtime.isolating);
    mounts.push(...g.mounts);
    Object.assign(env, g.env);
  }
  return {
    id: randomUUID().slice(0, 12),
    installId: opts.installId,
    mounts,
    env,
    command: [process.execPath, p(`${SANDBOX_APP}/dist/cli/main.js`), 'runner'],
    cwd: p(SANDBOX_AGENT),
    limits: { memoryMb: config.sandbox.memoryMb, cpus: config.sandbox.cpus, pids: config.sandbox.pids },
    hidden: [config.home],
  };
}

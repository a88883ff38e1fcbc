/**
 * Host side of the provider seam: what a provider adds to a sandbox at every start. A
 * provider that owns its agent surfaces (e.g. composes its own AGENTS.md and state dir)
 * sets ownsSurfaces so core skips the default composition.
 */
import type { ApprovalPolicy } from '../shared/messages.js';
import type { Config } from '../host/config.js';
import type { Mount } from '../sandbox/runtime.js';

export interface ContributionInput {
  groupName: string;
  groupDir: string;
  model: string | null;
  effort: string | null;
  endpoint: string | null;
  /** The group's own MCP servers (ours is always attached by the runner). */
  mcpServers: Array<{ name: string; command?: string; args?: string[]; url?: string; instructions?: string }>;
  /** Shared skills the group selected. */
  skills: string[];
  /** The group's approval policy: what the agent may not grant itself under 'ask' and 'deny'. */
  approval: ApprovalPolicy;
  /** The host's configuration (never holds a secret): host-wide provider defaults. */
  config: Pick<Config, 'opencode'>;
}

export interface Contribution {
  mounts: Mount[];
  env: Record<string, string>;
  ownsSurfaces: boolean;
}

export interface HostProvider {
  readonly name: string;
  /** Reject bad settings when a group is saved, with a one-line reason. */
  validate?(settings: { model: string | null; effort: string | null }): void;
  /**
   * Approval policies this provider's runner side implements (default: only 'bypass'). A group
   * asking for another one is refused when saved, with the supported list.
   */
  readonly approvals?: readonly ApprovalPolicy[];
  contribute(input: ContributionInput): Contribution;
  /**
   * Whether this provider's agent can run on this machine, for `polyclaw doctor`: its binary
   * answers `--version` (detail: that version), else a one-line reason and what to run. Absent
   * when there is nothing to install (mock).
   */
  check?(): Promise<ProviderCheck>;
}

export interface ProviderCheck {
  ok: boolean;
  detail: string;
  fix?: string;
}

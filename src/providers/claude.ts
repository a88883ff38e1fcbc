/**
 * Host side of the `claude` provider. Claude owns its agent surfaces:
 *  - a composed CLAUDE.md (claude-md.ts) mounted read-only over the group folder's CLAUDE.md,
 *    its fragments read-only at .polyclaw-claude/; the group's MEMORY.md stays read-write;
 *  - a per-group Claude config dir ($POLYCLAW_HOME/provider-state/claude/<group>/config:
 *    settings, session transcripts, skills links) mounted read-write as the agent folder's
 *    .claude-config, so sessions resume across sandbox restarts and survive session resets;
 *  - under the 'ask' and 'deny' policies, settings files the host owns, empty and read-only,
 *    over the config dir's settings.json and the agent folder's .claude/settings.json: in the
 *    agent's hands they grant tools (permissions.allow outranks the policy), and run commands
 *    unasked (hooks, apiKeyHelper);
 *  - the gateway route of the model calls in POLYCLAW_CLAUDE_ROUTE: /endpoints/<name> for a
 *    group with an endpoint, else /anthropic. Never a credential: the gateway adds it.
 */
import { claudeBinary } from '../shared/agent-binaries.js';
import { binaryCheck } from './binary-check.js';
import { linkSkills } from './skill-links.js';
import { createLogger } from '../shared/log.js';
import fs from 'node:fs';
import path from 'node:path';
import { badRequest } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/atomic-file.js';
import type { Mount } from '../sandbox/runtime.js';
import type { ContributionInput } from './contribution.js';
import { composeClaudeMd, FRAGMENTS_DIR, type McpServerInfo } from './claude-md.js';
import { registerHostProvider } from './registry.js';

const AGENT = '/workspace/agent';
const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];
/** Must match DEFAULT_CONFIG_SUBDIR of src/runner/providers/claude-env.ts (a test ties them). */
export const CONFIG_SUBDIR = '.claude-config';

/** Fields core may pass beyond ContributionInput (the group's MCP servers and skills). */
type ClaudeInput = ContributionInput & { mcpServers?: McpServerInfo[]; skills?: string[] };

export function claudeStateDir(groupDir: string, groupName: string): string {
  return path.resolve(groupDir, '..', '..', 'provider-state', 'claude', groupName);
}

registerHostProvider({
  name: 'claude',
  approvals: ['bypass', 'ask', 'deny'],
  check: () => binaryCheck(claudeBinary, 'claude'),
  validate: ({ effort }) => {
    if (effort !== null && !EFFORTS.includes(effort))
      throw badRequest(`claude: unknown effort "${effort}" (expected one of ${EFFORTS.join(', ')})`);
  },
  contribute: (input: ClaudeInput) => {
    const root = claudeStateDir(input.groupDir, input.groupName);
    const config = path.join(root, 'config');
    fs.mkdirSync(config, { recursive: true });
    linkSkills(
      config,
      'skills',
      input.skills ?? [],
      createLogger().child('claude-contribution', { group: input.groupName }),
    );
    const { claudeMd, fragmentsDir } = composeClaudeMd({
      mdDir: path.join(root, 'md'),
      groupDir: input.groupDir,
      mcpServers: input.mcpServers,
    });
    const locked: Mount[] = [];
    if (input.approval !== 'bypass') {
      const settings = path.join(root, 'md', 'settings.json');
      writeFileAtomic(settings, '{}\n');
      for (const target of [`${AGENT}/${CONFIG_SUBDIR}/settings.json`, `${AGENT}/.claude/settings.json`])
        locked.push({ source: settings, target, mode: 'ro', file: true });
    }
    return {
      mounts: [
        { source: config, target: `${AGENT}/${CONFIG_SUBDIR}`, mode: 'rw' },
        { source: claudeMd, target: `${AGENT}/CLAUDE.md`, mode: 'ro', file: true },
        { source: fragmentsDir, target: `${AGENT}/${FRAGMENTS_DIR}`, mode: 'ro' },
        ...locked,
      ],
      env: { POLYCLAW_CLAUDE_ROUTE: input.endpoint ? `/endpoints/${input.endpoint}` : '/anthropic' },
      ownsSurfaces: true,
    };
  },
});

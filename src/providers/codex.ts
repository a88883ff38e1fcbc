/**
 * Host side of the `codex` provider. Codex owns its agent surfaces:
 *  - a per-group persistent state dir ($POLYCLAW_HOME/provider-state/codex/<group>/home), mounted
 *    read-write as ~/.codex (threads survive session resets and sandbox restarts; it is not under
 *    /tmp, see FINDINGS §A);
 *  - a composed AGENTS.md mounted read-only over the group folder's AGENTS.md.
 * The runner learns the endpoint NAME and the group's MCP servers from the env; never a credential.
 */
import { linkSkills } from './skill-links.js';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../shared/log.js';
import { badRequest } from '../shared/errors.js';
import type { ContributionInput } from './contribution.js';
import { writeAgentsMd } from './codex-agents-md.js';
import { registerHostProvider } from './registry.js';
import { codexBinary } from '../shared/agent-binaries.js';
import { binaryCheck } from './binary-check.js';

const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];
const AGENT = '/workspace/agent';

export function codexStateDir(groupDir: string, groupName: string): string {
  return path.resolve(groupDir, '..', '..', 'provider-state', 'codex', groupName);
}

registerHostProvider({
  name: 'codex',
  check: () => binaryCheck(codexBinary, 'codex'),
  // The runner side maps these onto codex's approval policy (runner/providers/codex-approvals.ts).
  approvals: ['bypass', 'ask', 'deny'],
  validate: ({ effort }) => {
    if (effort !== null && !EFFORTS.includes(effort))
      throw badRequest(`codex: unknown effort "${effort}" (expected one of ${EFFORTS.join(', ')})`);
  },
  contribute: (input: ContributionInput) => {
    const log = createLogger().child('codex-contribution', { group: input.groupName });
    const root = codexStateDir(input.groupDir, input.groupName);
    const home = path.join(root, 'home');
    fs.mkdirSync(home, { recursive: true });
    // .agents/skills in the group folder: where AGENTS.md tells codex to look.
    linkSkills(input.groupDir, path.join('.agents', 'skills'), input.skills, log);
    const agentsMd = writeAgentsMd(
      path.join(root, 'AGENTS.md'),
      { groupDir: input.groupDir, skills: input.skills, mcpServers: input.mcpServers },
      log,
    );
    const env: Record<string, string> = {};
    if (input.endpoint) env.POLYCLAW_MODEL_ENDPOINT = input.endpoint;
    return {
      mounts: [
        { source: home, target: `${AGENT}/.codex`, mode: 'rw' },
        { source: agentsMd, target: `${AGENT}/AGENTS.md`, mode: 'ro', file: true },
      ],
      env,
      ownsSurfaces: true,
    };
  },
});

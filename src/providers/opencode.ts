/**
 * Host side of the `opencode` provider. OpenCode keeps its own state (sessions, config dirs)
 * under the group folder, so it needs no extra mount; the runner learns from the environment
 * which vault entry's gateway route carries the group's model calls. Never a credential here:
 * the sandbox gets the endpoint's NAME, the gateway injects its key.
 */
import { registerHostProvider } from './registry.js';

/** Host variables forwarded to the runner when set (host-wide defaults for slow local models). */
const PASS = ['OPENCODE_IDLE_TIMEOUT_MS', 'OPENCODE_START_TIMEOUT_MS'] as const;

registerHostProvider({
  name: 'opencode',
  // The runner maps them onto OpenCode's permission rules (src/runner/providers/opencode-config.ts).
  approvals: ['bypass', 'ask', 'deny'],
  contribute: ({ endpoint }) => {
    const env: Record<string, string> = {};
    if (endpoint) env.POLYCLAW_MODEL_ENDPOINT = endpoint;
    for (const k of PASS) {
      const v = process.env[k];
      if (v) env[k] = v;
    }
    return { mounts: [], env, ownsSurfaces: false };
  },
});

/**
 * Host side of the `opencode` provider. OpenCode keeps its own state (sessions, config dirs)
 * under the group folder, so it needs no extra mount; the runner learns from the environment
 * which vault entry's gateway route carries the group's model calls. Never a credential here:
 * the sandbox gets the endpoint's NAME, the gateway injects its key.
 */
import { registerHostProvider } from './registry.js';
import { opencodeBinary } from '../shared/agent-binaries.js';
import { binaryCheck } from './binary-check.js';

registerHostProvider({
  name: 'opencode',
  check: () => binaryCheck(opencodeBinary, 'opencode'),
  // The runner maps them onto OpenCode's permission rules (src/runner/providers/opencode-config.ts).
  approvals: ['bypass', 'ask', 'deny'],
  contribute: ({ endpoint, config }) => {
    const env: Record<string, string> = {};
    if (endpoint) env.POLYCLAW_MODEL_ENDPOINT = endpoint;
    // Host-wide defaults for slow local models (config.json or OPENCODE_*_TIMEOUT_MS on the host).
    const { idleTimeoutMs, startTimeoutMs } = config.opencode;
    if (idleTimeoutMs) env.OPENCODE_IDLE_TIMEOUT_MS = String(idleTimeoutMs);
    if (startTimeoutMs) env.OPENCODE_START_TIMEOUT_MS = String(startTimeoutMs);
    return { mounts: [], env, ownsSurfaces: false };
  },
});

/**
 * Starting one session's sandbox: its gateway ticket, its spec, the runtime's process, the
 * runner's early-start channel (stdin) and the relay of its log. The ticket lives exactly as
 * long as the sandbox: revoked when the start fails, when the sandbox exits, and when the
 * queue stops it (a message the runner was told of could not be queued, or the sandbox kept
 * inbound.db locked): then the sandbox is killed in the same synchronous step, so nothing the
 * runner did with that message can be served.
 */
import type { SandboxGatewayAccess } from '../gateway/contract.js';
import type { SandboxHandle, SandboxRuntime } from '../sandbox/runtime.js';
import type { Logger } from '../shared/log.js';
import type { Config } from './config.js';
import { relayRunnerLog } from './runner-log.js';
import { buildSpec } from './sandbox-spec.js';
import type { SessionQueue } from './session-queue.js';
import type { AgentGroup } from './store/groups.js';

export interface LaunchDeps {
  config: Config;
  runtime: SandboxRuntime;
  installId: string;
  gateway?: SandboxGatewayAccess;
  log: Logger;
}

/** Start the sandbox of `sessionId` (of `group`), its runner attached to `queue`. Throws if it cannot be built. */
export function launchSandbox(
  d: LaunchDeps,
  group: AgentGroup,
  sessionId: string,
  queue: SessionQueue,
): SandboxHandle {
  const ticket = d.gateway?.issue({ groupId: group.id, groupName: group.name }, sessionId, group.endpoint);
  let handle: SandboxHandle;
  try {
    const spec = buildSpec({
      config: d.config,
      runtime: d.runtime,
      installId: d.installId,
      group,
      sessionId,
      gateway: ticket,
    });
    handle = d.runtime.start(spec);
  } catch (err) {
    ticket?.revoke();
    throw err;
  }
  const log = d.log.child('sandbox', { session: sessionId, pid: handle.pid });
  const started = handle;
  const detach = queue.attachRunner({
    tell: (line) => {
      const stdin = started.stdin as (NodeJS.WritableStream & { destroyed?: boolean }) | null;
      if (!stdin || stdin.destroyed || !stdin.writable) return false;
      stdin.write(line);
      return true;
    },
    stop: (why) => {
      ticket?.revoke();
      started.kill();
      log.error(`sandbox stopped: ${why}`);
    },
  });
  void handle.exited.then(() => {
    detach();
    ticket?.revoke();
  });
  if (handle.stderr) relayRunnerLog(handle.stderr, d.log.child('runner', { session: sessionId }));
  handle.stdout?.resume();
  log.info('sandbox started', { runtime: d.runtime.name });
  return handle;
}

/**
 * `polyclaw runner`: the process inside a sandbox. It exits when its stdin closes (the host is
 * gone) or on SIGTERM; anything it had not acked is retried by the host. Its stdin also carries
 * the host's early-start hints (src/shared/runner-hint.ts). A provider that cannot start under
 * this install or configuration (ProviderConfigError) fails the due messages at once, not
 * retryable, so the user hears why without waiting for every retry.
 */
import { createLogger } from '../shared/log.js';
import { Doorbell } from '../shared/doorbell.js';
import { hintReader } from '../shared/runner-hint.js';
import { ProviderConfigError, type AgentProvider } from '../shared/provider.js';
import { bellsDir, INBOUND_BELL } from '../shared/session-db.js';
import { providerRegistry } from './providers/index.js';
import { failureOf, RunnerLoop } from './loop.js';
import { RunnerQueue } from './session-io.js';
import { startForwarder } from './gateway-forwarder.js';

export async function runnerMain(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const sessionDir = env.POLYCLAW_SESSION_DIR ?? '/workspace/session';
  const agentDir = env.POLYCLAW_AGENT_DIR ?? '/workspace/agent';
  const queue = new RunnerQueue(sessionDir);
  queue.clearWaiting();
  const { meta } = queue.context();
  const log = createLogger().child('runner', { session: meta.sessionId });
  // The sandbox's only way out: a loopback port onto the gateway socket, up before the agent starts.
  const forwarder = env.POLYCLAW_GATEWAY_SOCKET
    ? await startForwarder({
        socketPath: env.POLYCLAW_GATEWAY_SOCKET,
        port: Number(env.POLYCLAW_GATEWAY_PORT) || 0,
        log: log.child('gateway-forwarder'),
      })
    : null;
  let provider: AgentProvider;
  try {
    provider = providerRegistry.get(meta.provider)({
      sessionDir,
      agentDir,
      model: meta.model ?? undefined,
      effort: meta.effort ?? undefined,
      approval: meta.approval,
      env,
      personWaiting: () => queue.personWaiting(),
    });
  } catch (err) {
    if (!(err instanceof ProviderConfigError)) throw err;
    // No attempt can start under this configuration: fail what is due now, not after every retry.
    log.error('the provider cannot start', { provider: meta.provider, err: err.message });
    const due = queue.pending().due.filter((m) => m.trigger);
    if (due.length) queue.ack(due, 'failed', failureOf(err));
    await forwarder?.close();
    queue.close();
    return 1;
  }
  const doorbell = new Doorbell(bellsDir(sessionDir), log, (name) => name === INBOUND_BELL);
  doorbell.start();
  const loop = new RunnerLoop({
    queue,
    provider,
    doorbell,
    log,
    cwd: agentDir,
    safetyPollMs: Number(env.POLYCLAW_RUNNER_POLL_MS) || 30_000,
  });
  const stop = () => loop.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The host's early-start hints (runner-hint.ts); the end of stdin means the host is gone.
  process.stdin.on(
    'data',
    hintReader(
      (h) => loop.hint(h),
      (why) => log.warn(why),
    ),
  );
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  log.info('runner started', { provider: provider.name });
  await loop.run();
  await provider.close?.();
  doorbell.close();
  await forwarder?.close();
  queue.close();
  return 0;
}

/**
 * `polyclaw runner`: the process inside a sandbox. It exits when its stdin closes (the host is
 * gone) or on SIGTERM; anything it had not acked is retried by the host. Its stdin also carries
 * the host's early-start hints (src/shared/runner-hint.ts). A provider that cannot start under
 * this install or configuration (ProviderConfigError) fails the due messages at once, not
 * retryable, so the user hears why without waiting for every retry.
 *
 * Invariant: whatever the runner opened is closed however it ends, a failed start included; a
 * gateway listener left open would keep the process, and so its sandbox slot, alive. Any other
 * start-up error, and any error out of the loop, is rethrown: `polyclaw` reports it in one line
 * and exits non-zero at once (cli/main.ts), and the host counts the attempt.
 */
import { createLogger, type Logger } from '../shared/log.js';
import { Doorbell } from '../shared/doorbell.js';
import { hintReader } from '../shared/runner-hint.js';
import { ProviderConfigError, type AgentProvider } from '../shared/provider.js';
import { bellsDir, INBOUND_BELL } from '../shared/session-db.js';
import { providerRegistry } from './providers/index.js';
import { failureOf, RunnerLoop } from './loop.js';
import { RunnerQueue } from './session-io.js';
import { startForwarder } from './gateway-forwarder.js';

type Closer = [what: string, close: () => unknown];

export async function runnerMain(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const queue = new RunnerQueue(env.POLYCLAW_SESSION_DIR ?? '/workspace/session');
  let log: Logger;
  try {
    queue.clearWaiting();
    log = createLogger().child('runner', { session: queue.context().meta.sessionId });
  } catch (err) {
    queue.close();
    throw err;
  }
  const open: Closer[] = [['session queue', () => queue.close()]];
  try {
    return await run(env, queue, log, open);
  } finally {
    for (const [what, close] of open.reverse()) {
      try {
        await close();
      } catch (err) {
        log.warn(`closing the ${what} failed`, { err });
      }
    }
  }
}

/** Start the gateway forwarder, the provider and the loop, each pushed onto `open` once up. */
async function run(env: NodeJS.ProcessEnv, queue: RunnerQueue, log: Logger, open: Closer[]): Promise<number> {
  const sessionDir = queue.sessionDir;
  const agentDir = env.POLYCLAW_AGENT_DIR ?? '/workspace/agent';
  const { meta } = queue.context();
  // The sandbox's only way out: a loopback port onto the gateway socket, up before the agent starts.
  if (env.POLYCLAW_GATEWAY_SOCKET) {
    const forwarder = await startForwarder({
      socketPath: env.POLYCLAW_GATEWAY_SOCKET,
      port: Number(env.POLYCLAW_GATEWAY_PORT) || 0,
      log: log.child('gateway-forwarder'),
    });
    open.push(['gateway forwarder', () => forwarder.close()]);
  }
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
    return 1;
  }
  open.push(['provider', () => provider.close?.()]);
  const doorbell = new Doorbell(bellsDir(sessionDir), log, (name) => name === INBOUND_BELL);
  open.push(['doorbell', () => doorbell.close()]);
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
  return 0;
}

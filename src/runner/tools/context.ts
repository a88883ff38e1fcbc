/**
 * ToolContext over the session queues, for the tool server process. It opens the same files
 * as the runner (inbound.db read-only, outbound.db as a second writer in the sandbox; writes
 * take the lock up front) and waits for answers on an inotify doorbell with a slow poll.
 */
import { randomUUID } from 'node:crypto';
import { Doorbell } from '../../shared/doorbell.js';
import type { Logger } from '../../shared/log.js';
import { bellsDir, INBOUND_BELL } from '../../shared/session-db.js';
import { RunnerQueue } from '../session-io.js';
import type { ToolContext } from './tool.js';

export function queueContext(opts: {
  sessionDir: string;
  agentDir: string;
  log: Logger;
  now?: () => number;
}): ToolContext & { close(): void } {
  const now = opts.now ?? Date.now;
  const queue = new RunnerQueue(opts.sessionDir, now);
  let bell: Doorbell | null = null;
  const doorbell = () => {
    if (!bell) {
      bell = new Doorbell(bellsDir(opts.sessionDir), opts.log, (name) => name === INBOUND_BELL);
      bell.start();
    }
    return bell;
  };
  return {
    agentDir: opts.agentDir,
    sessionDir: opts.sessionDir,
    now,
    newId: () => randomUUID(),
    meta: () => queue.meta(),
    turn: () => queue.turn(),
    destinations: () => queue.destinations(),
    write: (rows) => queue.commit(rows, []),
    sentBySeq: (seq) => queue.outboundBySeq(seq),
    receivedBySeq: (seq) => queue.inboundBySeq(seq),
    tasks: () => {
      const mirrored = queue.tasks();
      const seen = new Set(mirrored.map((t) => t.id));
      const requested = queue
        .requestedTasks()
        .filter((t) => !seen.has(t.id))
        .map((t) => ({
          id: t.id,
          prompt: t.prompt,
          cron: t.cron,
          at: t.at,
          status: 'requested',
          nextRunAt: null,
          timezone: queue.meta().timezone,
        }));
      return [...mirrored, ...requested];
    },
    async waitForAnswer(questionId, expiresAt, signal) {
      // The provider's own timers see the mark (ProviderContext.personWaiting) and wait too.
      queue.markWaiting(questionId, expiresAt, queue.turn()?.messageId ?? null);
      const wake = () => doorbell().ring();
      signal?.addEventListener('abort', wake, { once: true });
      try {
        for (;;) {
          const a = queue.answer(questionId);
          if (a) return a;
          const left = expiresAt - now();
          if (left <= 0 || signal?.aborted) return null;
          // A turn waiting for a person is not stuck: keep the runner's heartbeat going, or the
          // host's stuck-turn sweep would kill the sandbox under a question that waits for hours.
          queue.heartbeat();
          await doorbell().wait(Math.min(left, 2000));
        }
      } finally {
        signal?.removeEventListener('abort', wake);
        queue.markWaiting(questionId, null);
      }
    },
    close() {
      bell?.close();
      queue.close();
    },
  };
}

/**
 * Which open session queues may be closed. Each open queue holds its database files and a
 * watch on its bells; kept for the life of the host, a session per thread made every thread
 * ever spoken in cost them, until the host ran out of files. A queue closes once nothing of
 * its session is under way (the caller says what is: a sandbox, a pass in its chain, a
 * delivery wake to come), no message of it waits for a turn (turnsDue: kept context and host
 * notes are durable and need no open queue), and it has not been asked for in QUIET_CLOSE_MS.
 * The next message, timer or admin call opens it again.
 */
import type { Logger } from '../shared/log.js';
import type { SessionQueue } from './session-queue.js';
import { turnsDue } from './turn-watch.js';

export const QUIET_CLOSE_MS = 10 * 60_000;

export function quietSessions(
  open: Iterable<[string, SessionQueue]>,
  d: {
    busy: (sessionId: string) => boolean;
    lastUsed: (sessionId: string) => number;
    now: number;
    log: Logger;
  },
): string[] {
  const quiet: string[] = [];
  for (const [id, q] of open) {
    if (d.busy(id) || d.now - d.lastUsed(id) < QUIET_CLOSE_MS) continue;
    try {
      if (turnsDue(q).length === 0) quiet.push(id);
    } catch (err) {
      d.log.debug('a session queue that cannot be read stays open', { session: id, err });
    }
  }
  return quiet;
}

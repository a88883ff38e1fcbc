/**
 * The host's own clock on each session's turns, for maxTurnMs. The sandbox writes its acks and
 * heartbeats, so neither can be trusted to say how long a turn has run: each attempt in flight
 * (an ack 'processing' at the message's CURRENT try — acks for other tries are stale or forged)
 * is timed from the first sweep that saw it, on the host's clock. While a person is being asked
 * (an open question or approval of the session) the clock starts again: a turn waiting for a
 * person is not running away. Follow-ups joining a turn get clocks of their own, so they cannot
 * restart the turn's.
 */
import type { AckRow, InboundRow, SessionQueue } from './session-queue.js';

export interface Attempt {
  messageId: string;
  tryNo: number;
}

export const attemptKey = (a: Attempt) => `${a.tryNo}:${a.messageId}`;

/** Attempts of `q` in flight: acked 'processing' at the message's current try. */
export function attemptsInFlight(q: SessionQueue): Attempt[] {
  const tries = new Map(q.pendingTries().map((m) => [m.id, m.tries]));
  return q
    .acksFor([...tries.keys()])
    .filter((a) => a.status === 'processing' && a.tryNo === tries.get(a.messageId))
    .map((a) => ({ messageId: a.messageId, tryNo: a.tryNo }));
}

/**
 * Trigger messages of `q` that still need a turn: pending, and not answered at their current
 * try. An answered one whose reply only waits for a delivery retry (a platform outage may take
 * many minutes) needs no sandbox: it must neither keep one running nor start one. Unreadable
 * acks (a broken outbound.db) count as not answered.
 */
export function turnsDue(q: SessionQueue): InboundRow[] {
  const due = q.pending().filter((m) => m.trigger);
  if (due.length === 0) return due;
  let acks: AckRow[];
  try {
    acks = q.acksFor(due.map((m) => m.id));
  } catch {
    return due; // the delivery pass reports and handles a broken queue
  }
  const answered = new Set(acks.filter((a) => a.status === 'completed').map(attemptKey));
  return due.filter((m) => !answered.has(attemptKey({ messageId: m.id, tryNo: m.tries })));
}

export class TurnWatch {
  private seen = new Map<string, Map<string, Attempt & { since: number }>>();

  constructor(
    private readonly now: () => number,
    private readonly maxTurnMs: number,
  ) {}

  /** Record the session's attempts in flight; returns those that have run past maxTurnMs. */
  observe(sessionId: string, inFlight: Attempt[], waitingForPerson: boolean): Attempt[] {
    const now = this.now();
    const prev = this.seen.get(sessionId);
    const next = new Map<string, Attempt & { since: number }>();
    for (const a of inFlight) {
      const key = attemptKey(a);
      next.set(key, { ...a, since: waitingForPerson ? now : (prev?.get(key)?.since ?? now) });
    }
    if (next.size) this.seen.set(sessionId, next);
    else this.seen.delete(sessionId);
    return [...next.values()]
      .filter((a) => now - a.since > this.maxTurnMs)
      .map(({ messageId, tryNo }) => ({ messageId, tryNo }));
  }

  forget(sessionId: string): void {
    this.seen.delete(sessionId);
  }
}

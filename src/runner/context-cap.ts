/**
 * How much accumulated chatter a turn carries. Under `--ignored accumulate` every message the
 * group is not asked to answer waits as context for the next one it is; in a busy chat where it
 * is rarely addressed that backlog has no bound, and a prompt of megabytes fails the turn (and
 * with it, the question that was asked). A turn keeps the newest context rows within both
 * limits; older ones are settled without being shown (they never asked for an answer).
 * Triggers and non-chat rows (tasks, notes, answers) are always kept.
 */
import type { PendingMessage } from './session-io.js';

/** At most this many context rows in one turn (as a group chat's history window does). */
export const MAX_CONTEXT_ROWS = 200;
/** At most this much context text in one turn (~25k tokens). */
export const MAX_CONTEXT_CHARS = 100_000;

const isContext = (m: PendingMessage) => !m.trigger && m.kind === 'chat';

/** `batch` split into what the turn shows and the older context rows it leaves out. */
export function capContext(batch: PendingMessage[]): { keep: PendingMessage[]; left: PendingMessage[] } {
  let rows = 0;
  let chars = 0;
  const left = new Set<PendingMessage>();
  for (let i = batch.length - 1; i >= 0; i--) {
    const m = batch[i]!;
    if (!isContext(m)) continue;
    rows += 1;
    chars += m.content.text.length;
    if (left.size > 0 || rows > MAX_CONTEXT_ROWS || chars > MAX_CONTEXT_CHARS) left.add(m);
  }
  if (left.size === 0) return { keep: batch, left: [] };
  return { keep: batch.filter((m) => !left.has(m)), left: batch.filter((m) => left.has(m)) };
}

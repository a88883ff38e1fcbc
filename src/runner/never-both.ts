/**
 * "Never both": a chat hears a turn's answer once. When a tool already sent a message to the
 * chat in reply to the turn's message, the turn's final text is not sent; nor is a text the
 * turn's early reply already carried. The loop's own answers are marked (`answer: true`) so a
 * retry can tell an earlier try's answer, which counts, from an earlier try's tool message
 * ("Working on it…" before that try failed), which does not.
 */
import { sameChat } from '../shared/messages.js';
import type { PendingMessage, RunnerQueue } from './session-io.js';

/** The turn's reply to the message its group answers (`files`: staged under outbox/). */
export const replyTo = (last: PendingMessage, text: string, files: string[] = []) => ({
  kind: 'message' as const,
  inReplyTo: last.id,
  routing: last.routing,
  content: { text, files, answer: true as const },
});

/** Whether `sent` already carries `text` (whitespace aside: the agent may join its text blocks differently). */
export const covers = (sent: string, text: string) => {
  const squash = (s: string) => s.replace(/\s+/g, '');
  return squash(sent).includes(squash(text));
};

/**
 * `last`'s chat has its answer already, in reply to it (rows in `except` aside): a tool's
 * message with text of this try (written after `floor`, the newest row when the try started),
 * or the turn's answer of any try. A file sent without a caption answers nothing.
 */
export function answeredInChat(
  queue: Pick<RunnerQueue, 'repliesTo'>,
  last: PendingMessage,
  floor: number,
  except?: Set<number>,
): boolean {
  return queue
    .repliesTo(last.id)
    .some(
      (r) =>
        r.kind === 'message' &&
        sameChat(r.routing, last.routing) &&
        !except?.has(r.seq) &&
        (r.answer || (r.seq > floor && r.said)),
    );
}

/**
 * Early start: the host tells a running runner of a new chat message over the runner's stdin
 * *before* committing it to inbound.db, so the agent starts while the commit (two fsyncs,
 * ~2-4 ms) runs. inbound.db stays the source of truth; a hint is only a head start.
 *
 * Why this cannot let an uncommitted message have an effect: the host sends the hint and runs
 * the commit in one synchronous step of its event loop (better-sqlite3 commits synchronously).
 * Everything the sandbox can cause outside itself goes through the host — model calls and
 * egress through the gateway, messages through outbound.db, which the host reads on its event
 * loop — so none of it is served before the commit returned. When the commit throws, the host
 * revokes the sandbox's gateway token and kills it in that same step, and delivery never sends
 * a row in reply to a message that was never queued (a runner that answers without the model,
 * like the mock, may have written one before it was killed). What stays is the agent's own
 * transcript inside the sandbox, which may hold the message.
 *
 * Which messages are hinted (the host decides, see `mayHint`): a triggering chat message due
 * now, not a slash command (the runner answers `/clear` itself, without the model), small
 * enough for one pipe write, in a session with no other unsettled message (so the hinted
 * message is the whole batch: older context messages keep their order through the normal path).
 *
 * The runner takes a hint only while idle, only when its cached session context carries the
 * hint's `gen` (the host's current metadata), and only when the message has no ack yet; in
 * every other case it drops the hint and the doorbell after the commit brings the message the
 * usual way. Taking a hint acks it `processing` like any batch, so it is never run twice.
 */
import { z } from 'zod';
import { lineSplitter } from './lines.js';
import { InboundContentSchema, RoutingSchema, type InboundContent } from './messages.js';

/** Hints larger than this go the usual way (one small pipe write keeps the host's step short). */
export const MAX_HINT_BYTES = 16 * 1024;

export const RunnerHintSchema = z.object({
  hint: z.object({
    /** The session metadata generation the host published last (meta key 'gen'). */
    gen: z.string().min(1),
    message: z.object({
      id: z.string().min(1),
      seq: z.number().int(),
      kind: z.literal('chat'),
      timestamp: z.number(),
      tries: z.literal(0),
      trigger: z.literal(true),
      processAfter: z.number(),
      routing: RoutingSchema,
      content: InboundContentSchema,
    }),
  }),
});
export type RunnerHint = z.infer<typeof RunnerHintSchema>['hint'];

/** Whether a new inbound row may be hinted (the session-level condition is the caller's). */
export function mayHint(
  m: { kind: string; trigger: boolean; processAfter: number; content: InboundContent },
  now: number,
): boolean {
  return (
    m.kind === 'chat' && m.trigger && m.processAfter <= now && !m.content.text.trimStart().startsWith('/')
  );
}

/** One hint line for the runner's stdin, or null when it is too large to be worth it. */
export function encodeHint(h: RunnerHint): string | null {
  const line = JSON.stringify({ hint: h }) + '\n';
  return Buffer.byteLength(line) > MAX_HINT_BYTES ? null : line;
}

/**
 * Reads the runner's stdin: each valid hint goes to `onHint`; a line that is not a hint is
 * reported to `onBad` and skipped (the stream goes on).
 */
export function hintReader(
  onHint: (h: RunnerHint) => void,
  onBad: (why: string) => void,
): (chunk: Buffer | string) => void {
  return lineSplitter(
    (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        onBad('a stdin line is not JSON');
        return;
      }
      const r = RunnerHintSchema.safeParse(parsed);
      if (r.success) onHint(r.data.hint);
      else onBad(`a stdin line is not a hint: ${r.error.issues[0]?.message ?? 'invalid'}`);
    },
    { maxChars: 4 * MAX_HINT_BYTES, onOverflow: () => onBad('a stdin line is too long') },
  );
}

/**
 * Relays a sandbox's stderr into the host log. The sandbox is untrusted, so its lines are
 * re-logged, never copied: the runner's JSON lines keep their level, message and fields, but
 * the host sets the time, the component ('runner') and the session — a sandbox cannot write a
 * line that passes for the host's own, or for another session's. Each line is cut at
 * MAX_RUNNER_LOG_LINE characters and the host holds at most that much of a line that has not
 * ended yet, whatever the sandbox writes.
 */
import { lineSplitter } from '../shared/lines.js';
import type { Level, Logger } from '../shared/log.js';

export const MAX_RUNNER_LOG_LINE = 16 * 1024;
const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
/** Keys the host sets itself: a runner's own are dropped (`component` is kept as `from`). */
const HOST_KEYS = new Set(['t', 'level', 'msg', 'component', 'session']);

/** Log every line of `stream` through `log` (a child logger tagged with the session). */
export function relayRunnerLog(stream: NodeJS.ReadableStream, log: Logger): void {
  const feed = lineSplitter((line) => relayLine(line, log), {
    maxChars: MAX_RUNNER_LOG_LINE,
    onOverflow: (head) => relayLine(head, log), // cut at the limit by relayLine
  });
  stream.setEncoding('utf8');
  stream.on('data', feed);
  stream.on('end', () => feed('\n'));
}

/** One line of a runner's stderr, re-logged under the host's own tags. */
export function relayLine(raw: string, log: Logger): void {
  const truncated = raw.length > MAX_RUNNER_LOG_LINE;
  const line = truncated ? raw.slice(0, MAX_RUNNER_LOG_LINE) : raw;
  if (!line.trim()) return;
  const rec = jsonObject(line);
  if (!rec) {
    log.info(line, truncated ? { truncated } : undefined);
    return;
  }
  const level = LEVELS.includes(rec.level as Level) ? (rec.level as Level) : 'info';
  const msg = typeof rec.msg === 'string' ? rec.msg : '(runner line without a message)';
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) if (!HOST_KEYS.has(k)) fields[k] = v;
  if (typeof rec.component === 'string') fields.from = rec.component;
  if (truncated) fields.truncated = true;
  log[level](msg, fields);
}

function jsonObject(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null; // a cut or hand-written line: relayed as text
  }
}

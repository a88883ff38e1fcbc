/**
 * Structured logging: one JSON object per line on stderr. stdout belongs to command output
 * (and to protocol streams in stdio processes), so nothing here ever writes to it.
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LOG_LEVELS)[number];
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string, fields?: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

function envLevel(): Level {
  const v = (process.env.POLYCLAW_LOG_LEVEL ?? 'info').toLowerCase();
  return v in order ? (v as Level) : 'info';
}

function errFields(v: unknown): unknown {
  if (v instanceof Error) return { name: v.name, message: v.message, code: (v as { code?: unknown }).code };
  return v;
}

export function createLogger(
  opts: { level?: Level; sink?: LogSink; base?: Record<string, unknown> } = {},
): Logger {
  const level = opts.level ?? envLevel();
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const base = opts.base ?? {};
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < order[level]) return;
    const rec: Record<string, unknown> = { t: new Date().toISOString(), level: lvl, ...base, msg };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = errFields(v);
    sink(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (component, fields) =>
      createLogger({ level, sink, base: { ...base, component, ...(fields ?? {}) } }),
  };
}

/** A logger that records lines in memory; for tests that assert on what was logged. */
export function memoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const l = createLogger({
    level: 'debug',
    sink: (s) => lines.push(JSON.parse(s) as Record<string, unknown>),
  });
  return Object.assign(l, { lines });
}

/** Command output: results on stdout (JSON with --json), one-line errors on stderr, exit codes. */
import { PolyclawError, toWireError } from '../shared/errors.js';

export class UsageError extends Error {}

/** `--help`: the usage is the command's output (stdout, exit 0), and nothing runs. */
export class HelpRequested extends Error {
  constructor(usage: string) {
    super(`usage: ${usage}`);
  }
}

/**
 * A result's `warnings` (the operation succeeded, but something needs the user's attention)
 * stay in the JSON; for a person they go to stderr as `warning: …` lines.
 */
export function printResult(result: unknown, json: boolean, human?: (r: never) => string): void {
  if (json) {
    process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
    return;
  }
  let shown = result;
  if (
    typeof result === 'object' &&
    result !== null &&
    Array.isArray((result as { warnings?: unknown }).warnings)
  ) {
    const { warnings, ...rest } = result as { warnings: unknown[] };
    for (const w of warnings) process.stderr.write(`warning: ${String(w)}\n`);
    shown = rest;
  }
  if (human) process.stdout.write(human(shown as never).replace(/\n?$/, '\n'));
  else process.stdout.write(formatHuman(shown) + '\n');
}

export function formatHuman(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return `${indent}(none)`;
    return v
      .map((x) => (typeof x === 'object' && x !== null ? formatRow(x as Record<string, unknown>) : String(x)))
      .map((l) => indent + l)
      .join('\n');
  }
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v)
      .map(([k, x]) =>
        typeof x === 'object' && x !== null
          ? `${indent}${k}:\n${formatHuman(x, indent + '  ')}`
          : `${indent}${k}: ${x ?? '-'}`,
      )
      .join('\n');
  }
  return indent + String(v);
}

function formatRow(r: Record<string, unknown>): string {
  return Object.entries(r)
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `${k}=${v ?? '-'}`)
    .join('  ');
}

/** Print the error as one line (or JSON) and return the exit code. */
export function reportError(err: unknown, json: boolean): number {
  if (err instanceof HelpRequested) {
    printResult({ help: err.message }, json, () => err.message);
    return 0;
  }
  const usage = err instanceof UsageError;
  const wire = usage ? { code: 'usage', message: err.message } : toWireError(err);
  if (json) process.stdout.write(JSON.stringify({ ok: false, error: wire }) + '\n');
  process.stderr.write(`polyclaw: ${wire.message.split('\n')[0]}\n`);
  if (
    usage ||
    (err instanceof PolyclawError &&
      (err.code === 'bad_request' || err.code === 'not_found' || err.code === 'conflict'))
  )
    return 2;
  return 1;
}

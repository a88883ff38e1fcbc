/** Argument parsing with node:util parseArgs: unknown flags and missing values are usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HelpRequested, UsageError } from './output.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Values = Record<string, string | boolean | undefined>;

export function parse(
  argv: string[],
  options: Options,
  usage: string,
): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} — usage: ${usage}`);
  }
  // A value flag given twice is refused, not settled by the last one (`--provider mock
  // --provider claude` would quietly make a claude group).
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || options[t.name]?.type !== 'string' || options[t.name]?.multiple) continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice — usage: ${usage}`);
    seen.add(t.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

export function wantsJson(argv: string[]): boolean {
  return argv.includes('--json');
}

/** How many positionals a command takes (its verb included) and which of its flags. */
export type Shape = [positionals: number, flags: readonly string[]];

/**
 * Anything beyond a command's shape is a usage error, not ignored: `groups show main extra` or
 * `groups list --model m` would otherwise look done. --json goes with every command; --help
 * prints the usage instead of running anything.
 */
export function checkShape(
  command: string,
  parsed: { values: Values; positionals: string[] },
  [count, flags]: Shape,
  usage: string,
): void {
  if (parsed.values.help) throw new HelpRequested(usage);
  const extra = parsed.positionals[count];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}" — usage: ${usage}`);
  const stray = Object.keys(parsed.values).find((f) => f !== 'json' && f !== 'help' && !flags.includes(f));
  if (stray) throw new UsageError(`${command} takes no --${stray} — usage: ${usage}`);
}

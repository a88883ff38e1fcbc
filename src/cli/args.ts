/** Argument parsing with node:util parseArgs: unknown flags and missing values are usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './output.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Values = Record<string, string | boolean | undefined>;

export function parse(
  argv: string[],
  options: Options,
  usage: string,
): { values: Values; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]} — usage: ${usage}`);
  }
}

export function wantsJson(argv: string[]): boolean {
  return argv.includes('--json');
}

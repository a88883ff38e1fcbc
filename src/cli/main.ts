#!/usr/bin/env node
/**
 * The `polyclaw` command. Subcommands load lazily so `polyclaw runner` (inside a sandbox)
 * starts without the host's modules, and every command shares one error path: a one-line
 * message on stderr and a non-zero exit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { printResult, reportError, UsageError } from './output.js';
import { checkShape, parse, wantsJson } from './args.js';

const HELP = `polyclaw — self-hosted personal AI assistant host

  polyclaw up                         start the host (terminal channel, sandboxes, admin socket)
  polyclaw chat [--group NAME] [-m TEXT] [--json]
  polyclaw groups create|list|show|update|delete …
  polyclaw wirings list|add|update|remove …
  polyclaw sessions list|show|reset …
  polyclaw destinations list|add|remove …   names a group may address (chats, other groups)
  polyclaw secrets set|list|delete|test|grant|revoke|login codex …
  polyclaw doctor                     check the install
  polyclaw version                    the installed version
  polyclaw runner                     (internal) the agent runner inside a sandbox
  polyclaw tools                      (internal) the MCP tool server (stdio) agents connect to

Every command takes --json. POLYCLAW_HOME selects the data directory (default ./data).`;

/** The installed package's version (package.json sits two folders above this file, built or not). */
function packageVersion(): string {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      return (await import('./commands/up.js')).upCommand(rest);
    case 'chat':
      return (await import('./commands/chat.js')).chatCommand(rest);
    case 'groups':
    case 'wirings':
    case 'sessions':
    case 'destinations':
      await (await import('./commands/admin.js')).adminCommand(cmd, rest);
      return 0;
    case 'secrets':
      return (await import('./commands/secrets.js')).secretsCommand(rest);
    case 'doctor':
      return (await import('./commands/doctor.js')).doctorCommand(rest);
    case 'runner':
      return (await import('../runner/main.js')).runnerMain();
    case 'tools':
      return (await import('../runner/tools/startup.js')).toolsFront();
    case 'version':
    case '--version':
    case '-v': {
      checkShape(
        'version',
        parse(rest, {}, 'polyclaw version [--json]'),
        [0, []],
        'polyclaw version [--json]',
      );
      const version = packageVersion();
      printResult({ version }, wantsJson(rest), () => `polyclaw ${version}`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      printResult({ help: HELP }, wantsJson(rest), () => HELP);
      return 0;
    default:
      throw new UsageError(`unknown command "${cmd}" (try: polyclaw help)`);
  }
}

// The reader of our output went away (`polyclaw chat -m … | head -1`, a closed terminal): stop
// quietly, as other command-line tools do, instead of a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

// The runner ends when its loop does, whatever still holds the event loop (the host's pipe on
// stdin, a provider's child): a live runner doing nothing keeps its sandbox "busy", so the host
// would neither stop it nor count the attempt, and the message would wait untold.
const exitWhenDone = process.argv[2] === 'runner';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (exitWhenDone) process.exit(code);
  },
  (err: unknown) => {
    process.exitCode = reportError(err, wantsJson(process.argv));
    if (exitWhenDone) process.exit(process.exitCode);
  },
);

/** `polyclaw up`: run the host in the foreground until SIGINT/SIGTERM. */
import { startHost } from '../../host/host.js';
import { closeInheritedFds } from '../../host/inherited-fds.js';
import { createLogger } from '../../shared/log.js';
import { checkShape, parse } from '../args.js';
import { printResult } from '../output.js';

const USAGE = 'polyclaw up [--json]';

export async function upCommand(argv: string[]): Promise<number> {
  const parsed = parse(argv, {}, USAGE);
  checkShape('up', parsed, [0, []], USAGE);
  // Before any child is spawned: none may inherit what started this process.
  closeInheritedFds({ log: createLogger().child('host') });
  const host = await startHost();
  const groups = host.db.prepare('SELECT COUNT(*) AS n FROM agent_groups').get() as { n: number };
  const up = {
    home: host.config.home,
    sandbox: host.runtime.name,
    groups: groups.n,
    createdMain: host.createdMain,
  };
  printResult(
    up,
    parsed.values.json === true,
    () =>
      `Polyclaw is up (data: ${up.home}, sandbox: ${up.sandbox}, ${up.groups} agent group${up.groups === 1 ? '' : 's'}).\n` +
      (up.createdMain ? `Created agent group "main" on the mock provider.\n` : '') +
      `Chat with it: npx polyclaw chat   (one message: npx polyclaw chat -m "hello")\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await host.close();
  return 0;
}

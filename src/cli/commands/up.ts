/** `polyclaw up`: run the host in the foreground until SIGINT/SIGTERM. */
import { startHost } from '../../host/host.js';
import { checkShape, parse } from '../args.js';

export async function upCommand(argv: string[]): Promise<number> {
  checkShape('up', parse(argv, {}, 'polyclaw up'), [0, []], 'polyclaw up');
  const host = await startHost();
  const groups = host.db.prepare('SELECT COUNT(*) AS n FROM agent_groups').get() as { n: number };
  process.stdout.write(
    `Polyclaw is up (data: ${host.config.home}, sandbox: ${host.runtime.name}, ${groups.n} agent group${groups.n === 1 ? '' : 's'}).\n` +
      (host.createdMain ? `Created agent group "main" on the mock provider.\n` : '') +
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

/**
 * Deleting a group while the host runs and one of its messages waits for a retry: the host
 * drops what it held for the group's sessions and keeps serving the others. Real host, real
 * bwrap, real queues.
 */
import { describe, expect, it } from 'vitest';
import { mock } from './support/meta.js';
import { cli, cliAsync, hostsPerTest, tempHome } from './support/cli.js';

const { homes, host } = hostsPerTest({ POLYCLAW_RETRY_BASE_MS: '1500', POLYCLAW_LOG_LEVEL: 'error' });

describe('groups delete --force with a retry pending', () => {
  it('the retry finds nothing to wake: the host stays up and answers the other groups', async () => {
    const home = tempHome();
    homes.push(home);
    const h = await host(home);
    expect(cli(home, ['groups', 'create', 'doomed', '--provider', 'mock']).code).toBe(0);
    const failing = mock({ fail: { message: 'not yet', retryable: true, attempts: 3 } });
    const waiting = cliAsync(home, ['chat', '--group', 'doomed', '-m', failing, '--timeout', '20']);
    // The first attempt fails at once (a scripted failure) and its retry is set 1.5 s later.
    for (let i = 0; i < 200; i++) {
      const s = cli(home, ['sessions', 'list', '--group', 'doomed', '--json']).json.result[0];
      if (s?.sandbox) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    const del = cli(home, ['groups', 'delete', 'doomed', '--force', '--json']);
    expect(del.json).toMatchObject({ ok: true, result: { deleted: 'doomed' } });
    await new Promise((r) => setTimeout(r, 3000)); // past the retry
    expect(h.child.exitCode).toBeNull();
    expect(cli(home, ['chat', '-m', 'still there?', '--json']).json.result.replies[0].text).toBe(
      'echo: still there?',
    );
    // The chat waiting on the deleted group's message hears it ended, instead of waiting out its
    // timeout to say the message "stays queued".
    const w = await waiting;
    expect(w.code).toBe(1);
    expect(w.stderr).not.toMatch(/no answer within|stays queued/);
    // Work of the deleted session cut short is not an error of the host's.
    expect(h.stderr()).not.toMatch(/session work failed/);
  }, 60_000);
});

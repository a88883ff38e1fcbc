/**
 * A sandbox is untrusted with the files it can write: a hostile one that leaves a FIFO or a
 * symlink where the host reads its reply queue must neither hang nor crash the host, and the
 * user hears that the message failed. Real host process, real bwrap, real queues on disk.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliAsync, hostsPerTest, tempHome } from './support/cli.js';

const { homes, host } = hostsPerTest({ POLYCLAW_RETRY_BASE_MS: '100' });

describe('a sandbox that replaced its reply queue', () => {
  for (const [what, plant] of [
    ['a FIFO', (file: string) => execFileSync('mkfifo', [file])],
    ['a symlink to another file', (file: string) => fs.symlinkSync('/etc/hostname', file)],
  ] as const) {
    it(`as ${what}: the host starts, stays responsive, and the user hears the message failed`, async () => {
      const home = tempHome();
      homes.push(home);
      fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify({ safetyPollMs: 500 }));
      let h = await host(home);
      expect(cli(home, ['chat', '-m', 'hello', '--json']).json.result.replies[0].text).toBe('echo: hello');
      const s = cli(home, ['sessions', 'list', '--json']).json.result[0] as { id: string; group: string };
      await h.stop();
      const dir = path.join(home, 'sessions', s.group, s.id);
      for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('outbound.db')))
        fs.rmSync(path.join(dir, f));
      plant(path.join(dir, 'outbound.db'));

      // Start-up opens every session's queue: a FIFO used to hang it here for good.
      h = await host(home);
      const r = await cliAsync(home, ['chat', '-m', 'again', '--json', '--timeout', '20']);
      expect(r.stdout + r.stderr).toMatch(/outbound\.db of session .* is not a plain file/);
      expect(cli(home, ['sessions', 'list', '--json']).code).toBe(0);
      expect(h.child.exitCode).toBeNull();
    }, 60_000);
  }
});

describe('a sandbox that replaced a folder of its session with a file', () => {
  it('outbox/: the host still starts, and the session answers again', async () => {
    const home = tempHome();
    homes.push(home);
    let h = await host(home);
    expect(cli(home, ['chat', '-m', 'hello', '--json']).json.result.replies[0].text).toBe('echo: hello');
    const s = cli(home, ['sessions', 'list', '--json']).json.result[0] as { id: string; group: string };
    await h.stop();
    const outbox = path.join(home, 'sessions', s.group, s.id, 'outbox');
    fs.rmSync(outbox, { recursive: true, force: true });
    fs.writeFileSync(outbox, 'not a folder'); // as `rm -r outbox && touch outbox` inside the sandbox
    h = await host(home); // refused to start at all: EEXIST from its recovery
    const r = await cliAsync(home, ['chat', '-m', 'again', '--json', '--timeout', '20']);
    expect(r.json?.result?.replies?.[0]?.text, r.stderr).toBe('echo: again');
    expect(fs.statSync(outbox).isDirectory()).toBe(true);
    expect(h.child.exitCode).toBeNull();
  }, 60_000);
});

/**
 * End to end through the real CLI, a real host process and real bubblewrap sandboxes running
 * the mock provider.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  BASE_ENV,
  cli,
  cliAsync,
  MAIN,
  startHostProc,
  tempHome,
  waitFor,
  type HostProc,
} from './support/cli.js';
import { mock } from './support/meta.js';

describe('terminal chat through a bwrap sandbox', () => {
  let home: string;
  let host: HostProc;
  const env = { POLYCLAW_RETRY_BASE_MS: '100', POLYCLAW_LOG_LEVEL: 'warn' };

  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, env);
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('answers `polyclaw chat -m hello --json` from a runner inside bubblewrap', async () => {
    const r = cli(home, ['chat', '-m', 'hello', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      result: { status: 'completed', replies: [{ text: 'echo: hello', seq: 1 }] },
    });
    const sessions = cli(home, ['sessions', 'list', '--json']).json.result;
    expect(sessions).toHaveLength(1);
    const pid = sessions[0].sandbox.pid as number;
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.some((a) => a.endsWith('bwrap'))).toBe(true);
    expect(cmdline).toContain('--unshare-net');
  });

  it('refuses a second host on the same POLYCLAW_HOME', () => {
    const r = cli(home, ['up']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already running/);
  });

  it('streams deltas into one reply and strips <internal> spans', () => {
    const r = cli(home, [
      'chat',
      '-m',
      mock({ deltas: ['Hel', 'lo <internal>secret plan</internal>', 'world'] }),
      '--json',
    ]);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['Hello world']);
  });

  it('tells the user when the agent fails, and exits non-zero', () => {
    const r = cli(home, ['chat', '-m', mock({ fail: { message: 'the model refused' } }), '--json']);
    expect(r.code).toBe(1);
    expect(r.json.result.status).toBe('failed');
    expect(r.json.result.replies[0].text).toMatch(/could not process your message: the model refused/);
    expect(r.json.result.replies[0].kind).toBe('notice');
    expect(r.json).toMatchObject({
      ok: false,
      error: {
        code: 'failed',
        message: expect.stringMatching(/could not process your message: the model refused/),
      },
    });
    const plain = cli(home, ['chat', '-m', mock({ fail: { message: 'the model refused' } })]);
    expect(plain.code).toBe(1);
    expect(plain.stderr.trim()).toBe('polyclaw: the message failed (the reply above says why)');
  });

  it('a wiring added with only its required flags answers every message (pattern .*), as its usage says', () => {
    const add = cli(home, [
      'wirings',
      'add',
      '--group',
      'main',
      '--channel',
      'terminal',
      '--platform-id',
      'open',
      '--json',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.json.result).toMatchObject({ engageMode: 'pattern', pattern: '.*' });
    expect(cli(home, ['chat', '--group', 'open', '-m', 'anything']).stdout).toContain('echo: anything');
  });

  it('a message no wiring of a wired chat takes says to check the wiring, not to create a group', () => {
    expect(
      cli(home, [
        'wirings',
        'add',
        '--group',
        'main',
        '--channel',
        'terminal',
        '--platform-id',
        'picky',
        '--pattern',
        '^!',
      ]).code,
    ).toBe(0);
    const r = cli(home, ['chat', '--group', 'picky', '-m', 'no bang']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'polyclaw: no wiring of the terminal chat "picky" took this message (see its --engage and --pattern: polyclaw wirings list)',
    );
    expect(cli(home, ['chat', '--group', '../x', '-m', 'x']).stderr.trim()).toBe(
      'polyclaw: no agent group answers the terminal chat "../x" (group names are lowercase letters, digits, "-" and "_")',
    );
    expect(cli(home, ['chat', '--group', ' ', '-m', 'x']).stderr.trim()).toBe(
      'polyclaw: --group is empty: give the name of a group',
    );
  });

  it('piped chat to a group that does not exist says so and exits non-zero at once', async () => {
    const t0 = Date.now();
    const r = await cliAsync(home, ['chat', '--group', 'nope'], {}, 'hi\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no agent group/);
    expect(Date.now() - t0).toBeLessThan(20_000); // it waited 300 s
  }, 30_000);

  it('a chat line over the size limit is refused alone; the lines after it are still answered', async () => {
    const long = 'x'.repeat(100_001);
    const r = await cliAsync(home, ['chat'], {}, `${long}\nafter the long one\n`);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('polyclaw: message is 100001 characters long; at most 100000; not sent');
    expect(r.stdout).toContain('after the long one');
    const one = cli(home, ['chat', '-m', long]);
    expect([one.code, one.stderr.trim().split('\n').length]).toEqual([2, 1]);
    const j = cli(home, ['chat', '--json']);
    expect([j.code, j.stderr.trim()]).toEqual([
      2,
      'polyclaw: --json goes with -m TEXT (the interactive chat prints text for a person)',
    ]);
    const t = cli(home, ['chat', '-m', 'hi', '--timeout', '3000000']);
    expect([t.code, t.stderr.trim()]).toEqual([
      2,
      'polyclaw: --timeout is at most 2147483 seconds (about 24.8 days)',
    ]);
  }, 30_000);

  it('deleting a group the host has served leaves the host serving the others', () => {
    expect(cli(home, ['groups', 'create', 'gone', '--provider', 'mock']).code).toBe(0);
    expect(cli(home, ['chat', '--group', 'gone', '-m', 'hi', '--json']).json.result.status).toBe('completed');
    const del = cli(home, ['groups', 'delete', 'gone', '--json']);
    expect(del.json.result).toMatchObject({ deleted: 'gone', sessions: 1 });
    // Every group is republished after an update: the deleted group's session must not be among them.
    const up = cli(home, ['groups', 'update', 'main', '--timezone', 'UTC']);
    expect([up.code, up.stderr]).toEqual([0, '']);
    expect(cli(home, ['chat', '-m', 'still here', '--json']).json.result.replies[0].text).toMatch(
      /still here/,
    );
  });

  it('retries a retryable failure and then answers', () => {
    const r = cli(home, [
      'chat',
      '-m',
      mock({ reply: 'ok on attempt {{attempt}}', fail: { message: 'flaky', retryable: true, attempts: 2 } }),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['ok on attempt 2']);
  });

  it('a runner that crashes on every attempt ends failed after the retries, with a notice', () => {
    const r = cli(home, ['chat', '-m', mock({ exit: 3 }), '--json']);
    expect(r.code).toBe(1);
    expect(r.json.result.status).toBe('failed');
    expect(r.json.result.replies).toHaveLength(1);
    expect(r.json.result.replies[0].text).toMatch(/sandbox stopped during the turn/);
  });

  it('keeps the conversation across turns and /clear starts a fresh one', () => {
    const turn = (t: string) =>
      cli(home, ['chat', '-m', mock({ reply: 'turn {{turn}}' }, t), '--json']).json.result.replies[0].text;
    const a = turn('one');
    const b = turn('two');
    expect(Number(b.split(' ')[1])).toBe(Number(a.split(' ')[1]) + 1);
    const c = cli(home, ['chat', '-m', '/clear', '--json']);
    expect(c.json.result.replies[0].text).toMatch(/Session cleared/);
    expect(turn('three')).toBe('turn 1');
  });

  it('a stored session the provider no longer knows is replaced by a fresh one, message kept', () => {
    cli(home, ['chat', '-m', mock({ reply: 'bye', invalidateSession: true }), '--json']);
    const r = cli(home, ['chat', '-m', mock({ reply: 'fresh turn {{turn}} resumed={{resumed}}' }), '--json']);
    expect(r.json.result.replies[0].text).toBe('fresh turn 1 resumed=false');
  });

  it('pushes a follow-up sent during a turn into the open query', async () => {
    const slow = cliAsync(home, ['chat', '-m', mock({ delayMs: 2500, reply: 'slow done' }), '--json']);
    await waitFor(
      () =>
        (cli(home, [
          'sessions',
          'show',
          cli(home, ['sessions', 'list', '--json']).json.result[0].id,
          '--json',
        ]).json?.result.pending ?? 0) > 0,
      5000,
      'first message pending',
    );
    const fast = cli(home, [
      'chat',
      '-m',
      mock({ reply: 'prompt {{prompt}} of this query' }, 'follow-up'),
      '--json',
    ]);
    const first = await slow;
    expect(first.json.result.replies[0].text).toBe('slow done');
    expect(fast.json.result.replies[0].text).toBe('prompt 2 of this query');
  });

  it('interactive chat: lines in, replies out, /quit leaves', async () => {
    const child = spawn(process.execPath, [MAIN, 'chat'], { env: { ...BASE_ENV, POLYCLAW_HOME: home } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.write('first line\n');
    await waitFor(() => out.includes('main> echo: first line'), 10_000, 'first reply');
    child.stdin.write('second line\n');
    await waitFor(() => out.includes('main> echo: second line'), 10_000, 'second reply');
    child.stdin.write('/quit\n');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
  });

  it('rejects an empty message with a one-line error', () => {
    const r = cli(home, ['chat', '-m', '  ']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

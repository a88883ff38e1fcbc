/**
 * `groups update` through a real host: a change to the settings a sandbox was built from
 * (model, …) retires the warm sandbox so the next turn runs in a new one, never cutting a turn
 * short; a change the runner re-reads per query (assistant name) keeps the warm one.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, processAlive, startHostProc, tempHome, type HostProc } from './support/cli.js';
import { mock } from './support/meta.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('groups update and warm sandboxes', () => {
  let home: string;
  let host: HostProc;

  beforeAll(async () => {
    home = tempHome();
    // A long idle timeout: any stop seen here is a retirement, not an idle stop.
    host = await startHostProc(home, { POLYCLAW_IDLE_TIMEOUT_MS: '600000', POLYCLAW_LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const sandboxPid = async (): Promise<number | null> => {
    const r = await cliAsync(home, ['sessions', 'list', '--group', 'main', '--json']);
    return (r.json.result[0]?.sandbox?.pid as number | undefined) ?? null;
  };
  const chat = async (message: string): Promise<string> => {
    const r = await cliAsync(home, ['chat', '-m', message, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return r.json.result.replies[0].text as string;
  };
  const update = async (...args: string[]) => {
    const r = await cliAsync(home, ['groups', 'update', 'main', ...args]);
    expect(r.code, r.stderr).toBe(0);
  };

  it('keeps the warm sandbox on an assistant-name change, restarts it on a model change', async () => {
    expect(await chat('hello')).toBe('echo: hello');
    const first = await poll(sandboxPid, 5000, 'a sandbox');

    await update('--assistant-name', 'Robin');
    await sleep(600); // longer than the retirement recheck
    expect(await sandboxPid()).toBe(first);
    expect(await chat('still warm')).toBe('echo: still warm');
    expect(await sandboxPid()).toBe(first);

    await update('--model', 'other');
    await poll(async () => (await sandboxPid()) !== first, 5000, 'the old sandbox to stop');
    expect(processAlive(first)).toBe(false);
    // The conversation goes on in a new sandbox that started with the new settings.
    expect(await chat(mock({ reply: 'turn {{turn}} resumed={{resumed}}' }))).toMatch(/resumed=true$/);
    const second = await poll(sandboxPid, 5000, 'a new sandbox');
    expect(second).not.toBe(first);
    expect(processAlive(second)).toBe(true);
  });

  it('a change during a turn lets the turn finish in the old sandbox, then restarts it', async () => {
    const before = await poll(sandboxPid, 5000, 'a warm sandbox');
    const turn = cliAsync(home, [
      'chat',
      '-m',
      // Long enough to outlast three CLI calls and two pauses on a loaded machine.
      mock({ delayMs: 5000, reply: 'attempt {{attempt}}' }),
      '--json',
    ]);
    // The message is queued for the warm sandbox (which the doorbell wakes at once).
    await poll(
      async () => {
        const list = await cliAsync(home, ['sessions', 'list', '--group', 'main', '--json']);
        const show = await cliAsync(home, ['sessions', 'show', list.json.result[0].id, '--json']);
        return show.json.result.pending > 0;
      },
      10_000,
      'the turn in flight',
    );
    await update('--model', 'third');
    await sleep(700); // several retirement rechecks, all while busy
    expect(await sandboxPid()).toBe(before);
    const r = await turn;
    expect(r.code, r.stderr).toBe(0);
    // Answered on the first attempt: the sandbox was not stopped mid-turn.
    expect(r.json.result.replies[0].text).toBe('attempt 1');
    await poll(async () => (await sandboxPid()) !== before, 5000, 'the retired sandbox to stop');
    expect(processAlive(before)).toBe(false);
    expect(await chat('after')).toBe('echo: after');
    expect(await sandboxPid()).not.toBe(before);
  });
});

/**
 * Early start end to end (src/shared/runner-hint.ts): a real host, a warm bwrap sandbox running
 * the mock provider, and a message whose inbound commit fails after the runner was told of it.
 * The mock answers without a model call, so its runner may well have written a reply before
 * the commit failed: the sender must hear the failure, never that reply.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, processAlive, startHostProc, tempHome, waitFor, type HostProc } from './support/cli.js';

let home = '';
let host: HostProc | null = null;
afterEach(async () => {
  await host?.stop();
  host = null;
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

function onlySession(h: string) {
  return cli(h, ['sessions', 'list', '--json']).json.result[0] as {
    id: string;
    group: string;
    sandbox: { pid: number } | null;
  };
}

describe('early start', () => {
  it('a told message whose commit fails: the sender hears it, the sandbox stops, no reply to it is ever delivered', async () => {
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn' });
    const warm = cli(home, ['chat', '-m', 'warm', '--json']);
    expect(warm.json.result.replies.map((r: { text: string }) => r.text)).toEqual(['echo: warm']);
    const s = onlySession(home);
    const pid = s.sandbox!.pid;
    // Settled: the next message is the whole batch, so the warm runner is told of it early.
    await waitFor(
      () => cli(home, ['sessions', 'show', s.id, '--json']).json.result.pending === 0,
      10_000,
      'settled',
    );

    const inbound = new Database(path.join(home, 'sessions', s.group, s.id, 'inbound.db'));
    inbound.exec(
      `CREATE TRIGGER refuse BEFORE INSERT ON messages_in BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;`,
    );
    const doomed = cli(home, ['chat', '-m', 'doomed', '--json', '--timeout', '5']);
    expect(doomed.code).not.toBe(0);
    expect(doomed.stdout + doomed.stderr).toMatch(/disk trouble/);
    await waitFor(() => !processAlive(pid), 5000, 'the told sandbox stopped');
    inbound.exec('DROP TRIGGER refuse');
    inbound.close();

    const again = cli(home, ['chat', '-m', 'again', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.result.replies.map((r: { text: string }) => r.text)).toEqual(['echo: again']);
    expect(again.json.result.backlog ?? []).toEqual([]);
    expect(onlySession(home).sandbox?.pid).not.toBe(pid);
  });
});

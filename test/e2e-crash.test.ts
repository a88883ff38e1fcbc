/**
 * No silent loss: kill -9 of the host or of a sandbox at awkward moments, with real
 * processes, real bwrap and the real queues on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RunnerQueue } from '../src/runner/session-io.js';
import {
  cli,
  cliAsync,
  hostsPerTest,
  processAlive,
  tempHome,
  waitFor,
  type HostProc,
} from './support/cli.js';
import { mock } from './support/meta.js';

// Info: the host's log is kept in memory and shown only when a wait times out (turnStarted).
const env = { POLYCLAW_RETRY_BASE_MS: '100', POLYCLAW_LOG_LEVEL: 'info' };

const { homes, host } = hostsPerTest(env);

function ackStatus(home: string, s: { id: string; group: string }): string | null {
  const file = path.join(home, 'sessions', s.group, s.id, 'outbound.db');
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { readonly: true });
  try {
    const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'acks'`).get();
    if (!has) return null;
    const row = db.prepare('SELECT status FROM acks ORDER BY updated_at DESC LIMIT 1').get() as
      { status: string } | undefined;
    return row?.status ?? null;
  } finally {
    db.close();
  }
}

/** The mock agent records each attempt before it works on it. */
function mockStarted(home: string): boolean {
  const file = path.join(home, 'groups', 'main', '.mock-state.json');
  if (!fs.existsSync(file)) return false;
  try {
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as { attempts: Record<string, number> };
    return Object.values(state.attempts).some((n) => n >= 1);
  } catch {
    return false; // caught mid-rename: not yet
  }
}

function onlySession(home: string) {
  const list = cli(home, ['sessions', 'list', '--json']).json.result;
  return list[0] as { id: string; group: string; sandbox: { pid: number } | null };
}

/**
 * Wait until the runner has taken the message and the agent (mock) has started on it. On a
 * timeout the error carries what was seen and the host's log, to tell a slow start from a stuck one.
 */
async function turnStarted(h: HostProc, home: string, s: { id: string; group: string }): Promise<void> {
  try {
    await waitFor(() => ackStatus(home, s) === 'processing' && mockStarted(home), 20_000, 'turn started');
  } catch (err) {
    const seen = `ack ${ackStatus(home, s)}, agent started ${mockStarted(home)}`;
    throw new Error(`${(err as Error).message} (${seen}); host log:\n${h.stderr().slice(-3000)}`, {
      cause: err,
    });
  }
}

describe('kill -9', () => {
  it('of the host mid-turn: after restart the message is answered exactly once', async () => {
    const home = tempHome();
    homes.push(home);
    const h1 = await host(home);
    const chat = cliAsync(home, [
      'chat',
      '-m',
      mock({ delayMs: 1500, reply: 'answer after {{attempt}} attempts' }),
      '--json',
    ]);
    const s = await waitFor(() => onlySession(home)?.sandbox && onlySession(home), 10_000, 'sandbox running');
    // Kill mid-turn: the runner has taken the message and the agent (mock) has started on it.
    await turnStarted(h1, home, s);
    await h1.kill9();
    const lost = await chat;
    expect(lost.code).toBe(1);
    // The sandbox dies with its host (no orphan keeps running the turn).
    await waitFor(() => !processAlive(s.sandbox!.pid), 5000, 'sandbox gone');

    await host(home);
    // The reply waits in the terminal mailbox; the next chat client receives it as backlog.
    await waitFor(
      () => cli(home, ['sessions', 'show', s.id, '--json']).json.result.pending === 0,
      15_000,
      'message settled',
    );
    const next = cli(home, ['chat', '-m', 'hello again', '--json']);
    expect(next.json.result.backlog.map((r: { text: string }) => r.text)).toEqual([
      'answer after 2 attempts',
    ]);
    expect(next.json.result.replies.map((r: { text: string }) => r.text)).toEqual(['echo: hello again']);
  }, 60_000);

  it('of the host after the runner wrote the reply but before delivery: delivered once after restart', async () => {
    const home = tempHome();
    homes.push(home);
    const h1 = await host(home);
    const chat = cliAsync(home, ['chat', '-m', mock({ delayMs: 60_000 }), '--json']);
    const s = await waitFor(() => onlySession(home)?.sandbox && onlySession(home), 10_000, 'sandbox running');
    await h1.kill9();
    await chat;
    // Play the runner's last commit while no host runs: the reply and its ack, in one transaction.
    const dir = path.join(home, 'sessions', s.group, s.id);
    const q = new RunnerQueue(dir);
    // The runner had acked 'processing' for this try; it now completes it.
    const msg = q.inbound
      .prepare(`SELECT id, tries, routing FROM messages_in WHERE status = 'pending'`)
      .get() as { id: string; tries: number; routing: string };
    expect(msg).toBeDefined();
    q.commit(
      [
        {
          kind: 'message',
          inReplyTo: msg.id,
          routing: JSON.parse(msg.routing),
          content: { text: 'written just before the crash' },
        },
      ],
      [msg],
    );
    q.close();

    await host(home);
    await waitFor(
      () => cli(home, ['sessions', 'show', s.id, '--json']).json.result.pending === 0,
      15_000,
      'message settled',
    );
    const first = cli(home, ['chat', '-m', 'next', '--json']);
    expect(first.json.result.backlog.map((r: { text: string }) => r.text)).toEqual([
      'written just before the crash',
    ]);
    const second = cli(home, ['chat', '-m', 'and again', '--json']);
    expect(second.json.result.backlog).toEqual([]);
  });

  it('of the sandbox mid-turn: the message is retried in a new sandbox and answered', async () => {
    const home = tempHome();
    homes.push(home);
    const h = await host(home);
    const chat = cliAsync(home, [
      'chat',
      '-m',
      mock({ delayMs: 1200, reply: 'survived, attempt {{attempt}}' }),
      '--json',
    ]);
    const s = await waitFor(() => onlySession(home)?.sandbox && onlySession(home), 10_000, 'sandbox running');
    await turnStarted(h, home, s);
    process.kill(s.sandbox!.pid, 'SIGKILL');
    const r = await chat;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.result.replies, JSON.stringify(r.json)).toHaveLength(1);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['survived, attempt 2']);
    const after = onlySession(home);
    expect(after.sandbox?.pid).not.toBe(s.sandbox!.pid);
  }, 60_000);
});

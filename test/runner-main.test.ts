/** The runner process's entry point, in-process, on a real session directory. */
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { runnerMain } from '../src/runner/main.js';
import { GROUP_FILE } from '../src/runner/providers/opencode-settings.js';
import { CodexConfigError } from '../src/runner/providers/codex-config.js';
import { ProviderConfigError } from '../src/shared/provider.js';
import { sessionMeta, TERMINAL } from './support/meta.js';
import { BASE_ENV, MAIN, tempHome, waitFor } from './support/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A session directory with its metadata for `provider`, and an agent folder beside it. */
function sessionHome(provider: string): { home: string; agentDir: string; host: SessionQueue } {
  const home = tempHome('polyclaw-runner-main-');
  dirs.push(home);
  const agentDir = path.join(home, 'agent');
  fs.mkdirSync(agentDir);
  const host = new SessionQueue(path.join(home, 'session'));
  host.setMeta(sessionMeta({ provider }), []);
  return { home, agentDir, host };
}

/**
 * `polyclaw runner` on that session, its stdin kept open as the host's pipe is. `exited` says
 * how it ended; a runner still alive after `killAfterMs` is killed (the signal then says so).
 */
function spawnRunner(
  host: SessionQueue,
  agentDir: string,
  env: Record<string, string> = {},
  killAfterMs = 5000,
) {
  const runner = spawn(process.execPath, [MAIN, 'runner'], {
    env: {
      ...BASE_ENV,
      POLYCLAW_LOG_LEVEL: 'error',
      POLYCLAW_SESSION_DIR: host.dir,
      POLYCLAW_AGENT_DIR: agentDir,
      POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
      ...env,
    },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  runner.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => runner.kill('SIGKILL'), killAfterMs);
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((r) =>
    runner.once('exit', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal, stderr });
    }),
  );
  return { runner, exited };
}

describe('runner entry point', () => {
  it('a provider refusing its configuration fails the due messages at once with its reason', async () => {
    const home = tempHome('polyclaw-runner-main-');
    dirs.push(home);
    const agentDir = path.join(home, 'agent');
    fs.mkdirSync(agentDir);
    // A setting OpenCode's provider refuses loudly (it moved to the group's policy).
    fs.writeFileSync(path.join(agentDir, GROUP_FILE), JSON.stringify({ approval: 'ask' }));
    const host = new SessionQueue(path.join(home, 'session'));
    host.setMeta(sessionMeta({ provider: 'opencode' }), []);
    const due = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing: TERMINAL,
      content: { text: 'hello', sender: { id: 'ann' }, attachments: [] },
    });
    const context = host.enqueue({
      kind: 'chat',
      trigger: false,
      routing: TERMINAL,
      content: { text: 'just context', sender: { id: 'ann' }, attachments: [] },
    });
    try {
      const code = await runnerMain({
        POLYCLAW_SESSION_DIR: host.dir,
        POLYCLAW_AGENT_DIR: agentDir,
        POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
      });
      expect(code).toBe(1);
      const [ack] = host.acksFor([due.id]);
      expect(ack).toMatchObject({ status: 'failed', error: { retryable: false, classification: 'config' } });
      expect(ack!.error!.message).toMatch(/"approval" is no longer read from the group folder/);
      // A message that would not start a turn is left for the next one, unacked.
      expect(host.acksFor([context.id])).toEqual([]);
    } finally {
      host.close();
    }
  });

  it('a runner whose start fails closes its gateway listener and exits at once with a one-line error', async () => {
    // Not a configuration the provider refuses: a start error the runner cannot ack for.
    const { home, agentDir, host } = sessionHome('no-such-provider');
    host.close();
    const { exited } = spawnRunner(host, agentDir, {
      POLYCLAW_GATEWAY_SOCKET: path.join(home, 'gateway.sock'),
    });
    const { code, signal, stderr } = await exited;
    expect(signal).toBeNull(); // exited by itself, not killed by the timer
    expect(code).toBeGreaterThan(0);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^polyclaw: .*no-such-provider/)]);
  });

  it('a runner whose loop fails (its outbound.db locked past the busy wait) exits with a one-line error instead of lingering idle', async () => {
    // A live runner that does nothing keeps its sandbox "busy": the host would neither stop it
    // nor count the attempt, and the message would wait, untold, until the host restarted.
    const { agentDir, host } = sessionHome('mock');
    const { runner, exited } = spawnRunner(host, agentDir, {}, 15_000);
    const lock = await waitFor(() => {
      const file = path.join(host.dir, 'outbound.db');
      return fs.existsSync(file) ? new Database(file) : null;
    }, 5000);
    try {
      lock.exec('BEGIN IMMEDIATE');
      host.enqueue({
        kind: 'chat',
        trigger: true,
        routing: TERMINAL,
        content: { text: 'hello', attachments: [] },
      });
      const { code, signal, stderr } = await exited;
      expect(signal).toBeNull(); // exited by itself, not killed by the timer
      expect(code).toBeGreaterThan(0);
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^polyclaw: database is locked/)]);
    } finally {
      lock.close();
      host.close();
      runner.kill('SIGKILL');
    }
  }, 30_000);

  it('a group file the agent broke (not JSON) fails the due messages at once, naming the file', async () => {
    const { agentDir, host } = sessionHome('opencode');
    fs.writeFileSync(path.join(agentDir, GROUP_FILE), '{'); // the agent can write its folder
    const due = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing: TERMINAL,
      content: { text: 'hello', sender: { id: 'ann' }, attachments: [] },
    });
    try {
      const { code } = await spawnRunner(host, agentDir).exited;
      expect(code).toBe(1);
      const [ack] = host.acksFor([due.id]);
      expect(ack).toMatchObject({ status: 'failed', error: { retryable: false, classification: 'config' } });
      expect(ack!.error!.message).toMatch(
        new RegExp(`^${GROUP_FILE.replace('.', '\\.')} is not valid JSON: `),
      );
    } finally {
      host.close();
    }
  });

  it('the providers’ configuration errors are ProviderConfigErrors', () => {
    expect(new CodexConfigError('x')).toBeInstanceOf(ProviderConfigError);
  });
});

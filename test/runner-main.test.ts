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
    const home = tempHome('polyclaw-runner-main-');
    dirs.push(home);
    const agentDir = path.join(home, 'agent');
    fs.mkdirSync(agentDir);
    const host = new SessionQueue(path.join(home, 'session'));
    // Not a configuration the provider refuses: a start error the runner cannot ack for.
    host.setMeta(sessionMeta({ provider: 'no-such-provider' }), []);
    host.close();
    const runner = spawn(process.execPath, [MAIN, 'runner'], {
      env: {
        ...BASE_ENV,
        POLYCLAW_LOG_LEVEL: 'error',
        POLYCLAW_SESSION_DIR: path.join(home, 'session'),
        POLYCLAW_AGENT_DIR: agentDir,
        POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
        POLYCLAW_GATEWAY_SOCKET: path.join(home, 'gateway.sock'),
      },
      stdio: ['pipe', 'ignore', 'pipe'], // stdin stays open, as the host's pipe does
    });
    let stderr = '';
    runner.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => runner.kill('SIGKILL'), 5000);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
      runner.once('exit', (c, s) => r([c, s])),
    );
    clearTimeout(timer);
    expect(signal).toBeNull(); // exited by itself, not killed by the timer
    expect(code).toBeGreaterThan(0);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^polyclaw: .*no-such-provider/)]);
  });

  it('a runner whose loop fails (its outbound.db locked past the busy wait) exits with a one-line error instead of lingering idle', async () => {
    // A live runner that does nothing keeps its sandbox "busy": the host would neither stop it
    // nor count the attempt, and the message would wait, untold, until the host restarted.
    const home = tempHome('polyclaw-runner-main-');
    dirs.push(home);
    const agentDir = path.join(home, 'agent');
    fs.mkdirSync(agentDir);
    const host = new SessionQueue(path.join(home, 'session'));
    host.setMeta(sessionMeta({ provider: 'mock' }), []);
    const runner = spawn(process.execPath, [MAIN, 'runner'], {
      env: {
        ...BASE_ENV,
        POLYCLAW_LOG_LEVEL: 'error',
        POLYCLAW_SESSION_DIR: host.dir,
        POLYCLAW_AGENT_DIR: agentDir,
        POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
      },
      stdio: ['pipe', 'ignore', 'pipe'], // stdin stays open, as the host's pipe does
    });
    let stderr = '';
    runner.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<[number | null, string | null]>((r) => runner.once('exit', (c, sig) => r([c, sig])));
    const lock = await waitFor(() => {
      const file = path.join(host.dir, 'outbound.db');
      return fs.existsSync(file) ? new Database(file) : null;
    }, 5000);
    try {
      lock.exec('BEGIN IMMEDIATE');
      host.enqueue({ kind: 'chat', trigger: true, routing: TERMINAL, content: { text: 'hello', attachments: [] } });
      const timer = setTimeout(() => runner.kill('SIGKILL'), 15_000);
      const [code, signal] = await exited;
      clearTimeout(timer);
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
    const home = tempHome('polyclaw-runner-main-');
    dirs.push(home);
    const agentDir = path.join(home, 'agent');
    fs.mkdirSync(agentDir);
    fs.writeFileSync(path.join(agentDir, GROUP_FILE), '{'); // the agent can write its folder
    const host = new SessionQueue(path.join(home, 'session'));
    host.setMeta(sessionMeta({ provider: 'opencode' }), []);
    const due = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing: TERMINAL,
      content: { text: 'hello', sender: { id: 'ann' }, attachments: [] },
    });
    try {
      const runner = spawn(process.execPath, [MAIN, 'runner'], {
        env: {
          ...BASE_ENV,
          POLYCLAW_LOG_LEVEL: 'error',
          POLYCLAW_SESSION_DIR: host.dir,
          POLYCLAW_AGENT_DIR: agentDir,
          POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
        },
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      const timer = setTimeout(() => runner.kill('SIGKILL'), 5000);
      const code = await new Promise<number | null>((r) => runner.once('exit', (c) => r(c)));
      clearTimeout(timer);
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

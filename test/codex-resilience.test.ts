/**
 * The codex provider under upstream trouble, with the REAL `codex app-server` binary: a model
 * stream cut mid-answer and a model endpoint that refuses connections must both end the message
 * with a retryable error, promptly, so the host retries it instead of failing it or waiting.
 * A group's MCP server named like our own tool server must not fail every message either.
 * A follow-up queued behind a timed-out turn must not start on the process given up on.
 * CODEX_HOME lives under the repo's .test-tmp, never under /tmp (FINDINGS §A).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryLogger, type Logger } from '../src/shared/log.js';
import { mcpServersEnv } from '../src/shared/mcp.js';
import type { ProviderEvent } from '../src/shared/provider.js';
import { MAIN } from './support/cli.js';
import { answers, codexKit, codexProvider } from './support/codex-kit.js';
import { writeEchoMcpServer } from './support/echo-mcp.js';
import { lastUserText } from './support/fake-responses.js';

/** A 127.0.0.1 port nothing listens on: bound by us, then released. */
async function refusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('codex provider under upstream trouble (real codex app-server)', () => {
  const kit = codexKit('codex-resilience');
  const mkAgent = (name: string) => kit.mkAgent(name);
  const mk = (dir: string, gatewayUrl: string, env: Record<string, string> = {}, log?: Logger) =>
    codexProvider(dir, { gatewayUrl, env, log });

  it('a model stream cut mid-answer ends the message with a retryable error; the retry is answered', async () => {
    const dir = mkAgent('cut');
    const p = mk(dir, kit.fake.url);
    const cwd = path.join(dir, 'agent');
    try {
      kit.fake.script({ text: 'partial', deltas: ['par', 'tial'], cut: true });
      const ev = await answers(p.query({ prompt: 'hi', cwd, systemContext: '' }));
      expect(ev.at(-1)).toMatchObject({ type: 'error', retryable: true, classification: 'crash' });
      expect((ev.at(-1) as { message: string }).message).toMatch(/stream disconnected/);
      const thread = (ev.find((e) => e.type === 'init') as { continuation: string }).continuation;
      kit.fake.script({ text: 'whole answer' });
      const again = await answers(p.query({ prompt: 'hi', cwd, systemContext: '', continuation: thread }));
      expect(again.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'whole answer' }]);
    } finally {
      await p.close();
    }
  }, 40_000);

  it('a model endpoint refusing connections ends the message with a retryable error within seconds', async () => {
    // codex's default (unbounded_connection_retries) retried for ever, each retry notice
    // restarting our idle timer: the message hung until the 2 h turn cap. 20 s is generous.
    const dir = mkAgent('refused');
    const p = mk(dir, `http://127.0.0.1:${await refusedPort()}`);
    const q = p.query({ prompt: 'hi', cwd: path.join(dir, 'agent'), systemContext: '' });
    const t0 = Date.now();
    const deadline = setTimeout(() => q.abort(), 20_000);
    try {
      const ev = await answers(q);
      const elapsed = Date.now() - t0;
      expect(ev.at(-1)).toMatchObject({ type: 'error', retryable: true });
      expect(ev.at(-1)).not.toMatchObject({ classification: 'timeout' });
      expect(elapsed).toBeLessThan(20_000);
    } finally {
      clearTimeout(deadline);
      await p.close();
    }
  }, 40_000);

  it('a follow-up queued behind a timed-out turn fails as a retryable timeout, never started on that process', async () => {
    // Codex answers turn/interrupt, then the old turn's turn/completed {interrupted}, and only
    // then a turn/start sent right after: a follow-up started there took that completion as its
    // own ("interrupted", not retryable) and its own answer was dropped.
    const dir = mkAgent('after-timeout');
    const cwd = path.join(dir, 'agent');
    const p = mk(dir, kit.fake.url, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '3000' });
    kit.fake.script({ hang: true }, { text: 'answer to second' });
    const q = p.query({ prompt: 'first', cwd, systemContext: '' });
    const deadline = setTimeout(() => q.abort(), 25_000);
    try {
      const ends: ProviderEvent[] = [];
      let thread = '';
      for await (const e of q.events) {
        if (e.type === 'init') thread = e.continuation;
        if (e.type !== 'result' && e.type !== 'error') continue;
        ends.push(e);
        // A follow-up the runner had already taken when the first answer (the timeout) came.
        if (ends.length === 1) q.push('second');
        else q.end();
      }
      expect(ends).toHaveLength(2);
      expect(ends[0]).toMatchObject({ type: 'error', retryable: true, classification: 'timeout' });
      expect(ends[1]).toMatchObject({ type: 'error', retryable: true, classification: 'timeout' });
      expect(kit.fake.requests.some((r) => lastUserText(r.body) === 'second')).toBe(false);
      // The host's retry runs on a fresh process, in the same thread.
      kit.fake.script({ text: 'answer to second' });
      const again = await answers(
        p.query({ prompt: 'second', cwd, systemContext: '', continuation: thread }),
      );
      expect(again.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([
        { type: 'result', text: 'answer to second' },
      ]);
    } finally {
      clearTimeout(deadline);
      await p.close();
    }
  }, 60_000);

  it('a group MCP server named like our tool server is left out (and logged); messages are still answered', async () => {
    const dir = mkAgent('name-clash');
    const log = memoryLogger();
    const group = [
      { name: 'polyclaw', command: '/bin/false', args: ['impostor'] },
      { name: 'echo', command: process.execPath, args: [writeEchoMcpServer(dir)] },
    ];
    const p = mk(dir, kit.fake.url, mcpServersEnv(group), log);
    try {
      kit.fake.script({ text: 'still here' });
      const ev = await answers(p.query({ prompt: 'hi', cwd: path.join(dir, 'agent'), systemContext: '' }));
      expect(ev.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([
        { type: 'result', text: 'still here' },
      ]);
      const toml = fs.readFileSync(path.join(dir, 'agent/.codex/config.toml'), 'utf8');
      expect(toml.match(/^\[mcp_servers\.polyclaw\]$/gm)).toHaveLength(1);
      expect(toml).toContain(`args = ["${MAIN}", "tools"]`);
      expect(toml).not.toContain('impostor');
      expect(toml).toContain('[mcp_servers.echo]');
      expect(log.lines.some((l) => l.level === 'warn' && /polyclaw/.test(JSON.stringify(l)))).toBe(true);
    } finally {
      await p.close();
    }
  }, 40_000);
});

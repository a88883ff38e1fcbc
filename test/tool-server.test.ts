/** The tool server as agents launch it: `polyclaw tools` over stdio, stdout carrying MCP only. */
import fs from 'node:fs';
import path from 'node:path';
import { sessionMeta } from './support/meta.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { McpToolsClient } from '../src/runner/providers/mcp-tools-client.js';
import { toolServer, forClaude, forOpencode } from '../src/runner/tools/config.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { MAIN, tempHome, waitFor } from './support/cli.js';

describe('polyclaw tools (stdio MCP server)', () => {
  let dir: string;
  let host: SessionQueue;
  let client: McpToolsClient;
  const routing = { channelType: 'terminal', platformId: 'main', threadId: null };

  beforeAll(() => {
    dir = tempHome('polyclaw-tools-');
    host = new SessionQueue(path.join(dir, 'session'));
    host.setMeta(sessionMeta({ assistantName: 'A', defaultRouting: routing }), [
      { name: 'team', kind: 'chat', routing: { channelType: 'slack', platformId: 'C1', threadId: null } },
    ]);
    fs.mkdirSync(path.join(dir, 'agent'));
    client = new McpToolsClient({
      ...toolServer({ sessionDir: host.dir, agentDir: path.join(dir, 'agent') }),
      args: [MAIN, 'tools'],
    });
  });
  afterAll(async () => {
    await client.close();
    host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists every tool over real MCP', async () => {
    const names = await client.listTools();
    expect(names).toContain('send_message');
    expect(names).toContain('ask_user_question');
    expect(names).toHaveLength(13);
  });

  it('writes rows that reply to the running turn, even from another process', async () => {
    const m = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'hi', attachments: [] },
    });
    const runner = new RunnerQueue(host.dir);
    runner.setTurn({ messageId: m.id, routing });
    const r = await client.call('send_message', { text: 'to the team', to: 'team' });
    expect(r).toEqual({ isError: false, text: 'Sent as message seq 1 to team.' });
    expect(host.outboundSince(0)).toMatchObject([
      { seq: 1, inReplyTo: m.id, routing: { channelType: 'slack', platformId: 'C1' } },
    ]);
    runner.close();
  });

  it('returns schema violations as tool errors without writing anything', async () => {
    const r = await client.call('send_message', { to: 'team' });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/text/);
    expect(host.outboundSince(1)).toEqual([]);
  });

  it('exposes its launch config in the shapes Claude and OpenCode expect', () => {
    const s = toolServer({
      sessionDir: '/workspace/session',
      agentDir: '/workspace/agent',
      nodePath: '/usr/bin/node',
      cliPath: '/app/dist/cli/main.js',
    });
    expect(forClaude(s)).toEqual({
      polyclaw: {
        type: 'stdio',
        command: '/usr/bin/node',
        args: ['/app/dist/cli/main.js', 'tools'],
        env: { POLYCLAW_SESSION_DIR: '/workspace/session', POLYCLAW_AGENT_DIR: '/workspace/agent' },
      },
    });
    expect(forOpencode(s).polyclaw?.command).toEqual(['/usr/bin/node', '/app/dist/cli/main.js', 'tools']);
  });
});

describe('tool context', () => {
  it('keeps the heartbeat going while a question waits for a person (the host would kill a silent turn)', async () => {
    const home = tempHome();
    const host = new SessionQueue(path.join(home, 'session'));
    host.setMeta(sessionMeta(), []);
    const { queueContext } = await import('../src/runner/tools/context.js');
    const { createLogger } = await import('../src/shared/log.js');
    const ctx = queueContext({ sessionDir: host.dir, agentDir: home, log: createLogger({ level: 'error' }) });
    const runner = new RunnerQueue(host.dir);
    try {
      const t0 = Date.now();
      expect(await ctx.waitForAnswer('q1', t0 + 2300)).toBeNull();
      // Beats at the start and after each 2 s wait: the last one is at least 2 s after the start.
      expect(Number(runner.getState('heartbeat'))).toBeGreaterThanOrEqual(t0 + 2000);
    } finally {
      ctx.close();
      runner.close();
      host.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
  it('ask_user_question hears at once that its question could not be shown, with the reason', async () => {
    const home = tempHome();
    const host = new SessionQueue(path.join(home, 'session'));
    host.setMeta(
      sessionMeta({ defaultRouting: { channelType: 'terminal', platformId: 'main', threadId: null } }),
      [],
    );
    const { queueContext } = await import('../src/runner/tools/context.js');
    const { toolRegistry } = await import('../src/runner/tools/index.js');
    const { createLogger } = await import('../src/shared/log.js');
    const ctx = queueContext({ sessionDir: host.dir, agentDir: home, log: createLogger({ level: 'error' }) });
    try {
      const asking = Promise.resolve(
        toolRegistry
          .get('ask_user_question')
          .run({ question: 'Tea?', options: ['yes', 'no'], timeout: 600 } as never, ctx),
      ).then(String, (err: Error) => `error: ${err.message}`);
      const t0 = Date.now();
      while (!host.outboundSince(0).length) await new Promise((r) => setTimeout(r, 20));
      const { questionId } = host.outboundSince(0)[0]!.content.question!;
      host.enqueue({
        kind: 'answer',
        trigger: false,
        routing: { channelType: 'terminal', platformId: 'main', threadId: null },
        content: {
          text: '',
          attachments: [],
          answer: { questionId, text: '', undelivered: 'the chat is gone' },
        },
      });
      expect(await asking).toBe(
        'error: The question could not be shown to anyone: the chat is gone. Decide without it, or ask in a chat you may post to.',
      );
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      ctx.close();
      host.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
  it('a wait mark counts only in its own turn and before its deadline; a new runner voids the old ones', () => {
    const home = tempHome();
    const host = new SessionQueue(path.join(home, 'session'));
    let now = 1_000_000;
    const runner = new RunnerQueue(host.dir, () => now);
    try {
      const routing = { channelType: 'terminal', platformId: 'main', threadId: null };
      runner.setTurn({ messageId: 'm1', routing });
      runner.markWaiting('q1', now + 60_000, 'm1');
      expect(runner.personWaiting()).toBe(true);
      runner.setTurn({ messageId: 'm2', routing }); // a later turn: a killed tool server's mark
      expect(runner.personWaiting()).toBe(false);
      runner.setTurn({ messageId: 'm1', routing });
      now += 60_000;
      expect(runner.personWaiting()).toBe(false);
      now -= 1;
      expect(runner.personWaiting()).toBe(true);
      runner.clearWaiting();
      expect(runner.personWaiting()).toBe(false);
    } finally {
      runner.close();
      host.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('a tool call the client cancels', () => {
  it('ask_user_question stops waiting: no wait mark left to hold the turn, no heartbeat kept for it', async () => {
    const beats = (r: RunnerQueue) => r.getState('heartbeat');
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
    const { buildServer } = await import('../src/runner/tools/server.js');
    const { queueContext } = await import('../src/runner/tools/context.js');
    const { createLogger } = await import('../src/shared/log.js');
    const home = tempHome();
    const host = new SessionQueue(path.join(home, 'session'));
    const routing = { channelType: 'terminal', platformId: 'main', threadId: null };
    host.setMeta(sessionMeta({ defaultRouting: routing }), []);
    const log = createLogger({ level: 'error' });
    const ctx = queueContext({ sessionDir: host.dir, agentDir: home, log });
    const runner = new RunnerQueue(host.dir);
    const [a, b] = InMemoryTransport.createLinkedPair();
    const server = buildServer(ctx, log);
    const client = new Client({ name: 't', version: '0' });
    try {
      await server.connect(a);
      await client.connect(b);
      runner.setTurn({ messageId: 'm1', routing });
      const abort = new AbortController();
      const call = client
        .callTool(
          {
            name: 'ask_user_question',
            arguments: { question: 'Tea?', options: ['yes', 'no'], timeout: 600 },
          },
          undefined,
          {
            signal: abort.signal,
          },
        )
        .then(
          () => 'answered',
          (err: Error) => `client: ${err.message}`,
        );
      await waitFor(() => runner.personWaiting(), 5000, 'the wait mark');
      abort.abort();
      expect(await call).toMatch(/^client: /);
      await waitFor(() => !runner.personWaiting(), 3000, 'the wait mark to go');
      const last = beats(runner);
      await new Promise((r) => setTimeout(r, 2500)); // a waiting tool beats every 2 s
      expect(beats(runner)).toBe(last);
    } finally {
      await client.close();
      await server.close();
      runner.close();
      ctx.close();
      host.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

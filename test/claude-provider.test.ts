/**
 * The Claude provider with the real Claude Agent SDK and its bundled Claude Code binary,
 * against the fake Anthropic Messages server (test/support/fake-anthropic.ts) on 127.0.0.1.
 *  - direct: ClaudeProvider driven like the runner drives it (no sandbox), for streamed
 *    deltas, a follow-up pushed mid-turn, an unknown session, abort and compaction;
 *  - end to end: a real host process, a real bwrap sandbox and the real gateway; the group is
 *    created with `--provider claude --model M --endpoint SECRET`, the secret's base URL is the
 *    fake server, which must receive the real key and never the sandbox's token.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { ClaudeProvider, loadSdk, toClaudePrompt } from '../src/runner/providers/claude.js';
import { formatMessages } from '../src/runner/formatter.js';
import { ProviderConfigError, type ProviderEvent } from '../src/shared/provider.js';
import {
  cliAsync,
  createEndpointGroup,
  ROOT,
  startHostProc,
  tempHome,
  waitFor,
  type CliResult,
  type HostProc,
} from './support/cli.js';
import { startFakeAnthropic, type FakeAnthropic } from './support/fake-anthropic.js';
import { writeEchoMcpServer } from './support/echo-mcp.js';
import { mcpServersEnv } from '../src/shared/mcp.js';

async function collect(events: AsyncIterable<ProviderEvent>, onEvent?: (e: ProviderEvent) => void) {
  const out: ProviderEvent[] = [];
  for await (const e of events) {
    out.push(e);
    onEvent?.(e);
  }
  return out;
}

describe('claude provider, direct', () => {
  let fake: FakeAnthropic;
  let dir: string;
  const ctx = () => ({
    sessionDir: path.join(dir, 'session'),
    agentDir: path.join(dir, 'agent'),
    model: 'fake-model',
    env: {
      PATH: process.env.PATH,
      HOME: path.join(dir, 'agent'),
      POLYCLAW_GATEWAY_URL: fake.url,
      POLYCLAW_GATEWAY_TOKEN: 'pcgw_test',
    },
  });
  const provider = () => new ClaudeProvider(ctx(), { exitGraceMs: 500 });
  const input = (prompt: string, continuation?: string) => ({
    prompt: `<message seq="1" from="me" time="now">${prompt}</message>`,
    cwd: path.join(dir, 'agent'),
    systemContext: 'You are Testy.',
    continuation,
  });

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    dir = tempHome('polyclaw-claude-');
    fs.mkdirSync(path.join(dir, 'agent'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'session'), { recursive: true });
  });
  afterAll(async () => {
    await fake?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('streams deltas, then one result; init carries the session id', async () => {
    const q = provider().query(input('hello there'));
    const evs = await collect(q.events, (e) => e.type === 'result' && q.end());
    const deltas = evs.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text);
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    expect(deltas.join('')).toBe('echo: hello there');
    expect(evs.find((e) => e.type === 'init')).toMatchObject({
      continuation: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(evs.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'echo: hello there' }]);
    const req = fake.messages().at(-1)!;
    expect(req.url).toBe('/anthropic/v1/messages?beta=true');
    expect(req.headers['x-api-key']).toBe('pcgw_test');
    expect(JSON.stringify(req.body.system)).toContain('You are Testy.');
  }, 30_000);

  it('a follow-up pushed mid-turn is answered in the same query, in order', async () => {
    const q = provider().query(input('BASH[sleep 1.5; echo slow-one]'));
    let pushed = false;
    let results = 0;
    const evs = await collect(q.events, (e) => {
      if (e.type === 'progress' && !pushed) {
        pushed = true;
        q.push('<message seq="2" from="me" time="now">second question</message>');
      }
      if (e.type === 'result' && ++results === 2) q.end();
    });
    expect(evs.filter((e) => e.type === 'init')).toHaveLength(1);
    expect(evs.filter((e) => e.type === 'result').map((e) => (e as { text: string }).text)).toEqual([
      'TOOL RESULT SEEN: slow-one',
      'echo: second question',
    ]);
  }, 30_000);

  it('two follow-ups pushed during one long turn each get their own result', async () => {
    const q = provider().query(input('BASH[sleep 2; echo slow-one]'));
    let pushed = false;
    let results = 0;
    const evs = await collect(q.events, (e) => {
      if (e.type === 'progress' && !pushed) {
        pushed = true;
        q.push('<message seq="2" from="me" time="now">second question</message>');
        setTimeout(() => q.push('<message seq="3" from="me" time="now">third question</message>'), 200);
      }
      if ((e.type === 'result' || e.type === 'error') && ++results === 3) q.end();
    });
    // The CLI folds prompts queued behind a running turn into one turn with one result: each
    // must still get its own, or the runner waits for ever for the last one's.
    expect(evs.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([
      { type: 'result', text: 'TOOL RESULT SEEN: slow-one' },
      { type: 'result', text: 'echo: second question' },
      { type: 'result', text: 'echo: third question' },
    ]);
  }, 40_000);

  it('a turn whose last message has no text answers with its last text, not with nothing', async () => {
    fake.script = (r) =>
      r.toolResults[0]?.id === 'toolu_quiet'
        ? {}
        : r.lastUserText.startsWith('QUIET')
          ? {
              text: 'The answer is 42.',
              toolUse: { id: 'toolu_quiet', name: 'Bash', input: { command: 'true', description: 'x' } },
            }
          : undefined;
    try {
      const q = provider().query(input('QUIET end'));
      const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
      expect(evs.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([
        { type: 'result', text: 'The answer is 42.' },
      ]);
    } finally {
      fake.script = null;
    }
  }, 30_000);

  it('an unknown session is reported as invalid (the runner then starts fresh)', async () => {
    const p = provider();
    const q = p.query(input('hi', '11111111-2222-3333-4444-555555555555'));
    const err = await collect(q.events).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeTruthy();
    expect(p.isSessionInvalid(err)).toBe(true);
  }, 30_000);

  it('abort ends the event stream promptly without a result', async () => {
    const q = provider().query(input('SLOW[20000] never'));
    const t0 = Date.now();
    const evs = await collect(q.events, (e) => e.type === 'init' && setTimeout(() => q.abort(), 300));
    expect(evs.some((e) => e.type === 'result')).toBe(false);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  it('a rate limit ends the turn as a retryable quota error', async () => {
    const q = provider().query(input('FAIL[429]'));
    const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
    expect(evs.find((e) => e.type === 'error')).toMatchObject({ retryable: true, classification: 'quota' });
  }, 30_000);

  it('a rejected credential ends the turn at once, not retryable, and the stream ends cleanly', async () => {
    const q = provider().query(input('FAIL[401]'));
    const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
    expect(evs.find((e) => e.type === 'error')).toMatchObject({ retryable: false, classification: 'auth' });
  }, 30_000);

  it('a subagent works within the turn: its report is part of the answer, not a background task', async () => {
    // The subagent's request streams slowly; the main thread waits for it (foreground).
    fake.script = (r) =>
      r.lastUserText.startsWith('SUBTASK') && !r.toolResults.length
        ? { text: ['one ', 'two ', 'three ', 'four'], gapMs: 300 }
        : undefined;
    try {
      const q = provider().query(input('AGENT[SUBTASK count to four]'));
      const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
      const results = evs.filter((e) => e.type === 'result').map((e) => (e as { text: string }).text);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatch(/^TOOL RESULT SEEN: [\s\S]*one two three four/);
      expect(results[0]).not.toMatch(/background|launched/i);
      const tools = fake
        .messages()
        .at(-1)!
        .body.tools.map((t: { name: string }) => t.name);
      for (const name of ['Monitor', 'Workflow', 'SendMessage', 'ListAgents'])
        expect(tools).not.toContain(name);
    } finally {
      fake.script = null;
    }
  }, 40_000);

  it("the group's own MCP servers reach Claude next to ours, and the model can call their tools", async () => {
    fs.mkdirSync(path.join(ROOT, '.test-tmp'), { recursive: true });
    const where = fs.mkdtempSync(path.join(ROOT, '.test-tmp', 'claude-mcp-'));
    const server = writeEchoMcpServer(where);
    fake.script = (r) =>
      r.toolResults.length
        ? { text: `TOOL RESULT SEEN: ${r.toolResults[0]!.text}` }
        : r.lastUserText.startsWith('ECHO')
          ? { toolUse: { name: 'mcp__echo__echo', input: { text: 'hi' } } }
          : undefined;
    try {
      const env = {
        ...ctx().env,
        ...mcpServersEnv([{ name: 'echo', command: process.execPath, args: [server] }]),
      };
      const q = new ClaudeProvider({ ...ctx(), env }, { exitGraceMs: 500 }).query(input('ECHO please'));
      const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
      expect(evs.filter((e) => e.type === 'result' || e.type === 'error')).toEqual([
        { type: 'result', text: 'TOOL RESULT SEEN: echoed hi' },
      ]);
      const tools = fake
        .messages()
        .at(-1)!
        .body.tools.map((t: { name: string }) => t.name);
      // (Our own server is listed in the end-to-end case, where it can start: here it has no CLI.)
      expect(tools).toContain('mcp__echo__echo');
    } finally {
      fake.script = null;
      fs.rmSync(where, { recursive: true, force: true });
    }
  }, 40_000);

  it('a malformed list of group MCP servers fails the query at once as a config error', async () => {
    const env = { ...ctx().env, POLYCLAW_MCP_SERVERS: '[{"name":' };
    const q = new ClaudeProvider({ ...ctx(), env }, { exitGraceMs: 500 }).query(input('hi'));
    await expect(collect(q.events)).rejects.toBeInstanceOf(ProviderConfigError);
  }, 30_000);

  it('a missing Claude Code fails the query at once as a config error that says what to run', async () => {
    const requestsBefore = fake.messages().length;
    const p = new ClaudeProvider(ctx(), { exitGraceMs: 500, binary: () => null });
    const q = p.query(input('hello'));
    const err = await collect(q.events).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderConfigError);
    expect((err as Error).message).toBe(
      'the claude binary is not installed: run npm ci in the Polyclaw install (@anthropic-ai/claude-agent-sdk bundles Claude Code)',
    );
    expect(fake.messages()).toHaveLength(requestsBefore);
    p.close();
  });

  it('keep warm: the next batch of the session goes into the parked CLI; another session gets a new one', async () => {
    let starts = 0;
    const p = new ClaudeProvider(ctx(), {
      exitGraceMs: 500,
      keepWarmMs: 60_000,
      query: async (params) => {
        starts += 1;
        return (await loadSdk())(params);
      },
    });
    const turn = async (text: string, continuation?: string) => {
      const q = p.query(input(text, continuation));
      return collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
    };
    try {
      const first = await turn('one');
      const id = (first.find((e) => e.type === 'init') as { continuation: string }).continuation;
      const t0 = Date.now();
      const second = await turn('two', id);
      expect(second.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'echo: two' }]);
      expect(Date.now() - t0).toBeLessThan(400); // no CLI start (~0.5 s and more)
      expect(starts).toBe(1);
      expect(JSON.stringify(fake.messages().at(-1)!.body.messages)).toContain('one');
      const other = await turn('fresh'); // no continuation (/clear): the parked CLI is closed
      expect(other.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'echo: fresh' }]);
      expect(starts).toBe(2);
    } finally {
      p.close();
    }
  }, 30_000);

  it('/compact: compaction is progress, never a reply; the transcript is archived first', async () => {
    const p = provider();
    const first = p.query(input('remember the word kumquat'));
    const evs1 = await collect(first.events, (e) => e.type === 'result' && first.end());
    const id = (evs1.find((e) => e.type === 'init') as { continuation: string }).continuation;
    const q = p.query(input('/compact', id));
    const evs = await collect(q.events, (e) => (e.type === 'result' || e.type === 'error') && q.end());
    expect(evs.some((e) => e.type === 'progress' && /compact/.test(e.message))).toBe(true);
    expect(evs.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: null }]);
    const archived = fs.readdirSync(path.join(dir, 'agent', 'conversations'));
    expect(archived.length).toBe(1);
    expect(fs.readFileSync(path.join(dir, 'agent', 'conversations', archived[0]!), 'utf8')).toContain(
      'kumquat',
    );
  }, 40_000);
});

describe('native slash commands reach the CLI bare only from a chat message', () => {
  const one = (kind: 'chat' | 'task', text: string) =>
    formatMessages(
      [
        {
          id: 'm',
          seq: 1,
          kind,
          timestamp: 0,
          tries: 0,
          trigger: true,
          processAfter: 0,
          routing: { channelType: 'terminal', platformId: 'local', threadId: null },
          content: { text, attachments: [], ...(kind === 'chat' ? { sender: { id: 'ann', isAdmin: true } } : {}) },
        },
      ],
      'UTC',
      0,
    );
  it('an admin\'s /compact (the router lets no one else\'s through) goes bare', () => {
    expect(toClaudePrompt(one('chat', '/compact'))).toBe('/compact');
  });
  it('a scheduled task whose prompt is /compact stays a message: tasks never pass the command gate', () => {
    const prompt = one('task', '/compact');
    expect(toClaudePrompt(prompt)).toBe(prompt);
  });
});

describe('the fake model lives in the test process', () => {
  it('a blocked event loop (spawnSync) is measured, so e2e tests can refuse it', async () => {
    const fake = await startFakeAnthropic();
    try {
      expect(fake.maxLoopStallMs()).toBeLessThan(1000);
      spawnSync('sleep', ['1.2']);
      await new Promise((r) => setTimeout(r, 120));
      expect(fake.maxLoopStallMs()).toBeGreaterThanOrEqual(1000);
    } finally {
      await fake.close();
    }
  });
});

// The fake model runs in this process: every `polyclaw chat` goes through cliAsync, never the
// sync cli() (spawnSync blocks this event loop, so the fake only answered once the chat timed
// out — the "~39 s stall in bwrap"). afterEach checks that the loop was never blocked.
describe('claude group end to end: host, bwrap sandbox, gateway', () => {
  let home: string;
  let host: HostProc;
  let fake: FakeAnthropic;
  const SECRET = 'sk-ant-api03-' + randomBytes(24).toString('hex');
  const env = { POLYCLAW_RETRY_BASE_MS: '100', POLYCLAW_LOG_LEVEL: 'warn' };
  const chat = (text: string) =>
    cliAsync(home, ['chat', '--group', 'asst', '-m', text, '--json', '--timeout', '25'], env);
  const replies = (r: CliResult) =>
    (r.json?.result?.replies ?? []).map((x: { text: string }) => x.text) as string[];

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    home = tempHome('polyclaw-claude-e2e-');
    host = await startHostProc(home, env);
    await createEndpointGroup(
      home,
      { name: 'asst', provider: 'claude', model: 'claude-fake-4', effort: 'low' },
      { name: 'fake-claude', kind: 'anthropic', baseUrl: fake.url, secret: SECRET },
    );
  }, 30_000);
  afterEach(() => {
    expect(fake.maxLoopStallMs(), 'the test process blocked its event loop (a sync cli call?)').toBeLessThan(
      1000,
    );
  });
  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('answers through the gateway: the fake model gets the real key, never the token', async () => {
    const r = await chat('hello claude');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(replies(r)).toEqual(['echo: hello claude']);
    const reqs = fake.messages();
    expect(reqs.length).toBeGreaterThan(0);
    for (const q of reqs) {
      expect(q.url).toBe('/v1/messages?beta=true');
      expect(q.headers['x-api-key']).toBe(SECRET);
      expect(JSON.stringify(q.headers)).not.toMatch(/pcgw_/);
    }
    // The composed CLAUDE.md reached the model (Claude Code loaded it and its @-imports).
    expect(JSON.stringify(reqs.at(-1)!.body)).toContain('Polyclaw runtime');
    // The group's --model and --effort are what the model is asked with.
    expect(reqs.at(-1)!.body.model).toBe('claude-fake-4');
    expect(reqs.at(-1)!.body.output_config).toMatchObject({ effort: 'low' });
  }, 40_000);

  it('Bash tool round trip inside the sandbox', async () => {
    const r = await chat('BASH[echo made-by-bash-$((6*7))]');
    expect(replies(r), r.stdout).toEqual(['TOOL RESULT SEEN: made-by-bash-42']);
  }, 40_000);

  it('our MCP send_message reaches the terminal (and the final text is not sent twice)', async () => {
    const r = await chat('SEND[hello from the tool]');
    expect(replies(r), r.stdout).toEqual(['hello from the tool']);
    const tools = fake
      .messages()
      .at(-1)!
      .body.tools.map((t: { name: string }) => t.name);
    expect(tools).toContain('mcp__polyclaw__send_message');
    expect(tools).not.toContain('CronCreate');
  }, 40_000);

  it('resumes the stored session on the next turn, also after a host (and sandbox) restart', async () => {
    await host.stop();
    host = await startHostProc(home, env);
    const r = await chat('after restart');
    expect(replies(r), r.stdout).toEqual(['echo: after restart']);
    const body = JSON.stringify(fake.messages().at(-1)!.body.messages);
    expect(body).toContain('hello claude');
  }, 40_000);

  it('an unknown stored session starts a fresh one and the message is answered', async () => {
    // Stop the host (and the sandbox with its warm CLI), then lose the stored transcripts.
    await host.stop();
    const projects = path.join(home, 'provider-state', 'claude', 'asst', 'config', 'projects');
    fs.rmSync(projects, { recursive: true, force: true });
    host = await startHostProc(home, env);
    const r = await chat('fresh please');
    expect(replies(r), r.stdout).toEqual(['echo: fresh please']);
    expect(JSON.stringify(fake.messages().at(-1)!.body.messages)).not.toContain('hello claude');
  }, 40_000);

  it('a credential the model API rejects is reported to the user at once, without retries', async () => {
    const r = await chat('FAIL[401]');
    expect(r.code).toBe(1);
    expect(r.json.result.status).toBe('failed');
    expect(replies(r)[0]).toMatch(
      /could not process your message: the model API rejected the credential \(401/,
    );
    // Failed on its first attempt: the host did not retry it.
    expect(inboundRows(home).find((m) => m.text === 'FAIL[401]')).toMatchObject({
      status: 'failed',
      tries: 0,
    });
  }, 40_000);

  it('the claude CLI process holds no key-like variable but the gateway token', async () => {
    // A slow turn, so the CLI process (warm from the last turn, or a new one) is there meanwhile.
    const turn = chat('SLOW[3000] slow one');
    const pid = await waitFor(() => claudePids('/endpoints/fake-claude')[0], 20_000, 'the claude process');
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    const vars = Object.fromEntries(
      environ.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(replies(await turn)).toEqual(['echo: SLOW[3000] slow one']);
    expect(environ.join('\n')).not.toContain(SECRET);
    const keyLike = Object.keys(vars).filter((k) => /KEY|TOKEN|SECRET|PASS|AUTH|PROXY|POLYCLAW/i.test(k));
    expect(keyLike).toEqual(['ANTHROPIC_API_KEY']);
    expect(vars.ANTHROPIC_API_KEY).toMatch(/^pcgw_/);
    expect(vars.ANTHROPIC_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/endpoints\/fake-claude$/);
    expect(vars.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).toBe('1');
    // Model calls go straight to the gateway socket mounted in the sandbox (no forwarder hop).
    expect(vars.ANTHROPIC_UNIX_SOCKET).toBe('/run/polyclaw/gateway.sock');
  }, 40_000);
});

/** Every inbound row of every session of the home (text, status and the try it is on). */
function inboundRows(home: string): Array<{ text: string; status: string; tries: number }> {
  const root = path.join(home, 'sessions');
  return fs.readdirSync(root).flatMap((g) =>
    fs.readdirSync(path.join(root, g)).flatMap((s) => {
      const db = new Database(path.join(root, g, s, 'inbound.db'), { readonly: true });
      try {
        const rows = db.prepare('SELECT content, status, tries FROM messages_in').all() as Array<{
          content: string;
          status: string;
          tries: number;
        }>;
        return rows.map((r) => ({
          text: JSON.parse(r.content).text as string,
          status: r.status,
          tries: r.tries,
        }));
      } finally {
        db.close();
      }
    }),
  );
}

/** Pids of running Claude Code binaries (the SDK's bundled CLI) whose environment contains `marker`. */
function claudePids(marker: string): string[] {
  const out: string[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (
        cmd.includes('claude-agent-sdk-linux-x64/claude') &&
        fs.readFileSync(`/proc/${p}/environ`, 'utf8').includes(marker)
      )
        out.push(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
        continue;
      throw err;
    }
  }
  return out;
}

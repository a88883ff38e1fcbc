/**
 * The codex provider against the REAL `codex app-server` binary and a fake Responses server on
 * 127.0.0.1 (no sandbox here; e2e-codex.test.ts covers the host + bwrap + gateway path).
 * CODEX_HOME lives under the repo's .test-tmp, never under /tmp (FINDINGS §A).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { CodexProvider } from '../src/runner/providers/codex.js';
import { mcpServersEnv } from '../src/shared/mcp.js';
import type { ApprovalPolicy } from '../src/shared/messages.js';
import type { AgentQuery, ApprovalRequest, ProviderEvent } from '../src/shared/provider.js';
import { answers, codexKit, codexProvider } from './support/codex-kit.js';
import { writeEchoMcpServer } from './support/echo-mcp.js';
import { sessionMeta } from './support/meta.js';

describe('codex provider with the real codex app-server', () => {
  const kit = codexKit('codex-provider');
  const mkAgent = (name: string) => kit.mkAgent(name);
  const secretEnv = { OPENAI_API_KEY: 'sk-should-never-reach-codex', ANTHROPIC_API_KEY: 'sk-ant-nope' };
  const mk = (
    dir: string,
    extra: Record<string, string> = {},
    approval?: ApprovalPolicy,
    personWaiting?: () => boolean,
  ) =>
    codexProvider(dir, {
      gatewayUrl: kit.fake.url,
      token: 'gw-token-123',
      env: { ...secretEnv, ...extra },
      approval,
      personWaiting,
    });

  it('text turn with streamed deltas, archived, through the gateway route with the token', async () => {
    const dir = mkAgent('text');
    kit.fake.script({ text: 'Hello there', deltas: ['Hel', 'lo ', 'there'] });
    const q = mk(dir).query({ prompt: 'hi', cwd: path.join(dir, 'agent'), systemContext: 'ctx' });
    const ev = await answers(q, 1);
    expect(ev.find((e) => e.type === 'init')).toBeTruthy();
    expect(ev.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text)).toEqual([
      'Hel',
      'lo ',
      'there',
    ]);
    expect(ev.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'Hello there' }]);
    const req = kit.fake.requests.at(-1)!;
    expect(req.url).toBe('/openai/v1/responses');
    expect(req.headers.authorization).toBe('Bearer gw-token-123');
    const toml = fs.readFileSync(path.join(dir, 'agent/.codex/config.toml'), 'utf8');
    expect(toml).toContain(`base_url = "${kit.fake.url}/openai/v1"`);
    expect(toml).toContain('wire_api = "responses"');
    expect(fs.existsSync(path.join(dir, 'agent/memory/index.md'))).toBe(true);
  }, 30_000);

  it("archives the exchange as the person saw it, without the model's internal notes", async () => {
    const dir = mkAgent('archive');
    kit.fake.script({ text: 'Shown <internal>kept to itself</internal>answer' });
    await answers(mk(dir).query({ prompt: 'what', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    const [file] = fs.readdirSync(path.join(dir, 'agent/conversations'));
    const text = fs.readFileSync(path.join(dir, 'agent/conversations', file!), 'utf8');
    expect(text).toContain('Shown');
    expect(text).not.toContain('kept to itself');
  }, 30_000);

  it('shell tool turn: exec_command runs and its output reaches the model', async () => {
    const dir = mkAgent('shell');
    kit.fake.script({ exec: 'echo tool-said-$((40+2))' }, { text: 'done with tool' });
    const q = mk(dir).query({ prompt: 'run it', cwd: path.join(dir, 'agent'), systemContext: '' });
    const ev = await answers(q, 1);
    expect(ev.some((e) => e.type === 'progress' && e.message.startsWith('running:'))).toBe(true);
    expect(ev.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'done with tool' }]);
    const out = JSON.stringify(kit.fake.requests.at(-1)!.body.input);
    expect(out).toContain('tool-said-42');
  }, 30_000);

  it('resumes the same thread in a new process; a stale thread falls back to a fresh one', async () => {
    const dir = mkAgent('resume');
    const p = mk(dir);
    const a = await answers(p.query({ prompt: 'first', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    const init = (x: ProviderEvent[]) => x.find((e) => e.type === 'init') as { continuation: string };
    const thread = init(a).continuation;
    const warmPid = findCodexPid(path.join(dir, 'agent/.codex'));
    // A second query on the same provider reuses the warm app-server and its loaded thread.
    const again = await answers(
      p.query({ prompt: 'again', cwd: path.join(dir, 'agent'), systemContext: '', continuation: thread }),
      1,
    );
    expect(init(again).continuation).toBe(thread);
    expect(findCodexPid(path.join(dir, 'agent/.codex'))).toBe(warmPid);
    // The sandbox restarts: the old runner's app-server is gone, a new process resumes the thread.
    await p.close();
    kit.fake.script({ text: 'second answer' });
    const b = await answers(
      mk(dir).query({
        prompt: 'second',
        cwd: path.join(dir, 'agent'),
        systemContext: '',
        continuation: thread,
      }),
      1,
    );
    expect(init(b).continuation).toBe(thread);
    // The resumed thread carries the first exchange to the model.
    expect(JSON.stringify(kit.fake.requests.at(-1)!.body.input)).toContain('first');
    const stale = '019a0000-0000-7000-8000-000000000000';
    const c = await answers(
      mk(dir).query({
        prompt: 'third',
        cwd: path.join(dir, 'agent'),
        systemContext: '',
        continuation: stale,
      }),
      1,
    );
    expect(init(c).continuation).not.toBe(stale);
    expect(c.at(-1)).toEqual({ type: 'result', text: 'ok: third' });
    // Codex keeps no transcript we can read: each answered prompt is archived with its own answer.
    const archived = fs
      .readdirSync(path.join(dir, 'agent/conversations'))
      .map((f) => fs.readFileSync(path.join(dir, 'agent/conversations', f), 'utf8'));
    expect(archived).toHaveLength(4);
    const first = archived.find((a) => a.includes('## Prompt\n\nfirst'))!;
    expect(first).toContain(`- thread: ${thread}`);
    expect(first).toMatch(/## Result\n\n\S/);
    expect(archived.find((a) => a.includes('## Prompt\n\nthird'))).toContain('ok: third');
  }, 45_000);

  it('a changed runtime context reaches the model on the warm thread and on a resumed one, and is sent only when changed', async () => {
    const dir = mkAgent('context');
    const cwd = path.join(dir, 'agent');
    const codexHome = path.join(dir, 'agent/.codex');
    const init = (x: ProviderEvent[]) => x.find((e) => e.type === 'init') as { continuation: string };
    /** The runtime contexts the last model request carried, oldest first. */
    const contexts = () =>
      (kit.fake.requests.at(-1)!.body.input as Array<{ role?: string; content?: Array<{ text?: string }> }>)
        .filter((i) => i.role === 'developer')
        .flatMap((i) => (i.content ?? []).map((c) => /Assistant name: \w+/.exec(c.text ?? '')?.[0] ?? ''))
        .filter(Boolean);
    const ask = async (p: CodexProvider, prompt: string, name: string, continuation?: string) => {
      const evs = await answers(
        p.query({ prompt, cwd, systemContext: `Assistant name: ${name}`, continuation }),
        1,
      );
      expect(evs.at(-1)).toEqual({ type: 'result', text: `ok: ${prompt}` });
      return init(evs).continuation;
    };
    const p = mk(dir);
    const thread = await ask(p, 'one', 'Alpha');
    expect(contexts()).toEqual(['Assistant name: Alpha']);
    const warmPid = findCodexPid(codexHome);
    expect(await ask(p, 'two', 'Beta', thread)).toBe(thread);
    expect(contexts()).toEqual(['Assistant name: Alpha', 'Assistant name: Beta']);
    // Still the warm app-server and its loaded thread.
    expect(findCodexPid(codexHome)).toBe(warmPid);
    await ask(p, 'three', 'Beta', thread);
    expect(contexts()).toEqual(['Assistant name: Alpha', 'Assistant name: Beta']);
    // A new process resumes the thread: an unchanged context is not sent again, a changed one is.
    await p.close();
    // …and its record is read, not written again.
    const recordFile = path.join(codexHome, 'polyclaw-context', thread);
    const recorded = fs.statSync(recordFile).mtimeMs;
    const q = mk(dir);
    expect(await ask(q, 'four', 'Beta', thread)).toBe(thread);
    expect(contexts()).toEqual(['Assistant name: Alpha', 'Assistant name: Beta']);
    expect(fs.statSync(recordFile).mtimeMs).toBe(recorded);
    await q.close();
    const r = mk(dir);
    expect(await ask(r, 'five', 'Gamma', thread)).toBe(thread);
    expect(contexts()).toEqual(['Assistant name: Alpha', 'Assistant name: Beta', 'Assistant name: Gamma']);
    await r.close();
  }, 60_000);

  it('steers a follow-up into a running turn; one answer per prompt, in order', async () => {
    const dir = mkAgent('steer');
    kit.fake.script(
      { text: 'slow answer', deltas: ['slow ', 'answer'], delayMs: 1500 },
      { text: 'after steer' },
    );
    const q = mk(dir).query({ prompt: 'slow one', cwd: path.join(dir, 'agent'), systemContext: '' });
    let pushed = false;
    const ev = await answers(q, 2, (e) => {
      if (e.type === 'progress' && !pushed) {
        pushed = true;
        setTimeout(() => q.push('steered follow-up'), 200);
      }
    });
    const ends = ev.filter((e) => e.type === 'result' || e.type === 'error');
    // One turn: the steered-over prompt's result says its answer comes with the last one's.
    expect(ends).toEqual([
      { type: 'result', text: '', merged: true },
      { type: 'result', text: 'after steer' },
    ]);
    expect(JSON.stringify(kit.fake.requests.map((r) => r.body.input))).toContain('steered follow-up');
  }, 30_000);

  it('a follow-up racing turn completion starts a new turn instead of being swallowed', async () => {
    const dir = mkAgent('race');
    const q = mk(dir).query({ prompt: 'race one', cwd: path.join(dir, 'agent'), systemContext: '' });
    let pushed = false;
    const ev = await answers(q, 2, (e) => {
      if (e.type === 'result' && !pushed) {
        pushed = true;
        q.push('race two');
      }
    });
    expect(ev.filter((e) => e.type === 'result')).toEqual([
      { type: 'result', text: 'ok: race one' },
      { type: 'result', text: 'ok: race two' },
    ]);
  }, 30_000);

  it('a turn that outlives its timeout ends with a retryable timeout error, and the next turn works', async () => {
    const dir = mkAgent('timeout');
    kit.fake.script({ hang: true });
    // Long enough for the next (real) turn on a loaded machine, which runs under the same limit
    // (2.5 s was not: with the whole suite running, that turn once took longer).
    const p = mk(dir, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '6000' });
    const t0 = Date.now();
    const ev = await answers(p.query({ prompt: 'slow', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(6000);
    expect(Date.now() - t0).toBeLessThan(12_000);
    expect(ev.at(-1)).toMatchObject({ type: 'error', retryable: true, classification: 'timeout' });
    kit.fake.script({ text: 'back' });
    const next = await answers(
      p.query({ prompt: 'again', cwd: path.join(dir, 'agent'), systemContext: '' }),
      1,
    );
    expect(next.at(-1)).toEqual({ type: 'result', text: 'back' });
    await p.close();
  }, 30_000);

  it('the turn timeout is an idle timeout: a turn that streams for longer than it ends with its result', async () => {
    const dir = mkAgent('steady');
    const pieces = Array.from({ length: 10 }, (_, i) => `step ${i}. `);
    kit.fake.script({ text: pieces.join(''), deltas: pieces, gapMs: 800 });
    const p = mk(dir, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '5000' });
    const t0 = Date.now();
    const ev = await answers(
      p.query({ prompt: 'steady', cwd: path.join(dir, 'agent'), systemContext: '' }),
      1,
    );
    expect(Date.now() - t0).toBeGreaterThan(7000);
    expect(ev.at(-1)).toEqual({ type: 'result', text: pieces.join('') });
    await p.close();
  }, 30_000);

  it('a question of ours waiting for a person is not idleness: the timeout waits until it is answered', async () => {
    const dir = mkAgent('person');
    kit.fake.script({ hang: true });
    // Asked at each expiry: a person is waiting at the first, no longer at the second.
    let asked = 0;
    const p = mk(dir, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '3000' }, undefined, () => ++asked === 1);
    const ev = await answers(p.query({ prompt: 'ask', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    expect(asked).toBe(2);
    expect(ev.at(-1)).toMatchObject({ type: 'error', retryable: true, classification: 'timeout' });
    await p.close();
  }, 30_000);

  it('abort interrupts a hanging turn and ends the stream promptly', async () => {
    const dir = mkAgent('abort');
    kit.fake.script({ hang: true });
    const q = mk(dir).query({ prompt: 'hang', cwd: path.join(dir, 'agent'), systemContext: '' });
    const n = kit.fake.requests.length;
    const done = answers(q, 1);
    await kit.fake.waitRequests(n + 1);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    q.abort();
    const ev = await done;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(ev.some((e) => e.type === 'result' || e.type === 'error')).toBe(false);
  }, 30_000);

  it('app-server killed mid-turn: the error arrives within a second with the exit cause; env is allowlisted', async () => {
    const dir = mkAgent('kill');
    kit.fake.script({ hang: true });
    const q = mk(dir).query({ prompt: 'hang again', cwd: path.join(dir, 'agent'), systemContext: '' });
    const n = kit.fake.requests.length;
    const done = answers(q, 1);
    await kit.fake.waitRequests(n + 1);
    const pid = findCodexPid(path.join(dir, 'agent/.codex'));
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    const names = environ.map((l) => l.split('=')[0]!);
    expect(names).not.toContain('OPENAI_API_KEY');
    expect(names).not.toContain('ANTHROPIC_API_KEY');
    expect(names).not.toContain('POLYCLAW_GATEWAY_TOKEN');
    expect(environ.join('\n')).not.toContain('sk-');
    const keyish = names.filter((k) => /KEY|TOKEN|SECRET|PASSWORD/i.test(k));
    expect(keyish).toEqual(['POLYCLAW_CODEX_KEY']);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const ev = await done;
    expect(Date.now() - t0).toBeLessThan(1000);
    const err = ev.find((e) => e.type === 'error') as Extract<ProviderEvent, { type: 'error' }>;
    expect(err).toMatchObject({ classification: 'crash', retryable: true });
    expect(err.message).toMatch(/exited \(signal SIGKILL\)/);
  }, 30_000);

  describe('approval policies', () => {
    const PATCH =
      "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: patched.txt\n+patched\n*** End Patch\nEOF";
    /** Answer each approval as it arrives with decide(request); collect until one answer. */
    const run = (q: AgentQuery, decide?: (r: ApprovalRequest) => [boolean, string?]) => {
      const asked: ApprovalRequest[] = [];
      const ev = answers(q, 1, (e) => {
        if (e.type !== 'approval') return;
        asked.push(e.request);
        const [allow, reason] = decide?.(e.request) ?? [true];
        setTimeout(() => q.answerApproval!(e.request.id, allow, reason), 50);
      });
      return { asked, ev };
    };

    it("'ask': a shell command and a patch wait for approval; allowed, they run and the turn finishes", async () => {
      const dir = mkAgent('ask-allow');
      const cwd = path.join(dir, 'agent');
      kit.fake.script({ exec: 'echo approved > approved.txt' }, { exec: PATCH }, { text: 'ran both' });
      const p = mk(dir, {}, 'ask');
      const { asked, ev } = run(p.query({ prompt: 'do it', cwd, systemContext: '' }));
      const events = await ev;
      expect(asked.map((r) => [r.tool, r.summary])).toEqual([
        ['shell', 'echo approved > approved.txt'],
        ['apply_patch', 'add patched.txt'],
      ]);
      expect(events.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'ran both' }]);
      expect(fs.readFileSync(path.join(cwd, 'approved.txt'), 'utf8')).toBe('approved\n');
      expect(fs.readFileSync(path.join(cwd, 'patched.txt'), 'utf8')).toBe('patched\n');
      const toml = fs.readFileSync(path.join(cwd, '.codex/config.toml'), 'utf8');
      expect(toml).toContain('approval_policy = "on-request"');
      expect(toml).toMatch(/\[mcp_servers\.polyclaw\]\n(.*\n){2}default_tools_approval_mode = "approve"/);
      // A question waits up to a day: codex's 60 s tool timeout would fail it under the person.
      expect(toml).toMatch(/\[mcp_servers\.polyclaw\]\n(.*\n){3}tool_timeout_sec = 87000\n/);
      await p.close();
    }, 30_000);

    it("'ask' denied: the command does not run, the model hears the refusal, the turn still ends", async () => {
      const dir = mkAgent('ask-deny');
      const cwd = path.join(dir, 'agent');
      kit.fake.script({ exec: 'touch denied.txt' }, { text: 'could not' });
      const p = mk(dir, {}, 'ask');
      const { asked, ev } = run(p.query({ prompt: 'try it', cwd, systemContext: '' }), () => [
        false,
        'An admin denied this tool call.',
      ]);
      const events = await ev;
      expect(asked).toHaveLength(1);
      expect(events.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'could not' }]);
      expect(fs.existsSync(path.join(cwd, 'denied.txt'))).toBe(false);
      expect(JSON.stringify(kit.fake.requests.at(-1)!.body.input)).toContain('rejected by user');
      await p.close();
      // A new process resuming the thread asks again (thread/resume carries the policy too).
      const thread = (events.find((e) => e.type === 'init') as { continuation: string }).continuation;
      kit.fake.script({ exec: 'touch resumed.txt' }, { text: 'resumed' });
      const p2 = mk(dir, {}, 'ask');
      const again = run(p2.query({ prompt: 'again', cwd, systemContext: '', continuation: thread }));
      expect((await again.ev).at(-1)).toEqual({ type: 'result', text: 'resumed' });
      expect(again.asked.map((r) => r.summary)).toEqual(['touch resumed.txt']);
      expect(fs.existsSync(path.join(cwd, 'resumed.txt'))).toBe(true);
      await p2.close();
    }, 30_000);

    it("'ask': the turn timeout does not run while a person is being asked", async () => {
      const dir = mkAgent('ask-slow');
      const cwd = path.join(dir, 'agent');
      kit.fake.script({ exec: 'touch slow.txt' }, { text: 'after a while' });
      // The timeout counts from the turn's start (app-server start included, slow under load):
      // generous, and the answer comes well after it would have fired.
      const p = mk(dir, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '4000' }, 'ask');
      const q = p.query({ prompt: 'slowly', cwd, systemContext: '' });
      const ev = await answers(q, 1, (e) => {
        if (e.type === 'approval') setTimeout(() => q.answerApproval!(e.request.id, true), 6000);
      });
      expect(ev.at(-1)).toEqual({ type: 'result', text: 'after a while' });
      expect(fs.existsSync(path.join(cwd, 'slow.txt'))).toBe(true);
      await p.close();
    }, 30_000);

    it("'deny': no approval is asked, the command does not run, the turn ends with a result", async () => {
      const dir = mkAgent('deny');
      const cwd = path.join(dir, 'agent');
      kit.fake.script({ exec: 'touch never.txt' }, { text: 'refused' });
      const p = mk(dir, {}, 'deny');
      const { asked, ev } = run(p.query({ prompt: 'try', cwd, systemContext: '' }));
      const events = await ev;
      expect(asked).toEqual([]);
      expect(events.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'refused' }]);
      expect(fs.existsSync(path.join(cwd, 'never.txt'))).toBe(false);
      expect(JSON.stringify(kit.fake.requests.at(-1)!.body.input)).toContain('rejected by user');
      await p.close();
    }, 30_000);

    it("'ask': our own polyclaw MCP tools run without asking", async () => {
      const dir = mkAgent('ask-mcp');
      const host = new SessionQueue(path.join(dir, 'session'));
      const routing = { channelType: 'terminal', platformId: 'main', threadId: null };
      host.setMeta(sessionMeta({ assistantName: 'A', defaultRouting: routing }), [
        {
          name: 'team-room',
          kind: 'chat',
          routing: { channelType: 'slack', platformId: 'C1', threadId: null },
        },
      ]);
      kit.fake.script(
        { mcp: { server: 'polyclaw', tool: 'list_destinations', args: {} } },
        { text: 'listed' },
      );
      const p = mk(dir, {}, 'ask');
      const { asked, ev } = run(p.query({ prompt: 'list', cwd: path.join(dir, 'agent'), systemContext: '' }));
      const events = await ev;
      expect(asked).toEqual([]);
      expect(events.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'listed' }]);
      expect(JSON.stringify(kit.fake.requests.at(-1)!.body.input)).toContain('team-room');
      host.close();
      await p.close();
    }, 30_000);

    it("'ask': a group MCP server's tool call is put to the admin; allowed runs, denied is refused", async () => {
      const dir = mkAgent('ask-group-mcp');
      const server = writeEchoMcpServer(dir);
      const call = (text: string) => ({ mcp: { server: 'echo', tool: 'echo', args: { text } } });
      const p = mk(dir, mcpServersEnv([{ name: 'echo', command: process.execPath, args: [server] }]), 'ask');
      // Codex starts a group's MCP servers in the background: a call the model makes before the
      // server is listed fails as "unsupported" without any approval. Wait until the model sees it.
      const cwd = path.join(dir, 'agent');
      for (let i = 0; ; i++) {
        kit.fake.script({ text: 'ready' });
        await run(p.query({ prompt: 'warm up', cwd, systemContext: '' })).ev;
        if (JSON.stringify(kit.fake.requests.at(-1)!.body.tools ?? []).includes('"mcp__echo"')) break;
        if (i === 20) throw new Error('the echo MCP server never reached the model');
        await new Promise((r) => setTimeout(r, 200));
      }
      kit.fake.script(call('one'), call('two'), { text: 'both tried' });
      let n = 0;
      const { asked, ev } = run(
        p.query({ prompt: 'echo', cwd: path.join(dir, 'agent'), systemContext: '' }),
        () => (n++ === 0 ? [true] : [false, 'An admin denied this tool call.']),
      );
      expect((await ev).at(-1)).toEqual({ type: 'result', text: 'both tried' });
      expect(asked.map((r) => [r.tool, r.summary])).toEqual([
        ['mcp__echo__echo', '{"text":"one"}'],
        ['mcp__echo__echo', '{"text":"two"}'],
      ]);
      const input = JSON.stringify(kit.fake.requests.at(-1)!.body.input);
      expect(input).toContain('echoed one');
      expect(input).not.toContain('echoed two');
      expect(input).toContain('user rejected MCP tool call');
      await p.close();
    }, 30_000);

    it("'ask': abort while an approval waits ends the stream promptly; the command never runs", async () => {
      const dir = mkAgent('ask-abort');
      const cwd = path.join(dir, 'agent');
      kit.fake.script({ exec: 'touch late.txt' }, { text: 'unused' });
      const q = mk(dir, {}, 'ask').query({ prompt: 'go', cwd, systemContext: '' });
      let t0 = 0;
      const ev = await answers(q, 1, (e) => {
        if (e.type !== 'approval') return;
        t0 = Date.now();
        q.abort();
        q.answerApproval!(e.request.id, true); // too late: the abort already declined it
      });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(ev.some((e) => e.type === 'approval')).toBe(true);
      expect(ev.some((e) => e.type === 'result' || e.type === 'error')).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      expect(fs.existsSync(path.join(cwd, 'late.txt'))).toBe(false);
    }, 30_000);
  });
});

function findCodexPid(codexHome: string): number {
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
      if (env.includes(`CODEX_HOME=${codexHome}\0`)) return Number(p);
    } catch {
      continue;
    }
  }
  throw new Error('codex process not found');
}

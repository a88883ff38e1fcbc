/** Codex provider pieces without the binary: RPC transport (fake child), config.toml, AGENTS.md cap. */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fitSections, writeAgentsMd, AGENTS_MD_CAP } from '../src/providers/codex-agents-md.js';
import { CodexConfigError, renderConfig } from '../src/runner/providers/codex-config.js';
import { errorEvent } from '../src/runner/providers/codex-events.js';
import { applyNotification, createTurn } from '../src/runner/providers/codex-turn.js';
import { codexEnv } from '../src/runner/providers/codex-env.js';
import { CodexApprovals } from '../src/runner/providers/codex-approvals.js';
import { generatedImages } from '../src/runner/providers/codex-archive.js';
import { RpcClient, RpcClosedError, RpcError, RpcTimeoutError } from '../src/runner/providers/codex-rpc.js';
import { memoryLogger } from '../src/shared/log.js';

function fakeChild() {
  const child = Object.assign(new EventEmitter(), { stdin: new PassThrough(), stdout: new PassThrough() });
  const sent: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  child.stdin.on('data', (d: Buffer) =>
    d
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((l) => sent.push(JSON.parse(l))),
  );
  const say = (o: object | string) =>
    child.stdout.write((typeof o === 'string' ? o : JSON.stringify(o)) + '\n');
  return { child, sent, say };
}
const tick = () => new Promise((r) => setTimeout(r, 10));

describe('codex RPC transport', () => {
  it('matches responses, dispatches notifications, skips junk, answers or refuses server requests', async () => {
    const { child, sent, say } = fakeChild();
    const log = memoryLogger();
    const rpc = new RpcClient(child, log);
    const notes: string[] = [];
    rpc.onNotification = (m) => notes.push(m);
    rpc.onRequest = async (m) => {
      if (m === 'item/commandExecution/requestApproval') return { decision: 'accept' };
      throw new Error(`unknown ${m}`);
    };
    const p = rpc.request('thread/start', {});
    const bad = rpc.request('thread/resume', {});
    say('not json {');
    say({ method: 'turn/started', params: {} });
    say({ id: 2, error: { code: -1, message: 'no rollout found' } });
    say({ id: 1, result: { thread: { id: 't' } } });
    say({ id: 'r1', method: 'item/commandExecution/requestApproval', params: {} });
    say({ id: 'r2', method: 'weird/request', params: {} });
    await expect(p).resolves.toEqual({ thread: { id: 't' } });
    await expect(bad).rejects.toBeInstanceOf(RpcError);
    await tick();
    expect(notes).toEqual(['turn/started']);
    expect(sent.find((m) => m.id === 'r1')).toEqual({ id: 'r1', result: { decision: 'accept' } });
    expect(sent.find((m) => m.id === 'r2').error.message).toMatch(/unknown weird\/request/);
    expect(log.lines.some((l) => l.msg === 'skipping unparsable line from codex app-server')).toBe(true);
  });

  it('a server request the approvals do not know is refused with an error reply, and the transport goes on', async () => {
    const { child, sent, say } = fakeChild();
    const rpc = new RpcClient(child, memoryLogger());
    rpc.onRequest = new CodexApprovals({ policy: 'ask', trustedServers: [], cwd: '/', emit() {} }).handle;
    const notes: string[] = [];
    rpc.onNotification = (m) => notes.push(m);
    say({ id: 'r3', method: 'attestation/generate', params: {} });
    say({ method: 'turn/started', params: {} });
    await tick();
    expect(sent.find((m) => m.id === 'r3')?.error?.message).toMatch(/attestation\/generate/);
    expect(notes).toEqual(['turn/started']);
  });

  it('times out one request; exit rejects every pending request and tells close listeners the cause', async () => {
    const { child } = fakeChild();
    const rpc = new RpcClient(child, memoryLogger());
    await expect(rpc.request('slow', {}, 20)).rejects.toBeInstanceOf(RpcTimeoutError);
    const a = rpc.request('a', {});
    const b = rpc.request('b', {});
    let cause = '';
    rpc.onClose((e) => (cause = e.message));
    child.emit('exit', null, 'SIGKILL');
    await expect(a).rejects.toBeInstanceOf(RpcClosedError);
    await expect(b).rejects.toThrow(/signal SIGKILL/);
    expect(cause).toMatch(/exited \(signal SIGKILL\)/);
    await expect(rpc.request('c', {})).rejects.toBeInstanceOf(RpcClosedError);
  });
});

describe('config.toml', () => {
  const base = {
    model: 'm',
    baseUrl: 'http://127.0.0.1:1/openai/v1',
    approvalPolicy: 'never' as const,
    mcpServers: [],
  };
  it('writes the offline settings, escapes strings and renders MCP servers', () => {
    const t = renderConfig({
      ...base,
      model: 'we"ird\\model',
      effort: 'high',
      mcpServers: [
        {
          name: 'polyclaw',
          command: '/usr/bin/node',
          args: ['a "b"'],
          env: { POLYCLAW_SESSION_DIR: '/w/s' },
        },
      ],
    });
    expect(t).toContain('model = "we\\"ird\\\\model"');
    expect(t).toContain('model_reasoning_effort = "high"');
    expect(t).toContain('wire_api = "responses"');
    expect(t).toContain('plugins = false');
    expect(t).toContain('project_doc_max_bytes = 32768');
    expect(t).toContain('sandbox_mode = "danger-full-access"');
    expect(t).toContain('[mcp_servers.polyclaw]');
    expect(t).toContain('args = ["a \\"b\\""]');
    expect(t).toContain('POLYCLAW_SESSION_DIR = "/w/s"');
  });
  it('trusts the tools of a server marked approveTools (our own), and only those', () => {
    const server = (name: string, approveTools?: boolean) => ({
      name,
      command: 'n',
      args: [],
      env: {},
      approveTools,
    });
    const t = renderConfig({
      ...base,
      approvalPolicy: 'on-request',
      mcpServers: [server('polyclaw', true), server('github')],
    });
    expect(t).toContain('approval_policy = "on-request"');
    expect(t).toContain(
      '[mcp_servers.polyclaw]\ncommand = "n"\nargs = []\ndefault_tools_approval_mode = "approve"\n',
    );
    expect(t.match(/default_tools_approval_mode/g)).toHaveLength(1);
  });
  it('rejects newlines and unknown efforts with a clear error', () => {
    expect(() => renderConfig({ ...base, model: 'a\nmodel_provider = "evil"' })).toThrow(CodexConfigError);
    expect(() => renderConfig({ ...base, model: 'a\nb' })).toThrow(/model must be a single line/);
    expect(() => renderConfig({ ...base, effort: 'ultra' })).toThrow(/unknown reasoning effort "ultra"/);
  });
  it('codex env is an allowlist: no key-like variable but the gateway token under env_key', () => {
    const env = codexEnv(
      {
        PATH: '/bin',
        HOME: '/h',
        LC_ALL: 'C',
        OPENAI_API_KEY: 'sk-1',
        POLYCLAW_GATEWAY_TOKEN: 'tok',
        HTTPS_PROXY: 'http://p:tok@127.0.0.1:1',
        FOO: 'x',
      },
      { codexHome: '/h/.codex', gatewayToken: 'tok' },
    );
    expect(Object.keys(env).sort()).toEqual([
      'CODEX_HOME',
      'HOME',
      'HTTPS_PROXY',
      'LC_ALL',
      'PATH',
      'POLYCLAW_CODEX_KEY',
    ]);
  });
});

describe('AGENTS.md composition', () => {
  it('drops the largest optional sections over the cap, notes them, and logs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentsmd-'));
    const log = memoryLogger();
    const file = writeAgentsMd(
      path.join(dir, 'out', 'AGENTS.md'),
      {
        groupDir: dir,
        skills: ['pdf'],
        mcpServers: [
          { name: 'huge', instructions: 'x'.repeat(30_000) },
          { name: 'big', instructions: 'y'.repeat(5_000) },
          { name: 'small', instructions: 'use small wisely' },
        ],
      },
      log,
    );
    const text = fs.readFileSync(file, 'utf8');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(AGENTS_MD_CAP);
    expect(text).toContain('use small wisely');
    expect(text).toContain('yyyy');
    expect(text).toMatch(/Omitted for size[\s\S]*MCP server huge/);
    expect(text).toContain('(no memory index yet)');
    expect(log.lines.some((l) => l.msg === 'AGENTS.md over its cap: sections omitted')).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it('never exceeds the cap even when required sections alone are too big', () => {
    const r = fitSections([{ title: 'Memory', body: 'z'.repeat(40_000), optional: false }]);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(AGENTS_MD_CAP);
  });
});

describe('codex turn errors', () => {
  it('a stale thread is retried (the runner has cleared it, so the next try starts fresh); a refused key is not', () => {
    expect(errorEvent('thread not found: 0199')).toMatchObject({
      classification: 'stale-session',
      retryable: true,
    });
    expect(errorEvent('401 Unauthorized')).toMatchObject({ classification: 'auth', retryable: false });
  });
  it('a dropped model stream or connection, and codex giving up after its own attempts, are retried', () => {
    // What codex 0.169 sends (codexErrorInfo "other") when the connection drops mid-answer.
    for (const m of [
      'stream disconnected before completion: stream closed before response.completed',
      'stream disconnected before completion: Transport error: network error: error decoding response body',
      'stream disconnected before completion: error sending request',
    ])
      expect(errorEvent(m, 'other')).toMatchObject({ classification: 'crash', retryable: true });
    expect(errorEvent('exceeded retry limit', { responseTooManyFailedAttempts: {} })).toMatchObject({
      retryable: true,
    });
  });
});

describe('codex turn notifications', () => {
  it('a turn whose id is not known yet never takes a finished turn’s late completion as its own', async () => {
    // After a timeout codex sends the old turn's turn/completed before the reply to the next turn/start.
    const sink = { emit() {}, noteItem() {}, overTurns: new Set(['old']) };
    const t = createTurn('next', () => undefined);
    const completed = (id: string) => ({ threadId: 'th', turn: { id, status: 'interrupted', items: [] } });
    applyNotification(
      t,
      'turn/started',
      { threadId: 'th', turn: { id: 'old', status: 'inProgress', items: [] } },
      sink,
    );
    applyNotification(t, 'turn/completed', completed('old'), sink);
    expect(t.finished).toBe(false);
    expect(t.id).toBeNull();
    applyNotification(t, 'turn/completed', completed('new'), sink);
    expect(await t.done).toEqual({ kind: 'interrupted' });
  });
});

describe('codex generated images', () => {
  it('lists regular files only: a dangling or outward link neither fails the turn nor is attached', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-codex-img-'));
    try {
      const dir = path.join(home, 'generated_images', 't1');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'a.png'), 'png');
      fs.symlinkSync(path.join(home, 'gone.png'), path.join(dir, 'dangling.png'));
      fs.symlinkSync('/etc/hostname', path.join(dir, 'outward.png'));
      expect(generatedImages(home, 't1', 0)).toEqual([path.join(dir, 'a.png')]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

/**
 * Codex approvals without the binary: the request → decision mapping (triage), the per-query
 * desk (CodexApprovals) under each policy, and a conversation over a fake app-server that
 * declines a held request when the query aborts or the turn ends.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  CodexApprovals,
  codexApprovalPolicy,
  displayCommand,
  triage,
  UnsupportedRequestError,
  type Triage,
} from '../src/runner/providers/codex-approvals.js';
import { RpcClient } from '../src/runner/providers/codex-rpc.js';
import { CodexConversation } from '../src/runner/providers/codex-conversation.js';
import type { ApprovalPolicy } from '../src/shared/messages.js';
import { memoryLogger } from '../src/shared/log.js';
import type { ApprovalRequest, ProviderEvent } from '../src/shared/provider.js';

const ctx = { trustedServers: new Set(['polyclaw']) };
const decided = (t: Triage) => {
  if (t.kind !== 'decide') throw new Error(`expected a decision, got ${JSON.stringify(t)}`);
  return t;
};
const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

describe('codex approval mapping', () => {
  it('maps group policies onto config.toml and thread policies (untrusted is thread-only)', () => {
    expect(codexApprovalPolicy('bypass')).toEqual({ config: 'never', thread: 'never' });
    expect(codexApprovalPolicy('ask')).toEqual({ config: 'on-request', thread: 'untrusted' });
    expect(codexApprovalPolicy('deny')).toEqual({ config: 'on-request', thread: 'untrusted' });
  });

  it('a command: tool shell, the unwrapped command line, accept/decline', () => {
    const t = decided(
      triage(
        'item/commandExecution/requestApproval',
        { kind: 'command', itemId: 'c1', command: "/bin/bash -lc 'touch a.txt'", reason: 'needs network' },
        ctx,
      ),
    );
    expect([t.tool, t.summary]).toEqual(['shell', 'touch a.txt\n(needs network)']);
    expect(t.reply(true)).toEqual({ decision: 'accept' });
    expect(t.reply(false, 'no')).toEqual({ decision: 'decline' });
    expect(displayCommand("/bin/bash -lc 'echo it'\\''s'")).toBe("/bin/bash -lc 'echo it'\\''s'");
    const long = decided(triage('item/commandExecution/requestApproval', { command: 'x'.repeat(900) }, ctx));
    expect(long.summary).toHaveLength(501);
    expect(long.summary.endsWith('…')).toBe(true);
    const stdin = decided(triage('item/commandExecution/requestApproval', { kind: 'writeStdin' }, ctx));
    expect(stdin.tool).toMatch(/^shell/);
  });

  it('a patch: tool apply_patch, the changed files from the item codex started', () => {
    const t = decided(
      triage(
        'item/fileChange/requestApproval',
        { itemId: 'p1', reason: null },
        { ...ctx, itemSummary: (id) => (id === 'p1' ? 'add hello.txt' : undefined) },
      ),
    );
    expect([t.tool, t.summary]).toEqual(['apply_patch', 'add hello.txt']);
    expect(t.reply(true)).toEqual({ decision: 'accept' });
    expect(t.reply(false)).toEqual({ decision: 'decline' });
  });

  it('legacy approvals, permissions and MCP elicitations', () => {
    const legacy = decided(triage('execCommandApproval', { command: ['rm', '-rf', 'x'] }, ctx));
    expect(legacy.summary).toBe('rm -rf x');
    expect(legacy.reply(true)).toEqual({ decision: 'approved' });
    expect(legacy.reply(false, 'admin said no')).toEqual({
      decision: { denied: { rejection: 'admin said no' } },
    });
    const patch = decided(triage('applyPatchApproval', { fileChanges: { 'a.ts': {}, 'b.ts': {} } }, ctx));
    expect([patch.tool, patch.summary]).toEqual(['apply_patch', 'a.ts, b.ts']);

    const asked = { network: { enabled: true }, fileSystem: null };
    const perm = decided(
      triage('item/permissions/requestApproval', { permissions: asked, reason: 'fetch' }, ctx),
    );
    expect(perm.tool).toBe('permissions');
    expect(perm.summary).toContain('fetch');
    expect(perm.reply(true)).toEqual({ permissions: asked, scope: 'turn' });
    expect(perm.reply(false)).toEqual({ permissions: {}, scope: 'turn' });

    const toolCall = (serverName: string) => ({
      serverName,
      mode: 'form',
      message: `Allow the ${serverName} MCP server to run tool "go"?`,
      requestedSchema: { type: 'object', properties: {} },
      _meta: { codex_approval_kind: 'mcp_tool_call', tool_name: 'go', tool_params: { n: 1 } },
    });
    expect(triage('mcpServer/elicitation/request', toolCall('polyclaw'), ctx)).toEqual({
      kind: 'answer',
      result: { action: 'accept', content: {}, _meta: null },
    });
    const theirs = decided(triage('mcpServer/elicitation/request', toolCall('github'), ctx));
    expect([theirs.tool, theirs.summary]).toEqual(['mcp__github__go', '{"n":1}']);
    expect(theirs.reply(false)).toEqual({ action: 'decline', content: null, _meta: null });
    const form = decided(
      triage('mcpServer/elicitation/request', { serverName: 'db', mode: 'form', message: 'Drop it?' }, ctx),
    );
    expect([form.tool, form.summary]).toEqual(['mcp__db', 'Drop it?']);
  });

  it('user input and dynamic tools are answered without a decision; unknown methods are refused', () => {
    expect(triage('item/tool/requestUserInput', {}, ctx)).toEqual({
      kind: 'answer',
      result: { answers: {} },
    });
    expect(triage('item/tool/call', {}, ctx).kind).toBe('answer');
    expect(() => triage('weird/request', {}, ctx)).toThrow(UnsupportedRequestError);
  });
});

describe('CodexApprovals under each policy', () => {
  const cmd = { command: "/bin/bash -lc 'touch x'" };
  const mk = (policy: ApprovalPolicy) => {
    const asked: ApprovalRequest[] = [];
    const held: number[] = [];
    const a = new CodexApprovals({
      policy,
      trustedServers: ['polyclaw'],
      cwd: '/w',
      emit: (r) => asked.push(r),
      onHeld: (n) => held.push(n),
    });
    return { a, asked, held };
  };

  it("'bypass' accepts and 'deny' declines at once, asking nobody", async () => {
    const b = mk('bypass');
    await expect(b.a.handle('item/commandExecution/requestApproval', cmd)).resolves.toEqual({
      decision: 'accept',
    });
    const d = mk('deny');
    await expect(d.a.handle('item/commandExecution/requestApproval', cmd)).resolves.toEqual({
      decision: 'decline',
    });
    await expect(
      d.a.handle('mcpServer/elicitation/request', {
        serverName: 'polyclaw',
        _meta: { codex_approval_kind: 'mcp_tool_call', tool_name: 'send_message' },
      }),
    ).resolves.toMatchObject({ action: 'accept' });
    expect([...b.asked, ...d.asked]).toEqual([]);
  });

  it("'ask' holds the reply until answer(); a second answer and unknown ids are ignored", async () => {
    const { a, asked, held } = mk('ask');
    let reply: unknown = null;
    void a.handle('item/commandExecution/requestApproval', cmd).then((r) => (reply = r));
    await tick();
    expect(asked).toEqual([{ id: expect.any(String), tool: 'shell', summary: 'touch x' }]);
    expect(reply).toBeNull();
    expect(a.pending).toBe(1);
    a.answer('nope', false);
    a.answer(asked[0]!.id, true);
    a.answer(asked[0]!.id, false);
    await tick();
    expect(reply).toEqual({ decision: 'accept' });
    expect(held).toEqual([1, 0]);
  });

  it("'ask': a fileChange summary comes from the started item; declineAll and close decline the rest", async () => {
    const { a, asked } = mk('ask');
    a.noteItem(
      {
        type: 'fileChange',
        id: 'p1',
        changes: [
          { path: '/w/src/a.ts', kind: { type: 'update' } },
          { path: '/elsewhere/b.ts', kind: { type: 'add' } },
        ],
      },
      true,
    );
    const patch = a.handle('item/fileChange/requestApproval', { itemId: 'p1' });
    const shell = a.handle('item/commandExecution/requestApproval', cmd);
    await tick();
    expect(asked.map((r) => r.summary)).toEqual(['update src/a.ts, add /elsewhere/b.ts', 'touch x']);
    a.declineAll('the turn ended');
    await expect(patch).resolves.toEqual({ decision: 'decline' });
    await expect(shell).resolves.toEqual({ decision: 'decline' });
    a.close('gone');
    await expect(a.handle('item/commandExecution/requestApproval', cmd)).resolves.toEqual({
      decision: 'decline',
    });
    expect(asked).toHaveLength(2);
  });
});

/** A fake app-server: answers the handshake and turn/start, records what the client sends. */
function fakeServer() {
  const child = Object.assign(new EventEmitter(), { stdin: new PassThrough(), stdout: new PassThrough() });
  const sent: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const say = (o: object) => child.stdout.write(JSON.stringify(o) + '\n');
  child.stdin.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) {
      const m = JSON.parse(line);
      sent.push(m);
      if (m.method === 'initialize') say({ id: m.id, result: {} });
      if (m.method === 'thread/start') say({ id: m.id, result: { thread: { id: 'th1' } } });
      if (m.method === 'turn/start') say({ id: m.id, result: { turn: { id: 'tu1' } } });
      if (m.method === 'turn/interrupt') say({ id: m.id, result: {} });
    }
  });
  return { child, sent, say };
}

function conversation(policy: ApprovalPolicy) {
  const srv = fakeServer();
  const log = memoryLogger();
  const rpc = new RpcClient(srv.child, log);
  let killed = false;
  const conv = new CodexConversation(
    {
      connect: () => ({ rpc, kill: () => void (killed = true) }),
      log,
      cwd: '/w',
      model: 'm',
      systemContext: '',
      approval: policy,
      trustedServers: ['polyclaw'],
      turnTimeoutMs: 60_000,
    },
    'hello',
  );
  const events: ProviderEvent[] = [];
  const done = (async () => {
    for await (const e of conv.events) events.push(e);
  })();
  conv.start();
  return { ...srv, conv, events, done, killed: () => killed };
}

const askShell = { id: 'srv-1', method: 'item/commandExecution/requestApproval', params: { command: 'ls' } };
const reply = (sent: any[], id: string) => sent.find((m) => m.id === id && 'result' in m)?.result; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('CodexConversation with held approvals', () => {
  it('sends the thread policy, emits the approval and replies with the decision', async () => {
    const c = conversation('ask');
    await tick(30);
    expect(c.sent.find((m) => m.method === 'thread/start').params.approvalPolicy).toBe('untrusted');
    c.say(askShell);
    await tick(30);
    const ask = c.events.find((e) => e.type === 'approval') as { request: ApprovalRequest };
    expect(ask.request).toMatchObject({ tool: 'shell', summary: 'ls' });
    expect(reply(c.sent, 'srv-1')).toBeUndefined();
    c.conv.answerApproval(ask.request.id, true);
    await tick();
    expect(reply(c.sent, 'srv-1')).toEqual({ decision: 'accept' });
    c.say({
      method: 'turn/completed',
      params: { threadId: 'th1', turn: { id: 'tu1', status: 'completed' } },
    });
    c.conv.end();
    await c.done;
    expect(c.events.filter((e) => e.type === 'result')).toHaveLength(1);
  });

  it('abort interrupts the turn first, then declines the held request', async () => {
    const c = conversation('ask');
    await tick(30);
    c.say(askShell);
    await tick(30);
    c.conv.abort();
    await c.done;
    await tick();
    const i = c.sent.findIndex((m) => m.method === 'turn/interrupt');
    const r = c.sent.findIndex((m) => m.id === 'srv-1');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(r).toBeGreaterThan(i);
    expect(reply(c.sent, 'srv-1')).toEqual({ decision: 'decline' });
    expect(c.killed()).toBe(true);
  });

  it('a turn that ends (interrupted by codex) while a request is held still gets it declined', async () => {
    const c = conversation('ask');
    await tick(30);
    c.say(askShell);
    await tick(30);
    c.say({
      method: 'turn/completed',
      params: { threadId: 'th1', turn: { id: 'tu1', status: 'interrupted' } },
    });
    await tick();
    expect(reply(c.sent, 'srv-1')).toEqual({ decision: 'decline' });
    c.conv.end();
    await c.done;
    expect(c.events.at(-1)).toMatchObject({ type: 'error' });
  });

  it("'bypass' keeps approvalPolicy never and answers without an event", async () => {
    const c = conversation('bypass');
    await tick(30);
    expect(c.sent.find((m) => m.method === 'thread/start').params.approvalPolicy).toBe('never');
    c.say(askShell);
    await tick(30);
    expect(reply(c.sent, 'srv-1')).toEqual({ decision: 'accept' });
    expect(c.events.some((e) => e.type === 'approval')).toBe(false);
    c.conv.abort();
    await c.done;
  });
});

describe('CodexConversation on a process reused by the next query', () => {
  it("a late notice of the last query's turn is not taken by the next turn before it knows its id", async () => {
    // The server answers the second turn/start only after sending the first turn's late
    // turn/completed (as codex does after an interrupt).
    const child = Object.assign(new EventEmitter(), { stdin: new PassThrough(), stdout: new PassThrough() });
    const say = (o: object) => child.stdout.write(JSON.stringify(o) + '\n');
    let turns = 0;
    child.stdin.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        const m = JSON.parse(line);
        if (m.method === 'initialize') say({ id: m.id, result: {} });
        if (m.method === 'thread/start') say({ id: m.id, result: { thread: { id: 'th1' } } });
        if (m.method === 'thread/resume') say({ id: m.id, result: { thread: { id: 'th1' } } });
        if (m.method !== 'turn/start') continue;
        if (++turns === 1) {
          say({ id: m.id, result: { turn: { id: 'tu1' } } });
          say({
            method: 'turn/completed',
            params: { threadId: 'th1', turn: { id: 'tu1', status: 'completed' } },
          });
        } else {
          say({
            method: 'turn/completed',
            params: { threadId: 'th1', turn: { id: 'tu1', status: 'interrupted' } },
          });
          setTimeout(() => {
            say({ id: m.id, result: { turn: { id: 'tu2' } } });
            say({
              method: 'turn/completed',
              params: { threadId: 'th1', turn: { id: 'tu2', status: 'completed' } },
            });
          }, 20);
        }
      }
    });
    const log = memoryLogger();
    const conn = { rpc: new RpcClient(child, log), kill: () => {} };
    const run = async (prompt: string, continuation?: string) => {
      const conv = new CodexConversation(
        {
          connect: () => conn,
          log,
          cwd: '/w',
          model: 'm',
          systemContext: '',
          approval: 'bypass',
          trustedServers: ['polyclaw'],
          turnTimeoutMs: 60_000,
          ...(continuation ? { continuation } : {}),
        },
        prompt,
      );
      const events: ProviderEvent[] = [];
      conv.start();
      for await (const e of conv.events) {
        events.push(e);
        if (e.type === 'result' || e.type === 'error') conv.end();
      }
      return events.filter((e) => e.type === 'result' || e.type === 'error');
    };
    expect(await run('first')).toEqual([{ type: 'result', text: null }]);
    expect(await run('second', 'th1')).toEqual([{ type: 'result', text: null }]);
  });
});

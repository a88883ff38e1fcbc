/**
 * The group's approval policy with the REAL `opencode serve` binary against the fake Chat
 * Completions server (no sandbox: the provider's own contract, as in opencode-provider.test.ts).
 * One provider (= one server) per policy, each in its own group folder; a session queue makes
 * our MCP tool server (`polyclaw tools`) work, so "our tools never ask" is checked for real.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createOpencodeClient } from '@opencode-ai/sdk/v2/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { OpencodeProvider } from '../src/runner/providers/opencode.js';
import { OpencodeApprovals } from '../src/runner/providers/opencode-approvals.js';
import { buildConfig, permissionConfig } from '../src/runner/providers/opencode-config.js';
import { GROUP_FILE, readSettings } from '../src/runner/providers/opencode-settings.js';
import { opencodeBinary } from '../src/shared/agent-binaries.js';
import { toolServer } from '../src/runner/tools/config.js';
import type { ApprovalPolicy } from '../src/shared/messages.js';
import type { AgentQuery, ApprovalRequest, ProviderEvent } from '../src/shared/provider.js';
import { createLogger } from '../src/shared/log.js';
import { defaultScript, startFakeChat, type FakeChat } from './support/fake-chat-completions.js';
import { MAIN } from './support/cli.js';
import { sessionMeta, TERMINAL } from './support/meta.js';

// Long enough for a first turn on a busy machine (4 s was not, with the full suite beside it);
// the ask test waits past it.
const IDLE_MS = 8000;
const finalsOf = (evs: ProviderEvent[]) => evs.filter((e) => e.type === 'result' || e.type === 'error');
const approvalsOf = (evs: ProviderEvent[]) =>
  evs
    .filter((e): e is Extract<ProviderEvent, { type: 'approval' }> => e.type === 'approval')
    .map((e) => e.request);
const REJECTED = 'The user rejected permission to use this specific tool call with the following feedback: ';

/** One prompt's events; `onApproval` decides each request (it may answer later, or never). */
async function turn(
  q: AgentQuery,
  onApproval: (req: ApprovalRequest, q: AgentQuery) => void = () => undefined,
): Promise<ProviderEvent[]> {
  const out: ProviderEvent[] = [];
  for await (const ev of q.events) {
    out.push(ev);
    if (ev.type === 'approval') onApproval(ev.request, q);
    if (ev.type === 'result' || ev.type === 'error') q.end();
  }
  return out;
}

describe('opencode approval policy: config and bookkeeping', () => {
  const log = createLogger({ level: 'error' });

  it('maps the policy onto permission rules (catch-all first: OpenCode takes the last match)', () => {
    expect(permissionConfig('bypass', 'polyclaw')).toEqual({
      '*': 'allow',
      'polyclaw_*': 'allow',
      question: 'deny',
    });
    for (const policy of ['ask', 'deny'] as const) {
      const rules = permissionConfig(policy, 'polyclaw');
      expect(rules.question).toBe('deny');
      expect(Object.entries(rules)[0]).toEqual(['*', policy]);
      expect(rules).toMatchObject({ read: 'allow', grep: 'allow', task: 'allow', 'polyclaw_*': 'allow' });
      for (const gated of ['bash', 'edit', 'webfetch', 'external_directory'])
        expect(rules[gated]).toBeUndefined();
    }
  });

  it("reads the policy from the group's setting only, never from the folder or the environment", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-oc-settings-'));
    try {
      const env = { POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9', POLYCLAW_APPROVAL_POLICY: 'deny' };
      expect(readSettings({ agentDir: dir, env, binary: 'x' }).approval).toBe('bypass');
      expect(readSettings({ agentDir: dir, env, binary: 'x', approval: 'ask' }).approval).toBe('ask');
      fs.writeFileSync(path.join(dir, GROUP_FILE), JSON.stringify({ idleTimeoutMs: 9000 }));
      expect(readSettings({ agentDir: dir, env, binary: 'x', approval: 'ask' })).toMatchObject({
        approval: 'ask',
        idleTimeoutMs: 9000,
      });
      // An empty OPENCODE_BIN counts as unset: the installed binary, not "".
      expect(readSettings({ agentDir: dir, env: { ...env, OPENCODE_BIN: '' } }).binary).toBe(
        opencodeBinary(),
      );
      // The agent can write this file: a policy in it is refused loudly, never applied.
      fs.writeFileSync(path.join(dir, GROUP_FILE), JSON.stringify({ approval: 'allow' }));
      expect(() => readSettings({ agentDir: dir, env, binary: 'x', approval: 'ask' })).toThrow(
        /"approval" is no longer read from the group folder/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("drops a group MCP server whose tools would fall under our server's allow rule", () => {
    const settings = readSettings({
      agentDir: '/nonexistent',
      binary: 'x',
      approval: 'ask',
      env: {
        POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:9',
        POLYCLAW_MCP_SERVERS: JSON.stringify([
          { name: 'polyclaw_extra', command: 'x', args: [] },
          { name: 'polyclaw.x', command: 'x', args: [] },
          { name: 'polyclawish', command: 'x', args: [] },
          { name: 'docs', url: 'http://127.0.0.1:9/mcp' },
        ]),
      },
    });
    const config = buildConfig({
      settings,
      tapUrl: 'http://127.0.0.1:9',
      tools: toolServer({ sessionDir: '/s', agentDir: '/a', cliPath: MAIN }),
      instructions: [],
    });
    expect(Object.keys(config.mcp as object).sort()).toEqual(['docs', 'polyclaw', 'polyclawish']);
    // A question waits up to a day: OpenCode's 60 s MCP call timeout would cut it off.
    const ours = (config.mcp as Record<string, { timeout?: number }>).polyclaw!;
    expect(ours.timeout).toBeGreaterThanOrEqual(24 * 3600 * 1000);
  });

  it('answers each request once: the decision, else a reject when the turn ends; settled ones are forgotten', async () => {
    const replies: unknown[] = [];
    const client = {
      permission: {
        reply: async (r: unknown) => {
          replies.push(r);
          return { data: true };
        },
      },
    } as never;
    const a = new OpencodeApprovals(log);
    const counts: number[] = [];
    a.onChange(() => counts.push(a.size));
    for (const id of ['p1', 'p2', 'p3', 'p4']) a.hold(id, { client, directory: '/g', permission: 'bash' });
    expect(a.size).toBe(4);
    a.decide('p1', true);
    a.decide('p1', false, 'twice'); // ignored
    a.decide('p2', false, 'An admin denied this tool call.');
    a.replied('p3'); // answered elsewhere: no reply of ours
    await a.rejectAll();
    a.decide('p4', true); // too late: already rejected
    await a.rejectAll();
    expect(a.size).toBe(0);
    expect(counts).toEqual([1, 2, 3, 4, 3, 2, 1, 0]);
    expect(replies).toEqual([
      { requestID: 'p1', directory: '/g', reply: 'once' },
      { requestID: 'p2', directory: '/g', reply: 'reject', message: 'An admin denied this tool call.' },
      { requestID: 'p4', directory: '/g', reply: 'reject' },
    ]);
  });
});

describe('opencode approval policies (real opencode serve, fake model)', () => {
  let fake: FakeChat;
  let root: string;
  let host: SessionQueue;
  const providers: OpencodeProvider[] = [];

  const make = (policy: ApprovalPolicy) => {
    const agentDir = path.join(root, policy);
    fs.mkdirSync(agentDir, { recursive: true });
    const p = new OpencodeProvider(
      {
        sessionDir: host.dir,
        agentDir,
        model: 'fake-model',
        approval: policy,
        env: {
          PATH: process.env.PATH,
          POLYCLAW_GATEWAY_URL: fake.url,
          POLYCLAW_GATEWAY_TOKEN: 'pcgw-test-token',
          OPENCODE_IDLE_TIMEOUT_MS: String(IDLE_MS),
          // Never read: the policy is the group's setting, not the environment's.
          POLYCLAW_APPROVAL_POLICY: 'allow',
        },
      },
      { cliPath: MAIN, exitHook: false, log: createLogger({ level: 'warn' }) },
    );
    providers.push(p);
    return { p, agentDir };
  };
  const query = (p: OpencodeProvider, agentDir: string, prompt: string) =>
    p.query({ prompt, cwd: agentDir, systemContext: 'You are a test assistant.' });

  beforeAll(async () => {
    fake = await startFakeChat();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-oc-approvals-'));
    host = new SessionQueue(path.join(root, 'session'));
    host.setMeta(sessionMeta({ provider: 'opencode', approval: 'ask', defaultRouting: TERMINAL }), []);
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    host?.close();
    await fake?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  describe("'ask'", () => {
    let p: OpencodeProvider;
    let agentDir: string;
    beforeAll(() => ({ p, agentDir } = make('ask')));

    it('puts a bash call to a person; allowed after longer than the idle timeout, it runs and the turn finishes', async () => {
      const file = path.join(agentDir, 'ask.txt');
      let existedBeforeAnswer: boolean | null = null;
      const evs = await turn(query(p, agentDir, 'RUN: echo approved > ask.txt && cat ask.txt'), (req, q) => {
        // Waiting for the person outlasts the idle timeout: the turn must not be killed meanwhile.
        setTimeout(() => {
          existedBeforeAnswer = fs.existsSync(file);
          q.answerApproval!(req.id, true);
        }, IDLE_MS + 1500);
      });
      expect(approvalsOf(evs)).toEqual([
        {
          id: expect.stringMatching(/^per_/),
          tool: 'bash',
          summary: 'echo approved > ask.txt && cat ask.txt',
        },
      ]);
      expect(existedBeforeAnswer).toBe(false);
      expect(finalsOf(evs)).toEqual([{ type: 'result', text: 'TOOL RESULT SEEN: approved\n' }]);
      expect(fs.readFileSync(file, 'utf8')).toBe('approved\n');
      // The model was offered bash: 'ask' keeps the tools, only their calls wait.
      const offered = fake.requests
        .findLast((r) => r.body.tools?.length)!
        .body.tools!.map((t) => t.function.name);
      expect(offered).toEqual(expect.arrayContaining(['bash', 'edit', 'write', 'webfetch']));
    });

    it('denied: the command does not run, the model reads the reason, and the turn ends with a result', async () => {
      const evs = await turn(query(p, agentDir, 'RUN: echo nope > denied.txt'), (req, q) =>
        q.answerApproval!(req.id, false, 'An admin denied this tool call.'),
      );
      expect(approvalsOf(evs)).toMatchObject([{ tool: 'bash', summary: 'echo nope > denied.txt' }]);
      expect(finalsOf(evs)).toEqual([
        { type: 'result', text: `TOOL RESULT SEEN: ${REJECTED}An admin denied this tool call.` },
      ]);
      expect(fs.existsSync(path.join(agentDir, 'denied.txt'))).toBe(false);
    });

    it('never asks about our own MCP tools', async () => {
      const evs = await turn(query(p, agentDir, 'SEND: hello from opencode'));
      expect(approvalsOf(evs)).toEqual([]);
      expect(finalsOf(evs)).toEqual([
        { type: 'result', text: expect.stringMatching(/^TOOL RESULT SEEN: Sent as message/) },
      ]);
      expect(host.outboundSince(0).map((m) => m.content)).toContainEqual(
        expect.objectContaining({ text: 'hello from opencode' }),
      );
    });

    it("asks about a subagent's tool calls too", async () => {
      fake.script = (req) => {
        const msgs = req.body.messages;
        const last = msgs[msgs.length - 1];
        const user = JSON.stringify(msgs.filter((m) => m.role === 'user').pop()?.content ?? '');
        const task = /TASK: ([^"<]+)/.exec(user);
        if (req.body.tools?.length && last?.role === 'user' && task)
          return {
            toolCall: {
              name: 'task',
              args: { description: 'helper', prompt: `RUN: ${task[1]!.trim()}`, subagent_type: 'general' },
            },
          };
        return defaultScript(req);
      };
      try {
        const evs = await turn(query(p, agentDir, 'TASK: echo sub > sub.txt'), (req, q) =>
          q.answerApproval!(req.id, true),
        );
        expect(approvalsOf(evs)).toMatchObject([{ tool: 'bash', summary: 'echo sub > sub.txt' }]);
        expect(finalsOf(evs)).toEqual([
          { type: 'result', text: expect.stringContaining('TOOL RESULT SEEN') },
        ]);
        expect(fs.readFileSync(path.join(agentDir, 'sub.txt'), 'utf8')).toBe('sub\n');
      } finally {
        fake.script = defaultScript;
      }
    });

    it('abort while a request waits: the query ends, the request is rejected (none left pending), the next turn works', async () => {
      const q = query(p, agentDir, 'RUN: echo never > aborted.txt');
      const events: ProviderEvent[] = [];
      let asked!: () => void;
      const wasAsked = new Promise<void>((r) => (asked = r));
      const done = turn(q, () => asked()).then((evs) => events.push(...evs));
      await wasAsked;
      const client = createOpencodeClient({ baseUrl: p.runtime.server!.url, directory: agentDir });
      expect((await client.permission.list({ directory: agentDir })).data).toHaveLength(1);
      q.abort();
      await done;
      expect(finalsOf(events)).toEqual([]);
      // A late answer (the runner's desk closing) is ignored: the request was already rejected.
      q.answerApproval!(approvalsOf(events)[0]!.id, true);
      expect((await client.permission.list({ directory: agentDir })).data).toEqual([]);
      expect(fs.existsSync(path.join(agentDir, 'aborted.txt'))).toBe(false);
      expect(finalsOf(await turn(query(p, agentDir, 'after abort')))).toEqual([
        { type: 'result', text: 'echo: after abort' },
      ]);
      expect(fs.existsSync(path.join(agentDir, 'aborted.txt'))).toBe(false);
    });
  });

  it("'deny': no question, the command is not run, and the turn ends with a result", async () => {
    const { p, agentDir } = make('deny');
    const before = fake.requests.length;
    const evs = await turn(query(p, agentDir, 'RUN: echo no > deny.txt'), () => {
      throw new Error('no approval under deny');
    });
    expect(approvalsOf(evs)).toEqual([]);
    const [final] = finalsOf(evs);
    expect(final).toMatchObject({ type: 'result', text: expect.stringContaining("unavailable tool 'bash'") });
    expect(fs.existsSync(path.join(agentDir, 'deny.txt'))).toBe(false);
    // OpenCode leaves denied tools out of what the model is offered; ours and the read-only ones stay.
    const offered = fake.requests
      .slice(before)
      .find((r) => r.body.tools?.length)!
      .body.tools!.map((t) => t.function.name);
    for (const gone of ['bash', 'edit', 'write', 'webfetch']) expect(offered).not.toContain(gone);
    expect(offered).toEqual(expect.arrayContaining(['read', 'grep', 'glob', 'polyclaw_send_message']));
  });
});

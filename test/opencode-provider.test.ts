/**
 * The opencode provider with the REAL `opencode serve` binary against the fake Chat Completions
 * server (no sandbox: the provider's own contract). The fake stands where the gateway would be
 * (POLYCLAW_GATEWAY_URL), so the runner's tap and the /endpoints/NAME route are exercised too.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpencodeProvider, type OpencodeDeps } from '../src/runner/providers/opencode.js';
import type { AgentQuery, ProviderEvent } from '../src/shared/provider.js';
import { createLogger } from '../src/shared/log.js';
import { defaultScript, startFakeChat, type FakeChat } from './support/fake-chat-completions.js';
import { ROOT } from './support/cli.js';

const TOKEN = 'pcgw-test-token-123';

async function collect(q: AgentQuery, finals = 1): Promise<ProviderEvent[]> {
  const out: ProviderEvent[] = [];
  let n = 0;
  for await (const ev of q.events) {
    out.push(ev);
    if (ev.type === 'result' || ev.type === 'error') {
      n += 1;
      if (n === finals) q.end();
    }
  }
  return out;
}
const finalsOf = (evs: ProviderEvent[]) => evs.filter((e) => e.type === 'result' || e.type === 'error');
const sessionOf = (evs: ProviderEvent[]) =>
  (evs.find((e) => e.type === 'init') as { continuation: string }).continuation;

function groupsOf(pgid: number): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH')
        throw err;
    }
  }
  return pids;
}

/** The client's HTTP with each event stream passed through a wire the test can cut (a dropped connection). */
function cuttableFetch() {
  const wires: Array<TransformStreamDefaultController<Uint8Array>> = [];
  const wired: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = input instanceof Request ? input.url : String(input);
    if (new URL(url).pathname !== '/event' || !res.body) return res;
    const wire = new TransformStream<Uint8Array, Uint8Array>({ start: (c) => void wires.push(c) });
    return new Response(res.body.pipeThrough(wire), { status: res.status, headers: res.headers });
  };
  return { fetch: wired, cut: () => wires.splice(0).forEach((w) => w.error(new Error('connection reset'))) };
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });

describe('opencode provider (real opencode serve, fake model)', () => {
  let fake: FakeChat;
  let root: string;
  let agentDir: string;
  let sessionDir: string;
  let provider: OpencodeProvider;
  const make = (
    extra: Record<string, string> = {},
    personWaiting?: () => boolean,
    deps: Partial<OpencodeDeps> = {},
  ) =>
    new OpencodeProvider(
      {
        personWaiting,
        sessionDir,
        agentDir,
        model: 'fake-model',
        env: {
          PATH: process.env.PATH,
          POLYCLAW_GATEWAY_URL: fake.url,
          POLYCLAW_GATEWAY_TOKEN: TOKEN,
          POLYCLAW_MODEL_ENDPOINT: 'local',
          // Long enough for a cold first turn on 2 busy cores (plugin loading sends no events).
          OPENCODE_IDLE_TIMEOUT_MS: '6000',
          ...extra,
        },
      },
      {
        cliPath: path.join(ROOT, 'dist', 'cli', 'main.js'),
        exitHook: false,
        log: createLogger({ level: 'warn' }),
        ...deps,
      },
    );
  const ask = (p: OpencodeProvider, prompt: string, continuation?: string) =>
    collect(p.query({ prompt, continuation, cwd: agentDir, systemContext: 'You are a test assistant.' }));

  beforeAll(async () => {
    fake = await startFakeChat();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-oc-'));
    agentDir = path.join(root, 'agent');
    sessionDir = path.join(root, 'session');
    fs.mkdirSync(agentDir);
    fs.mkdirSync(sessionDir);
    provider = make();
  });
  afterAll(async () => {
    await provider?.close();
    await fake?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a model endpoint that keeps answering 429 ends the turn after the retries, classified quota', async () => {
    fake.script = () => ({ status: 429 });
    try {
      const p = make();
      try {
        const evs = await ask(p, 'anyone there?');
        expect(finalsOf(evs)).toEqual([
          expect.objectContaining({ type: 'error', retryable: true, classification: 'quota' }),
        ]);
      } finally {
        await p.close();
      }
    } finally {
      fake.script = defaultScript;
    }
  }, 60_000);

  it('answers a text turn with streamed deltas through the tap and the endpoint route', async () => {
    const evs = await ask(provider, 'hello there');
    const text = 'echo: hello there';
    expect(finalsOf(evs)).toEqual([{ type: 'result', text }]);
    expect(
      evs
        .filter((e) => e.type === 'delta')
        .map((e) => (e as { text: string }).text)
        .join(''),
    ).toBe(text);
    const req = fake.requests.find((r) => r.body.tools?.length)!;
    expect(req.path).toBe('/endpoints/local/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.body.stream).toBe(true);
    // Instructions arrive as a concrete file's content in the system prompt.
    expect(JSON.stringify(req.body.messages[0])).toContain('You are a test assistant.');
  });

  it('runs a bash tool round trip', async () => {
    const evs = await ask(provider, 'RUN: echo made-by-bash > bash.txt && cat bash.txt');
    expect(finalsOf(evs)).toEqual([{ type: 'result', text: 'TOOL RESULT SEEN: made-by-bash\n' }]);
    // The final step's text goes out as `reply` before the result (the session's idle).
    const reply = evs.findIndex((e) => e.type === 'reply');
    expect(evs[reply]).toEqual({ type: 'reply', text: 'TOOL RESULT SEEN: made-by-bash\n' });
    expect(reply).toBeLessThan(evs.findIndex((e) => e.type === 'result'));
    expect(evs).toContainEqual({ type: 'progress', message: 'tool: bash' });
    expect(fs.readFileSync(path.join(agentDir, 'bash.txt'), 'utf8')).toBe('made-by-bash\n');
    // The default policy is 'bypass': nobody is asked.
    expect(evs.filter((e) => e.type === 'approval')).toEqual([]);
    // OpenCode's own question tool (it would wait forever for an answer over its API) is not
    // offered (the model asks with our ask_user_question).
    const tools = (fake.requests.at(-1)!.body.tools ?? []).map((t) => t.function.name);
    expect(tools).toContain('bash');
    expect(tools).not.toContain('question');
  });

  it('reuses its session across turns and queues follow-ups for the next prompt', async () => {
    const q = provider.query({ prompt: 'first', cwd: agentDir, systemContext: 'You are a test assistant.' });
    q.push('second');
    const evs = await collect(q, 2);
    expect(finalsOf(evs)).toEqual([
      { type: 'result', text: 'echo: first' },
      { type: 'result', text: 'echo: second' },
    ]);
    const id = sessionOf(evs);
    const again = await ask(provider, 'third', id);
    expect(sessionOf(again)).toBe(id);
    const last = fake.requests[fake.requests.length - 1]!;
    const users = last.body.messages.filter((m) => m.role === 'user').map((m) => JSON.stringify(m.content));
    expect(users.join(' ')).toMatch(/first[\s\S]*second[\s\S]*third/);
  });

  it('resumes the session after a restart (new server, same group folder) and starts fresh on an unknown one', async () => {
    const first = await ask(provider, 'remember me');
    const id = sessionOf(first);
    const oldPid = provider.runtime.server!.pid;
    await provider.close();
    provider = make();
    const evs = await ask(provider, 'after restart', id);
    expect(sessionOf(evs)).toBe(id);
    expect(provider.runtime.server!.pid).not.toBe(oldPid);
    const users = fake.requests[fake.requests.length - 1]!.body.messages.filter((m) => m.role === 'user');
    expect(JSON.stringify(users)).toContain('remember me');
    await expect(ask(provider, 'x', 'ses_doesnotexist000000000000')).rejects.toSatisfy((e) =>
      provider.isSessionInvalid(e),
    );
  });

  it('ends a silent turn with a timeout error, resets the server, and the next turn works', async () => {
    const q = provider.query({ prompt: 'HANG', cwd: agentDir, systemContext: 'You are a test assistant.' });
    const pid = provider.runtime.server!.pid;
    q.push('still alive?');
    const evs = await collect(q, 2);
    const finals = finalsOf(evs);
    expect(finals[0]).toMatchObject({ type: 'error', classification: 'timeout' });
    expect((finals[0] as { message: string }).message).toMatch(/went quiet/);
    expect(finals[1]).toEqual({ type: 'result', text: 'echo: still alive?' });
    expect(provider.runtime.server!.pid).not.toBe(pid);
  });

  /** Dispose OpenCode's instance from outside: OpenCode then closes its event stream. */
  const closeEventStream = async () => {
    const { createOpencodeClient } = await import('@opencode-ai/sdk/v2/client');
    const client = createOpencodeClient({ baseUrl: provider.runtime.server!.url, directory: agentDir });
    const r = await client.instance.dispose({ directory: agentDir });
    expect(r.response?.status).toBe(200);
  };

  it('ends a turn at once, retryable, when the event stream drops under it, and the next turn works on a fresh server', async () => {
    const wire = cuttableFetch();
    await provider.close();
    provider = make({}, undefined, { fetch: wire.fetch });
    const before = fake.requests.length;
    // OpenCode answers after 1.5 s, but nobody hears it once the stream is cut.
    const q = provider.query({
      prompt: 'SLOW: 1500',
      cwd: agentDir,
      systemContext: 'You are a test assistant.',
    });
    q.push('after the stream closed');
    const evs: ProviderEvent[] = [];
    let firstFinalAt = 0;
    const done = (async () => {
      for await (const e of q.events) {
        evs.push(e);
        if (e.type !== 'result' && e.type !== 'error') continue;
        firstFinalAt ||= Date.now();
        if (finalsOf(evs).length === 2) q.end();
      }
    })();
    // The model call is under way: the turn is in flight.
    while (!fake.requests.slice(before).some((r) => /SLOW/.test(JSON.stringify(r.body.messages))))
      await new Promise((r) => setTimeout(r, 50));
    const pid = provider.runtime.server!.pid;
    const cutAt = Date.now();
    wire.cut();
    await done;
    const finals = finalsOf(evs);
    expect(finals[0]).toMatchObject({ type: 'error', retryable: true, classification: 'crash' });
    expect((finals[0] as { message: string }).message).toMatch(/event stream closed/);
    // Not the 6 s idle timeout.
    expect(firstFinalAt - cutAt).toBeLessThan(2000);
    expect(finals[1]).toEqual({ type: 'result', text: 'echo: after the stream closed' });
    expect(provider.runtime.server!.pid).not.toBe(pid);
  }, 60_000);

  it('a server whose event stream closed between queries is restarted by the next one', async () => {
    await ask(provider, 'warm');
    const pid = provider.runtime.server!.pid;
    await closeEventStream();
    await new Promise((r) => setTimeout(r, 300));
    // Not a turn that waits out the idle timeout on a stream nobody reads any more.
    expect(finalsOf(await ask(provider, 'after a quiet close'))).toEqual([
      { type: 'result', text: 'echo: after a quiet close' },
    ]);
    expect(provider.runtime.server!.pid).not.toBe(pid);
  }, 60_000);

  it('a question of ours waiting for a person is not idleness: the idle timer waits on', async () => {
    // Asked at each expiry: a person is waiting at the first, no longer at the second.
    let asked = 0;
    await provider.close();
    provider = make({}, () => ++asked === 1);
    const q = provider.query({ prompt: 'HANG', cwd: agentDir, systemContext: 'You are a test assistant.' });
    const finals = finalsOf(await collect(q, 1));
    expect(asked).toBe(2);
    expect(finals[0]).toMatchObject({ type: 'error', classification: 'timeout' });
  }, 60_000);

  it('abort ends a running turn promptly with no answer, and the server keeps working', async () => {
    const q = provider.query({
      prompt: 'SLOW: 6000',
      cwd: agentDir,
      systemContext: 'You are a test assistant.',
    });
    const events: ProviderEvent[] = [];
    const done = (async () => {
      for await (const e of q.events) events.push(e);
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    q.abort();
    await done;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(events.some((e) => e.type === 'result' || e.type === 'error')).toBe(false);
    expect(finalsOf(await ask(provider, 'after abort'))).toEqual([
      { type: 'result', text: 'echo: after abort' },
    ]);
  });

  it('does not trip the idle timer while a slow endpoint streams before its first token', async () => {
    const evs = await ask(provider, 'SLOW: 4000');
    expect(finalsOf(evs)).toEqual([{ type: 'result', text: 'echo: SLOW: 4000' }]);
  });

  it('gives the server no key-like variable and kills its whole process group on stop', async () => {
    await ask(provider, 'ping');
    const pid = provider.runtime.server!.pid;
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    const names = environ.map((e) => e.slice(0, e.indexOf('=')));
    expect(names.filter((n) => /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i.test(n))).toEqual([]);
    expect(environ.join('\n')).not.toContain(TOKEN);
    const members = groupsOf(pid);
    expect(members.length).toBeGreaterThan(0);
    const port = Number(new URL(provider.runtime.server!.url).port);
    await provider.close();
    expect(groupsOf(pid)).toEqual([]);
    expect(await portFree(port)).toBe(true);
    provider = make();
  });
});

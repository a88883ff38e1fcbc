/**
 * The direct side of the Claude bench: the SDK's query() run in this process with Polyclaw's
 * own Claude setup (provider options, composed CLAUDE.md, our MCP tool server) but the model
 * URL straight at the fake, and the tests' fake Anthropic server loaded from test/support.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import ts from 'typescript';
import { query } from '@anthropic-ai/claude-agent-sdk';
import { SessionQueue } from '../../dist/host/session-queue.js';
import { composeClaudeMd, FRAGMENTS_DIR } from '../../dist/providers/claude-md.js';
import { systemContext } from '../../dist/runner/formatter.js';
import { ClaudeProvider } from '../../dist/runner/providers/claude.js';
import { RunnerQueue } from '../../dist/runner/session-io.js';
import { MAIN, ROOT } from './host.mjs';

/**
 * The tests' fake Anthropic server (node builtins only), transpiled with its relative imports
 * (test/support/http-kit.ts) to temp modules.
 */
export async function loadFake(dir) {
  for (const name of ['http-kit', 'fake-anthropic']) {
    const src = fs.readFileSync(path.join(ROOT, 'test/support', `${name}.ts`), 'utf8');
    const out = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    fs.writeFileSync(path.join(dir, `${name}.js`), out);
  }
  return (await import(path.join(dir, 'fake-anthropic.js'))).startFakeAnthropic();
}

/** One user message for the SDK's streaming input. */
const userMsg = (text) => ({
  type: 'user',
  message: { role: 'user', content: text },
  parent_tool_use_id: null,
  priority: 'later',
});

/** A push-fed input stream. */
function inputChannel() {
  const items = [];
  let wake = null;
  let closed = false;
  return {
    push(m) {
      items.push(m);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length) yield items.shift();
        else if (closed) return;
        else await new Promise((r) => (wake = r));
        wake = null;
      }
    },
  };
}

/**
 * The direct side's setup is Polyclaw's own: the provider's options (offline env, preset system
 * prompt + runtime context, our MCP tool server on a session dir of its own, disallowed tools)
 * and the composed CLAUDE.md with its fragments, but the model URL straight at the fake.
 */
export function directSetup(dir, fakeUrl) {
  const agent = path.join(dir, 'agent');
  const session = path.join(dir, 'session');
  new SessionQueue(session).close();
  new RunnerQueue(session).close();
  const md = composeClaudeMd({ mdDir: path.join(dir, 'md'), groupDir: agent });
  fs.copyFileSync(md.claudeMd, path.join(agent, 'CLAUDE.md'));
  fs.cpSync(md.fragmentsDir, path.join(agent, FRAGMENTS_DIR), { recursive: true });
  const provider = new ClaudeProvider({
    sessionDir: session,
    agentDir: agent,
    model: 'fake-model',
    env: {
      PATH: process.env.PATH,
      HOME: agent,
      POLYCLAW_GATEWAY_URL: fakeUrl,
      POLYCLAW_GATEWAY_TOKEN: 'dummy',
    },
  });
  const ctx = systemContext({ assistantName: 'Assistant', timezone: 'UTC', destinations: [] });
  return (resume) => {
    const o = provider.options({ prompt: '', cwd: agent, systemContext: ctx, continuation: resume });
    o.mcpServers.polyclaw.args[0] = MAIN; // options() names the runner's own entry point (argv[1])
    delete o.stderr;
    return o;
  };
}

const PING = '<message seq="1" from="bench" time="now">ping</message>';

/** A live query: turn() pushes 'ping' and resolves with the ms until its result. */
export async function warmSession(options) {
  const input = inputChannel();
  const q = query({ prompt: input, options: options() });
  const it = q[Symbol.asyncIterator]();
  let sessionId = null;
  /** Resolves with the ms until the result and until the final message's end (message_stop). */
  const turn = async () => {
    const t0 = performance.now();
    let stop = NaN;
    input.push(userMsg(PING));
    for (;;) {
      const { value, done } = await it.next();
      if (done) throw new Error('the warm query ended');
      sessionId ??= value.session_id ?? null;
      if (value.type === 'stream_event' && value.event.type === 'message_stop') stop = performance.now() - t0;
      if (value.type === 'result') {
        if (value.result !== 'echo: ping') throw new Error(`unexpected result: ${value.result}`);
        return { ms: performance.now() - t0, stop };
      }
    }
  };
  return { turn, sessionId: () => sessionId, close: () => (input.close(), q.close()) };
}

/** A new query() for one turn, resuming `resume`; resolves with the ms until its result. */
export async function perTurn(options, resume) {
  const t0 = performance.now();
  const input = inputChannel();
  input.push(userMsg(PING));
  const q = query({ prompt: input, options: options(resume) });
  try {
    for await (const m of q) {
      if (m.type === 'result') {
        if (m.result !== 'echo: ping') throw new Error(`unexpected result: ${m.result}`);
        return performance.now() - t0;
      }
    }
    throw new Error('the per-turn query ended without a result');
  } finally {
    input.close();
    q.close();
  }
}

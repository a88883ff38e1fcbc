#!/usr/bin/env node
/**
 * Claude provider bench.
 *
 * What it measures: a trivial Claude turn (one short text answer, "echo: ping", from the fake
 * Anthropic Messages server of the tests on 127.0.0.1), interleaved run by run so machine
 * noise hits every path alike:
 *   direct-warm     — one live SDK query() in streaming-input mode: push a user message,
 *                     wait for its `result` (the least a client of a warm Claude Code does);
 *                     the time to its final message's end (stream event message_stop) is
 *                     reported too: the CLI emits `result` ~4 ms after it;
 *   direct-per-turn — a new query() per turn resuming the same session (a new CLI process per
 *                     batch, which Polyclaw avoids by keeping the session's CLI warm);
 *   polyclaw        — a persistent terminal client on the admin socket of a running host:
 *                     chat.send → router → inbound queue → warm bwrap sandbox → runner → the
 *                     session's warm CLI → forwarder → gateway /endpoints/NAME → fake → reply
 *                     (committed at the final message's end) → delivery → reply event.
 * The direct paths run Polyclaw's own Claude setup (provider options, composed CLAUDE.md, our
 * MCP tool server) with the model URL straight at the fake: no host, queues, sandbox or gateway.
 * The first runs of each path are discarded. Also reports the cold start of a session: the
 * first message to a new group (sandbox start + runner + CLI + first turn).
 * `--runs N` (default 15), `--cold N` (default 3), `--json`. Run `npm run build` first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { query } from '@anthropic-ai/claude-agent-sdk';
import { SessionQueue } from '../dist/host/session-queue.js';
import { composeClaudeMd, FRAGMENTS_DIR } from '../dist/providers/claude-md.js';
import { systemContext } from '../dist/runner/formatter.js';
import { ClaudeProvider } from '../dist/runner/providers/claude.js';
import { RunnerQueue } from '../dist/runner/session-io.js';
import { chatTurn } from './lib/admin-client.mjs';
import { MAIN, ROOT, startBenchHost } from './lib/host.mjs';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    cold: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const COLD = Number(args.cold);
const WARMUP = 2;
const SETTLE_MS = 500;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The tests' fake Anthropic server (node builtins only), transpiled with its relative imports
 * (test/support/http-kit.ts) to temp modules.
 */
async function loadFake(dir) {
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
function directSetup(dir, fakeUrl) {
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
async function warmSession(options) {
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
async function perTurn(options, resume) {
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

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const stats = (xs) => ({ p50: pct(xs, 50), p99: pct(xs, 99) });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-claude-'));
fs.mkdirSync(path.join(tmp, 'agent'), { recursive: true });
const fake = await loadFake(tmp);
const host = await startBenchHost();
try {
  await host.group('cl', 'claude', fake.url, 'anthropic');
  const options = directSetup(tmp, fake.url);
  const warm = await warmSession(options);
  const direct = [];
  const directStop = [];
  const fresh = [];
  const poly = [];
  try {
    for (let i = 0; i < RUNS + WARMUP; i++) {
      // Alternate which warm path goes first; the per-turn query goes last and its CLI (and MCP
      // server) get time to exit, so their teardown does not land on the next measurement.
      const polyTurn = () => chatTurn(host.client, 'cl', 'ping', 60_000);
      let d, p;
      if (i % 2) [p, d] = [await polyTurn(), await warm.turn()];
      else [d, p] = [await warm.turn(), await polyTurn()];
      if (p.text !== 'echo: ping') throw new Error(`unexpected reply: ${p.text}`);
      const f = await perTurn(options, warm.sessionId());
      await sleep(SETTLE_MS);
      if (i >= WARMUP) {
        direct.push(d.ms);
        directStop.push(d.stop);
        fresh.push(f);
        poly.push(p.ms);
      }
    }
  } finally {
    warm.close();
  }
  // Same setup on both sides: the direct requests (route /anthropic) carry our MCP tools too.
  const directReq = fake
    .messages()
    .filter((q) => q.url.startsWith('/anthropic/'))
    .at(-1);
  if (!directReq?.body.tools.some((t) => t.name === 'mcp__polyclaw__send_message'))
    throw new Error('the direct query did not get our MCP tool server');
  // Cold start of a session: the first message to a brand-new group (no sandbox yet).
  const cold = [];
  for (let i = 0; i < COLD; i++) {
    const name = `cold${i}`;
    await host.group(name, 'claude', fake.url, 'anthropic');
    const p = await chatTurn(host.client, name, 'ping', 60_000);
    cold.push(p.ms);
  }
  const r = {
    runs: RUNS,
    directWarm: stats(direct),
    directFinalMessage: stats(directStop),
    directPerTurn: stats(fresh),
    polyclaw: stats(poly),
    cold: { runs: COLD, p50: pct(cold, 50), max: Math.max(...cold) },
  };
  r.ratio = r.polyclaw.p50 / r.directWarm.p50;
  r.ratioFinalMessage = r.polyclaw.p50 / r.directFinalMessage.p50;
  r.ratioPerTurn = r.polyclaw.p50 / r.directPerTurn.p50;
  if (args.json) console.log(JSON.stringify(r));
  else {
    const f = (x) => `${x.toFixed(0)} ms`;
    console.log(`claude turn, ${RUNS} interleaved warm runs`);
    console.log(`  direct, live query()      p50 ${f(r.directWarm.p50)}  p99 ${f(r.directWarm.p99)}`);
    console.log(
      `    … to its final message's end p50 ${f(r.directFinalMessage.p50)}  p99 ${f(r.directFinalMessage.p99)}`,
    );
    console.log(`  direct, query() per turn  p50 ${f(r.directPerTurn.p50)}  p99 ${f(r.directPerTurn.p99)}`);
    console.log(`  polyclaw                  p50 ${f(r.polyclaw.p50)}  p99 ${f(r.polyclaw.p99)}`);
    console.log(`  ratio vs live query (p50)     ${r.ratio.toFixed(2)}  (target <= 1.15)`);
    console.log(`  ratio vs live query's final message end (p50) ${r.ratioFinalMessage.toFixed(2)}`);
    console.log(`  ratio vs query per turn (p50) ${r.ratioPerTurn.toFixed(2)}`);
    if (COLD > 0)
      console.log(
        `  cold start of a session (${COLD} new groups): p50 ${f(r.cold.p50)}  max ${f(r.cold.max)}`,
      );
  }
} finally {
  await host.stop();
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}

#!/usr/bin/env node
/**
 * Codex provider bench.
 *
 * What it measures: a trivial warm Codex turn (one short text answer from a fake Responses
 * server on 127.0.0.1) two ways, interleaved run by run so machine noise hits both alike:
 *   direct   — one running `codex app-server` with a loaded thread: turn/start, wait for
 *              turn/completed (the least any client of a warm codex must do per turn);
 *   polyclaw — a terminal client on the admin socket of a running host: chat.send → router →
 *              inbound queue → warm bwrap sandbox → runner → the same warm app-server →
 *              gateway /endpoints/NAME → fake model → outbound queue → delivery → reply event.
 * Both sides run the same config.toml (model provider, our MCP tool server); warm = both keep
 * their processes; the first runs of each path are discarded. Prints
 * p50/p99 per path and the p50 ratio (target ≤ 1.15). `--runs N` (default 15), `--json`.
 * Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chatTurn } from './lib/admin-client.mjs';
import { startBenchHost } from './lib/host.mjs';
import { SessionQueue } from '../dist/host/session-queue.js';
import { renderConfig } from '../dist/runner/providers/codex-config.js';
import { toolServer } from '../dist/runner/tools/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(
  ROOT,
  'node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex',
);
const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, json: { type: 'boolean', default: false } },
});
const RUNS = Number(args.runs);
const WARMUP = 2;

function fakeModel() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (type, d) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...d })}\n\n`);
      const item = {
        type: 'message',
        id: 'm1',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'pong', annotations: [] }],
      };
      send('response.created', { response: { id: 'r1' } });
      send('response.output_item.added', {
        output_index: 0,
        item: { ...item, content: [], status: 'in_progress' },
      });
      send('response.output_text.delta', { item_id: 'm1', output_index: 0, content_index: 0, delta: 'pong' });
      send('response.output_item.done', { output_index: 0, item });
      send('response.completed', {
        response: {
          id: 'r1',
          status: 'completed',
          output: [item],
          usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 },
        },
      });
      res.end();
    });
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r({ server, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

/** A warm direct session: one app-server, initialized, with a thread; turn() times one turn. */
async function directSession(home, cwd) {
  const c = spawn(BIN, ['app-server', '--listen', 'stdio://'], {
    cwd,
    env: { PATH: process.env.PATH, HOME: cwd, CODEX_HOME: home, POLYCLAW_CODEX_KEY: 'x' },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const rl = readline.createInterface({ input: c.stdout });
  let id = 0;
  const waiting = new Map();
  let onDone = null;
  rl.on('line', (l) => {
    const m = JSON.parse(l);
    if (m.id !== undefined && !m.method) waiting.get(m.id)?.(m);
    else if (m.method === 'turn/completed') onDone?.(m);
  });
  const req = (method, params) =>
    new Promise((r) => {
      waiting.set(++id, r);
      c.stdin.write(JSON.stringify({ id, method, params }) + '\n');
    });
  await req('initialize', {
    clientInfo: { name: 'bench', title: 'bench', version: '0' },
    capabilities: { experimentalApi: true },
  });
  c.stdin.write(JSON.stringify({ method: 'initialized' }) + '\n');
  const common = { cwd, approvalPolicy: 'never', sandbox: 'danger-full-access', model: 'fake-model' };
  const tid = (await req('thread/start', common)).result.thread.id;
  return {
    async turn() {
      const t0 = performance.now();
      const done = new Promise((r) => (onDone = r));
      await req('turn/start', { threadId: tid, input: [{ type: 'text', text: 'ping', text_elements: [] }] });
      await done;
      return performance.now() - t0;
    },
    close: () => c.kill(),
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const model = await fakeModel();
const benchHome = path.join(ROOT, '.bench-codex'); // CODEX_HOME outside /tmp (FINDINGS §A)
fs.rmSync(benchHome, { recursive: true, force: true });
fs.mkdirSync(path.join(benchHome, 'cwd'), { recursive: true });
// The direct side gets the same agent config Polyclaw writes, including our MCP tool server
// (over a session dir of its own), so the comparison isolates what Polyclaw adds.
const directSessionDir = path.join(benchHome, 'session');
const q = new SessionQueue(directSessionDir);
q.setMeta(
  {
    sessionId: 'bench',
    agentGroup: 'bench',
    provider: 'codex',
    model: 'fake-model',
    effort: null,
    endpoint: null,
    assistantName: 'Bench',
    timezone: 'UTC',
    defaultRouting: null,
  },
  [],
);
q.close();
fs.writeFileSync(
  path.join(benchHome, 'config.toml'),
  renderConfig({
    model: 'fake-model',
    effort: undefined,
    baseUrl: `${model.url}/v1`,
    approvalPolicy: 'never',
    mcpServers: [
      toolServer({
        sessionDir: directSessionDir,
        agentDir: path.join(benchHome, 'cwd'),
        cliPath: path.join(ROOT, 'dist/cli/main.js'),
      }),
    ],
  }),
);
const host = await startBenchHost();
try {
  await host.group('cx', 'codex', `${model.url}/v1`);
  const direct = [],
    poly = [];
  const session = await directSession(benchHome, path.join(benchHome, 'cwd'));
  const client = host.client;
  try {
    for (let i = 0; i < RUNS + WARMUP; i++) {
      const d = await session.turn();
      const p = await chatTurn(client, 'cx', 'ping');
      if (p.text !== 'pong') throw new Error(`unexpected reply: ${p.text}`);
      if (i >= WARMUP) {
        direct.push(d);
        poly.push(p.ms);
      }
    }
  } finally {
    session.close();
  }
  const r = {
    runs: RUNS,
    direct: { p50: pct(direct, 50), p99: pct(direct, 99) },
    polyclaw: { p50: pct(poly, 50), p99: pct(poly, 99) },
  };
  r.ratio = r.polyclaw.p50 / r.direct.p50;
  if (args.json) console.log(JSON.stringify(r));
  else {
    const f = (x) => `${x.toFixed(0)} ms`;
    console.log(`codex turn, ${RUNS} interleaved warm runs`);
    console.log(`  direct    p50 ${f(r.direct.p50)}  p99 ${f(r.direct.p99)}`);
    console.log(`  polyclaw  p50 ${f(r.polyclaw.p50)}  p99 ${f(r.polyclaw.p99)}`);
    console.log(`  ratio (p50) ${r.ratio.toFixed(2)}  (target <= 1.15)`);
  }
} finally {
  await host.stop();
  model.server.close();
  fs.rmSync(benchHome, { recursive: true, force: true });
}

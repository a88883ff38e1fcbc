// OpenCode overhead: cold start (server ready) and a trivial warm turn, on the same fake Chat
// Completions model on 127.0.0.1, three ways, interleaved turn by turn (order rotating, a pause
// between paths):
//   direct   — `opencode serve` + the SDK, model base URL straight at the fake;
//   provider — Polyclaw's opencode provider alone (tap + SDK + event mapping);
//   polyclaw — the whole product: an admin-socket chat client → host → warm bwrap sandbox →
//              runner → provider → opencode → gateway → fake, and the reply back.
// Medians, p50/p99 and the ratios to direct are printed. Needs `npm run build` first.
//   node bench/opencode.mjs [--cold 5] [--turns 30]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createOpencodeClient } from '@opencode-ai/sdk/v2/client';
import { OpencodeProvider } from '../dist/runner/providers/opencode.js';
import { freePort } from '../dist/runner/providers/opencode-server.js';
import { prepareStateDirs, serverEnv } from '../dist/runner/providers/opencode-config.js';
import { opencodeBinary } from '../dist/shared/agent-binaries.js';
import { createLogger } from '../dist/shared/log.js';
import { chatTurn } from './lib/admin-client.mjs';
import { startBenchHost } from './lib/host.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const COLD = arg('cold', 5);
const TURNS = arg('turns', 30);
const SETTLE_MS = 200;
const log = createLogger({ level: 'error' });
const ROOT = path.resolve(import.meta.dirname, '..');

// Minimal fake model: every request streams "ok" as two deltas, with usage.
const fake = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const c = (delta, finish = null) =>
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(
      c({ role: 'assistant', content: '' }) + c({ content: 'o' }) + c({ content: 'k' }) + c({}, 'stop'),
    );
    res.end(
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'fake-model', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}\n\ndata: [DONE]\n\n`,
    );
  });
});
await new Promise((r) => fake.listen(0, '127.0.0.1', r));
const fakeUrl = `http://127.0.0.1:${fake.address().port}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-oc-'));

// ---- direct: opencode serve + SDK, the FINDINGS settings, model base URL straight at the fake
async function directStart() {
  const dir = path.join(tmp, 'direct');
  fs.mkdirSync(dir, { recursive: true });
  const dirs = prepareStateDirs(path.join(dir, '.state'));
  const config = {
    autoupdate: false,
    snapshot: false,
    share: 'disabled',
    permission: 'allow',
    enabled_providers: ['fake'],
    model: 'fake/fake-model',
    small_model: 'fake/fake-model',
    provider: {
      fake: {
        npm: '@ai-sdk/openai-compatible',
        options: { baseURL: `${fakeUrl}/v1`, apiKey: 'dummy' },
        models: { 'fake-model': { tool_call: true, limit: { context: 128000, output: 4096 } } },
      },
    },
  };
  const env = serverEnv({ dirs, config, runnerEnv: process.env });
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(opencodeBinary(), ['serve', `--port=${port}`, '--hostname=127.0.0.1'], {
    cwd: dir,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) resolve();
    });
  });
  const client = createOpencodeClient({ baseUrl: `http://127.0.0.1:${port}`, directory: dir });
  const ac = new AbortController();
  const sub = await client.event.subscribe({ directory: dir }, { signal: ac.signal, sseMaxRetryAttempts: 0 });
  const it = sub.stream[Symbol.asyncIterator]();
  for (;;) if ((await it.next()).value?.type === 'server.connected') break;
  const ready = performance.now() - t0;
  const session = (await client.session.create({ directory: dir })).data.id;
  return {
    ready,
    async turn(text) {
      const t = performance.now();
      await client.session.promptAsync({
        sessionID: session,
        directory: dir,
        model: { providerID: 'fake', modelID: 'fake-model' },
        parts: [{ type: 'text', text }],
      });
      let busy = false;
      for (;;) {
        const ev = (await it.next()).value;
        if (ev?.properties?.sessionID !== session) continue;
        if (ev.type === 'session.status' && ev.properties.status?.type === 'busy') busy = true;
        if (ev.type === 'session.idle' && busy) break;
      }
      return performance.now() - t;
    },
    async stop() {
      ac.abort();
      process.kill(-child.pid, 'SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

// ---- Polyclaw: the opencode provider (tap onto the "gateway" = the fake), same model
async function polyclawStart() {
  const agentDir = path.join(tmp, 'poly');
  fs.mkdirSync(agentDir, { recursive: true });
  const p = new OpencodeProvider(
    {
      sessionDir: tmp,
      agentDir,
      model: 'fake-model',
      env: { PATH: process.env.PATH, POLYCLAW_GATEWAY_URL: fakeUrl, POLYCLAW_MODEL_ENDPOINT: 'bench' },
    },
    { cliPath: path.join(ROOT, 'dist', 'cli', 'main.js'), exitHook: false, log },
  );
  const sys = 'You are a bench assistant.';
  const t0 = performance.now();
  await p.runtime.ensure([]);
  const ready = performance.now() - t0;
  await p.runtime.reset(); // the provider starts its own (with instruction files) on the first query
  let session;
  const run = async (text) => {
    const q = p.query({ prompt: text, continuation: session, cwd: agentDir, systemContext: sys });
    for await (const ev of q.events) {
      if (ev.type === 'init') session = ev.continuation;
      if (ev.type === 'result' || ev.type === 'error') q.end();
    }
  };
  await run('warm up');
  return {
    ready,
    async turn(text) {
      const t = performance.now();
      await run(text);
      return performance.now() - t;
    },
    stop: () => p.close(),
  };
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (xs) => `p50 ${pct(xs, 0.5).toFixed(1)} ms  p99 ${pct(xs, 0.99).toFixed(1)} ms  (n=${xs.length})`;

const cold = { direct: [], polyclaw: [] };
for (let i = 0; i < COLD; i++) {
  for (const [name, start] of i % 2
    ? [
        ['polyclaw', polyclawStart],
        ['direct', directStart],
      ]
    : [
        ['direct', directStart],
        ['polyclaw', polyclawStart],
      ]) {
    const s = await start();
    cold[name].push(s.ready);
    await s.stop();
  }
}
const d = await directStart();
const p = await polyclawStart();
const host = await startBenchHost();
await host.group('oc', 'opencode', `${fakeUrl}/v1`);
await d.turn('warm up');
await chatTurn(host.client, 'oc', 'warm up', 60_000);
const warm = { direct: [], provider: [], polyclaw: [] };
try {
  // Three OpenCode servers share two cores: each turn's end-of-turn work (OpenCode keeps
  // working after it answered) must not land on the next path's measurement. The order rotates
  // per turn and a pause separates the paths.
  const paths = [
    ['direct', (i) => d.turn(`turn ${i}`)],
    ['provider', (i) => p.turn(`turn ${i}`)],
    ['polyclaw', async (i) => (await chatTurn(host.client, 'oc', `turn ${i}`)).ms],
  ];
  for (let i = 0; i < TURNS; i++) {
    for (let k = 0; k < paths.length; k++) {
      const [name, turn] = paths[(i + k) % paths.length];
      warm[name].push(await turn(i));
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    }
  }
} finally {
  await d.stop();
  await p.stop();
  await host.stop();
}
fake.close();
fs.rmSync(tmp, { recursive: true, force: true });

console.log(`cold start (server ready)  direct:   ${fmt(cold.direct)}`);
console.log(`cold start (server ready)  polyclaw: ${fmt(cold.polyclaw)}`);
console.log(`  ratio of medians: ${(pct(cold.polyclaw, 0.5) / pct(cold.direct, 0.5)).toFixed(2)}`);
console.log(`warm trivial turn          direct:   ${fmt(warm.direct)}`);
console.log(`warm trivial turn          provider: ${fmt(warm.provider)}`);
console.log(`warm trivial turn          polyclaw: ${fmt(warm.polyclaw)}`);
console.log(
  `  ratio of medians, provider/direct: ${(pct(warm.provider, 0.5) / pct(warm.direct, 0.5)).toFixed(2)}`,
);
console.log(
  `  ratio of medians, polyclaw/direct: ${(pct(warm.polyclaw, 0.5) / pct(warm.direct, 0.5)).toFixed(2)} (target <= 1.15)`,
);

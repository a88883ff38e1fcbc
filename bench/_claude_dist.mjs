#!/usr/bin/env node
/**
 * Claude provider bench.
 *
 * What it measures: a trivial Claude turn (one short text answer, "echo: ping", from the fake
 * Anthropic Messages server of the tests on 127.0.0.1) on these paths, interleaved turn by
 * turn in a rotating order with a pause after each turn, so machine noise and the idle time
 * before a turn hit every path alike:
 *   direct   — one live SDK query() in streaming-input mode: push a user message, wait for its
 *              `result` (the least a client of a warm Claude Code does); the time to its final
 *              message's end (stream event message_stop) is reported too;
 *   polyclaw — a persistent terminal client on the admin socket of a running host:
 *              chat.send → router → inbound queue → warm bwrap sandbox → runner → the session's
 *              warm CLI → gateway socket /endpoints/NAME → fake → reply (committed when the
 *              final message's stop reason arrives) → delivery → reply event;
 *   against  — with `--against DIR`: the same as polyclaw, from another build (a checkout with
 *              its own `npm run build`), for an A/B of two builds under the same noise.
 * The direct path runs Polyclaw's own Claude setup (bench/lib/claude-direct.mjs) with the model
 * URL straight at the fake: no host, queues, sandbox or gateway.
 *
 * Figures per run: p50 of each path, the ratio polyclaw p50 ÷ direct p50 (target ≤ 1.15) and
 * the median of the per-turn paired ratios. `--repeat K` runs K times on the same hosts and
 * reports the median ratio across runs (these machines are noisy: quote that). After the warm
 * runs: a new query() per turn (a new CLI process per batch, which Polyclaw avoids by keeping
 * the session's CLI warm), and the cold start of a session (the first message to a new group:
 * sandbox + runner + CLI + first turn).
 * `--runs N` turns per run (default 20), `--repeat K` (1), `--cold N` (3), `--per-turn N` (3),
 * `--settle MS` the pause after each turn (default 300: every turn starts on an idle machine,
 * as a message after a quiet spell does; 0: back to back, each turn right after another path's),
 * `--against DIR`, `--json`. Run `npm run build` first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chatTurn } from './lib/admin-client.mjs';
import { directSetup, loadFake, perTurn, warmSession } from './lib/claude-direct.mjs';
import { startBenchHost } from './lib/host.mjs';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    repeat: { type: 'string', default: '1' },
    cold: { type: 'string', default: '3' },
    'per-turn': { type: 'string', default: '3' },
    settle: { type: 'string', default: '300' },
    against: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const REPEAT = Number(args.repeat);
const COLD = Number(args.cold);
const PER_TURN = Number(args['per-turn']);
const WARMUP = 3;
const SETTLE_MS = Number(args.settle);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
/** The median (the mean of the middle two for an even count). */
const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stats = (xs) => ({ p50: p50(xs), p99: pct(xs, 99) });

/** A path's turn on a host: resolves with the ms until the reply event. */
const hostTurn = (host) => async () => {
  const r = await chatTurn(host.client, 'cl', 'ping', 60_000);
  if (r.text !== 'echo: ping') throw new Error(`unexpected reply: ${r.text}`);
  return { ms: r.ms };
};

/** One run: RUNS measured turns per path (after WARMUP), each iteration in a rotated order. */
async function oneRun(paths) {
  const names = Object.keys(paths);
  const got = Object.fromEntries(names.map((n) => [n, []]));
  const stop = [];
  for (let i = 0; i < RUNS + WARMUP; i++) {
    const order = names.map((_, k) => names[(i + k) % names.length]);
    const row = {};
    for (const n of order) {
      row[n] = await paths[n]();
      await sleep(SETTLE_MS);
    }
    if (i < WARMUP) continue;
    for (const n of names) got[n].push(row[n].ms);
    stop.push(row.direct.stop);
  }
  const out = { direct: stats(got.direct), directFinalMessage: stats(stop) }; console.error("D", [...got.direct].sort((a,b)=>a-b).map(x=>x.toFixed(0)).join(" ")); console.error("P", [...got.polyclaw].sort((a,b)=>a-b).map(x=>x.toFixed(0)).join(" "));
  for (const n of names.filter((x) => x !== 'direct')) {
    out[n] = {
      ...stats(got[n]),
      ratio: p50(got[n]) / p50(got.direct),
      pairedRatio: p50(got[n].map((x, i) => x / got.direct[i])),
    };
  }
  if (got.against) out.againstOverThis = p50(got.against.map((x, i) => x / got.polyclaw[i]));
  return out;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-claude-'));
fs.mkdirSync(path.join(tmp, 'agent'), { recursive: true });
const fake = await loadFake(tmp);
const hosts = [await startBenchHost()];
if (args.against) hosts.push(await startBenchHost({}, path.resolve(args.against, 'dist', 'cli', 'main.js')));
try {
  for (const h of hosts) await h.group('cl', 'claude', fake.url, 'anthropic');
  const options = directSetup(tmp, fake.url);
  const warm = await warmSession(options);
  const runs = [];
  const fresh = [];
  try {
    const paths = { direct: warm.turn, polyclaw: hostTurn(hosts[0]) };
    if (hosts[1]) paths.against = hostTurn(hosts[1]);
    for (let r = 0; r < REPEAT; r++) {
      runs.push(await oneRun(paths));
      if (!args.json) printRun(runs.at(-1), r);
    }
    for (let i = 0; i < PER_TURN; i++) {
      fresh.push(await perTurn(options, warm.sessionId()));
      await sleep(SETTLE_MS);
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
  const cold = [];
  for (let i = 0; i < COLD; i++) {
    const name = `cold${i}`;
    await hosts[0].group(name, 'claude', fake.url, 'anthropic');
    cold.push((await chatTurn(hosts[0].client, name, 'ping', 60_000)).ms);
  }
  const summary = {
    runs: REPEAT,
    turnsPerRun: RUNS,
    ratio: p50(runs.map((r) => r.polyclaw.ratio)),
    pairedRatio: p50(runs.map((r) => r.polyclaw.pairedRatio)),
    perRunRatios: runs.map((r) => Number(r.polyclaw.ratio.toFixed(3))),
    ...(hosts[1]
      ? {
          againstRatio: p50(runs.map((r) => r.against.ratio)),
          againstOverThis: p50(runs.map((r) => r.againstOverThis)),
        }
      : {}),
    perTurnQuery: fresh.length ? { p50: p50(fresh) } : null,
    cold: cold.length ? { runs: COLD, p50: p50(cold), max: Math.max(...cold) } : null,
    detail: runs,
  };
  if (args.json) console.log(JSON.stringify(summary));
  else printSummary(summary);
} finally {
  for (const h of hosts) await h.stop();
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}

function printRun(r, i) {
  const f = (x) => `${x.toFixed(0)} ms`;
  console.log(`run ${i + 1}: ${RUNS} turns per path`);
  console.log(`  direct, live query()            p50 ${f(r.direct.p50)}  p99 ${f(r.direct.p99)}`);
  console.log(`    … to its final message's end  p50 ${f(r.directFinalMessage.p50)}`);
  console.log(`  polyclaw                        p50 ${f(r.polyclaw.p50)}  p99 ${f(r.polyclaw.p99)}`);
  console.log(
    `  ratio polyclaw ÷ direct (p50)   ${r.polyclaw.ratio.toFixed(2)}  (median paired ${r.polyclaw.pairedRatio.toFixed(2)})`,
  );
  if (r.against)
    console.log(
      `  against build                   p50 ${f(r.against.p50)}  ratio ${r.against.ratio.toFixed(2)}  against ÷ this (paired) ${r.againstOverThis.toFixed(3)}`,
    );
}

function printSummary(s) {
  console.log(
    `median across ${s.runs} run(s): ratio polyclaw ÷ direct ${s.ratio.toFixed(2)} (target <= 1.15; runs ${s.perRunRatios.join(' / ')}), median paired ${s.pairedRatio.toFixed(2)}`,
  );
  if (s.againstRatio !== undefined)
    console.log(
      `  against build: ratio ${s.againstRatio.toFixed(2)}, against ÷ this ${s.againstOverThis.toFixed(3)}`,
    );
  if (s.perTurnQuery) console.log(`  a new query() per turn: p50 ${s.perTurnQuery.p50.toFixed(0)} ms`);
  if (s.cold)
    console.log(`  cold start of a session (${s.cold.runs} new groups): p50 ${s.cold.p50.toFixed(0)} ms`);
}

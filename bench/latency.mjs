#!/usr/bin/env node
/**
 * Polyclaw chat latency bench.
 *
 * What it measures: the round trip a terminal client sees, from writing `chat.send` on the admin
 * socket (a unix socket, no network) to receiving the `message` event that replies to it, plus the
 * time to the `settled` event. The agent group runs on the `mock` provider, whose own work is ~0,
 * so the figures are the host's overhead: routing, the session queue/databases, the doorbell to the
 * runner inside its bubblewrap sandbox, the runner's commit, delivery back to the channel.
 *   WARM: `--warm N` (200) messages one at a time to `main`, whose sandbox is already running
 *         (10 unmeasured warm-up messages first).
 *   COLD: one message each to `--cold N` (30) fresh groups, created via the CLI before timing,
 *         so each message pays for starting a sandbox (bwrap + node runner boot).
 * Why: these are the latencies a person feels; targets are warm p50 <= 20 ms, p99 <= 60 ms and
 * cold p50 <= 400 ms. `--runs K` repeats everything with a fresh host (fresh temp POLYCLAW_HOME)
 * and reports the median across runs. `--json` prints one JSON object instead of tables.
 * Percentiles are nearest-rank over the messages that succeeded (with n=30, p99 is the max);
 * a message with no reply+settled within 10 s counts as an error, and the run then waits up to
 * 35 s (the host's 30 s safety sweep) to report whether that reply was slow or lost.
 * Run `npm run build` first: it starts the host from dist/.
 */
import { spawn, execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { connect } from './lib/admin-client.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const MSG_TIMEOUT_MS = 10_000;
const STARTUP_TIMEOUT_MS = 30_000;
const WARMUP = 10;
const TARGETS = [
  ['warm', 'p50', 20],
  ['warm', 'p99', 60],
  ['cold', 'p50', 400],
];

const { values: opt } = parseArgs({
  options: {
    warm: { type: 'string', default: '200' },
    cold: { type: 'string', default: '30' },
    runs: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const posInt = (name, min) =>
  Number.isInteger(Number(opt[name])) && Number(opt[name]) >= min
    ? Number(opt[name])
    : fail(`--${name} must be an integer >= ${min}, got "${opt[name]}"`);
const WARM = posInt('warm', 1),
  COLD = posInt('cold', 0),
  RUNS = posInt('runs', 1);
if (!fs.existsSync(CLI)) fail(`${path.relative(process.cwd(), CLI)} is missing: run npm run build first`);

function fail(msg) {
  process.stderr.write(`latency: ${msg}\n`);
  process.exit(2);
}
const say = (s) => {
  if (!opt.json) process.stdout.write(s + '\n');
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The host of the current run, so cleanup can reach it from error paths and signal handlers. */
let cur = null;

async function startHost() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-'));
  const errFile = path.join(dir, 'host-stderr.log');
  // Enough sandbox slots that no cold sandbox evicts another (eviction would add to cold time).
  const env = {
    ...process.env,
    POLYCLAW_HOME: path.join(dir, 'home'),
    POLYCLAW_MAX_SANDBOXES: String(Math.min(256, Math.max(64, COLD + 2))),
  };
  const h = (cur = { dir, errFile, env, child: null, exited: null, client: null });
  const errFd = fs.openSync(errFile, 'a');
  h.child = spawn(process.execPath, [CLI, 'up'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', errFd] });
  fs.closeSync(errFd);
  h.done = new Promise((r) => h.child.once('exit', (code, sig) => r((h.exited = { code, sig }))));
  let out = '';
  h.runtime = await new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`host not up within ${STARTUP_TIMEOUT_MS / 1000}s`)),
      STARTUP_TIMEOUT_MS,
    );
    h.child.stdout.on('data', (d) => {
      out += d;
      const m = /Polyclaw is up.*?sandbox: (\w+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    h.done.then((e) => {
      clearTimeout(t);
      reject(new Error(`host exited during startup (code ${e.code}, signal ${e.sig})`));
    });
  });
  h.done.then(() => h.client?.sock.destroy());
  h.client = await connect(path.join(env.POLYCLAW_HOME, 'admin.sock'));
  return h;
}

async function stopHost(h) {
  if (!h) return;
  h.client?.sock.destroy();
  if (!h.exited) {
    h.child.kill('SIGTERM');
    if (!(await Promise.race([h.done, sleep(15_000)]))) {
      h.child.kill('SIGKILL');
      await h.done;
    }
  }
  fs.rmSync(h.dir, { recursive: true, force: true });
  if (cur === h) cur = null;
}

/** Last n lines, with runs of lines that differ only in their timestamp collapsed to one. */
function tail(lines, n) {
  const out = [];
  for (const l of lines) {
    const k = l.replace(/"t":"[^"]*",?/, '');
    if (out.length && out.at(-1).k === k) out.at(-1).n++;
    else out.push({ k, l: l.slice(0, 300), n: 1 });
  }
  return out.slice(-n).map((o) => (o.n > 1 ? `${o.l}   (×${o.n})` : o.l));
}
const hostLog = (h) =>
  fs.existsSync(h.errFile) ? fs.readFileSync(h.errFile, 'utf8').split('\n').filter(Boolean) : [];

/** Sends one message and times the reply and the settle. Never throws: returns { error } instead. */
function roundTrip(h, waiters, platformId, text, late) {
  return new Promise((resolve) => {
    const pmid = randomUUID();
    const w = { t0: 0, reply: null, settled: null, status: null };
    const finish = (error) => {
      clearTimeout(timer);
      waiters.delete(pmid);
      if (error?.startsWith('no reply')) late.set(pmid, { platformId, t0: w.t0 });
      if (!error && w.status !== 'completed') error = `settled with status "${w.status}"`;
      resolve(error ? { error: `${platformId}: ${error}` } : { reply: w.reply, settled: w.settled });
    };
    w.check = () => w.reply != null && w.settled != null && finish();
    w.fail = finish;
    const timer = setTimeout(
      () =>
        finish(
          `no reply+settled within ${MSG_TIMEOUT_MS / 1000}s (reply ${w.reply != null ? 'seen' : 'missing'})`,
        ),
      MSG_TIMEOUT_MS,
    );
    waiters.set(pmid, w);
    w.t0 = performance.now();
    h.client
      .request('chat.send', { platformId, text, sender: { id: 'bench' }, platformMessageId: pmid })
      .catch((e) => finish(`chat.send: ${e.message}`));
  });
}

const cliJson = async (h, args) =>
  JSON.parse(
    (
      await promisify(execFile)(process.execPath, [CLI, ...args, '--json'], {
        cwd: ROOT,
        env: h.env,
        timeout: 20_000,
      })
    ).stdout,
  ).result;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p) => s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
  const r = (x) => (x == null ? null : Math.round(x * 10) / 10);
  return { n: s.length, p50: r(rank(50)), p90: r(rank(90)), p99: r(rank(99)), max: r(s[s.length - 1]) };
}

async function oneRun(k) {
  const h = await startHost();
  const waiters = new Map(),
    late = new Map(),
    lateSeen = [];
  h.client.onEvent = (ev, now) => {
    const l = ev.event === 'message' && late.get(ev.replyTo);
    if (l) {
      late.delete(ev.replyTo);
      lateSeen.push(`${l.platformId}: reply arrived late, after ${Math.round(now - l.t0)} ms`);
    }
    const w = waiters.get(
      ev.event === 'message' ? ev.replyTo : ev.event === 'settled' ? ev.messageId : undefined,
    );
    if (!w) return;
    if (ev.event === 'message' && w.reply == null) w.reply = now - w.t0;
    if (ev.event === 'settled') {
      w.settled = now - w.t0;
      w.status = ev.status;
      if (w.reply == null) return w.fail('settled before any reply');
    }
    w.check();
  };
  h.client.onClose = () => {
    for (const w of [...waiters.values()]) w.fail('admin socket closed (host gone?)');
  };

  const groups = Array.from({ length: COLD }, (_, i) => `bench-cold-${i + 1}`);
  say(`\nrun ${k}/${RUNS}: host up (sandbox runtime: ${h.runtime}); creating ${COLD} groups via the CLI…`);
  for (const g of groups) await cliJson(h, ['groups', 'create', g, '--provider', 'mock']);
  for (const p of ['main', ...groups]) await h.client.request('chat.attach', { platformId: p });

  const res = {
    runtime: h.runtime,
    loadavg1m: os.loadavg()[0],
    warm: { reply: [], settled: [], errors: [] },
    cold: { reply: [], settled: [], errors: [] },
  };
  const record = (phase, r) =>
    r.error
      ? res[phase].errors.push(r.error)
      : (res[phase].reply.push(r.reply), res[phase].settled.push(r.settled));
  const gone = () => {
    if (h.exited) throw new Error(`host exited mid-run (code ${h.exited.code}, signal ${h.exited.sig})`);
  };

  for (let i = 0; i < WARMUP; i++) {
    const r = await roundTrip(h, waiters, 'main', `warm-up ${i}`, late);
    if (r.error) res.warm.errors.push(`warm-up: ${r.error}`);
    gone();
  }
  for (let i = 0; i < WARM; i++) {
    record('warm', await roundTrip(h, waiters, 'main', `hello ${i}`, late));
    gone();
  }

  const sandboxes = async () =>
    (await cliJson(h, ['sessions', 'list'])).filter((s) => s.sandbox).map((s) => s.group);
  const before = await sandboxes();
  const hot = groups.filter((g) => before.includes(g));
  if (hot.length)
    res.cold.errors.push(`groups already had a sandbox before their first message: ${hot.join(', ')}`);
  for (const g of groups) {
    record('cold', await roundTrip(h, waiters, g, 'hello cold', late));
    gone();
  }
  res.sandboxesAfter = (await sandboxes()).length;

  // A timed-out message may be slow rather than lost: give it up to the host's 30 s safety sweep.
  for (let t = 0; late.size && t < 35 && !h.exited; t++) await sleep(1000);
  res.late = [
    ...lateSeen,
    ...[...late.values()].map((l) => `${l.platformId}: still no reply at the end of the run`),
  ];
  const log = hostLog(h),
    problems = new Map();
  for (const l of log.filter((x) => /"level":"(warn|error|fatal)"/.test(x))) {
    const j = (() => {
      try {
        return JSON.parse(l);
      } catch {
        return { msg: l.slice(0, 200) };
      }
    })();
    const key = `${j.level} ${j.component}: ${j.msg}${j.err ? ` (${j.err.message ?? JSON.stringify(j.err)})` : ''}${j.reason ? ` (${j.reason})` : ''}`;
    problems.set(key, (problems.get(key) ?? 0) + 1);
  }
  res.hostProblems = [...problems].map(([msg, count]) => ({ msg, count }));
  if (res.warm.errors.length || res.cold.errors.length) res.hostTail = tail(log, 12);
  await stopHost(h);
  res.hostExit = h.exited;
  for (const p of ['warm', 'cold'])
    Object.assign(res[p], { replyStats: stats(res[p].reply), settledStats: stats(res[p].settled) });
  return res;
}

const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  return s.length
    ? s.length % 2
      ? s[(s.length - 1) / 2]
      : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
    : null;
};
const pad = (v, n) => String(v ?? '—').padStart(n);

function printRun(k, r) {
  say(
    `run ${k}/${RUNS} results  (sandbox ${r.runtime}, ${r.sandboxesAfter} sandboxes running at the end, host exit code ${r.hostExit?.code}, 1-min load avg at start ${r.loadavg1m.toFixed(2)})`,
  );
  say(`  phase  to       ${['n', 'p50', 'p90', 'p99', 'max'].map((c) => pad(c, 8)).join('')}  errors   (ms)`);
  for (const p of ['warm', 'cold'])
    for (const [label, s] of [
      ['reply', r[p].replyStats],
      ['settled', r[p].settledStats],
    ]) {
      say(
        `  ${p.padEnd(6)} ${label.padEnd(8)} ${['n', 'p50', 'p90', 'p99', 'max'].map((c) => pad(s[c], 8)).join('')}  ${pad(r[p].errors.length, 6)}`,
      );
    }
  for (const e of [...r.warm.errors, ...r.cold.errors].slice(0, 10)) say(`  ERROR ${e}`);
  for (const l of r.late) say(`  LATE  ${l}`);
  for (const p of r.hostProblems) say(`  HOST  ${p.count}× ${p.msg}`);
  if (r.hostTail) say(`  last host stderr lines:\n    ${r.hostTail.join('\n    ')}`);
}

async function main() {
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
  say(
    `Polyclaw latency bench — ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memGb} GB, node ${machine.node}, ${machine.platform}`,
  );
  say(
    `warm ${WARM} msgs (+${WARMUP} warm-up), cold ${COLD} groups, ${RUNS} run(s), per-message timeout ${MSG_TIMEOUT_MS / 1000}s`,
  );
  const runs = [];
  for (let k = 1; k <= RUNS; k++) {
    runs.push(await oneRun(k));
    printRun(k, runs[k - 1]);
  }
  const med = {};
  for (const p of ['warm', 'cold'])
    med[p] = {
      p50: median(runs.map((r) => r[p].replyStats.p50)),
      p99: median(runs.map((r) => r[p].replyStats.p99)),
    };
  const targets = TARGETS.map(([p, q, limit]) => ({
    target: `${p} reply ${q} <= ${limit} ms`,
    value: med[p][q],
    pass: med[p][q] != null && med[p][q] <= limit,
  }));
  const errors = runs.reduce((n, r) => n + r.warm.errors.length + r.cold.errors.length, 0);
  say(
    `\nmedian across ${RUNS} run(s) of the reply round trip: warm p50 ${med.warm.p50} / p99 ${med.warm.p99} ms, cold p50 ${med.cold.p50} / p99 ${med.cold.p99} ms`,
  );
  for (const t of targets)
    say(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.target.padEnd(24)} (measured ${t.value ?? '—'} ms)`);
  say(
    errors
      ? `\n${errors} message(s) failed (see ERROR/LATE lines); percentiles cover only the messages that succeeded`
      : '\nno message errors',
  );
  if (opt.json) {
    const slim = runs.map(({ warm, cold, ...rest }) => ({
      ...rest,
      warm: { reply: warm.replyStats, settled: warm.settledStats, errors: warm.errors },
      cold: { reply: cold.replyStats, settled: cold.settledStats, errors: cold.errors },
    }));
    process.stdout.write(
      JSON.stringify({
        machine,
        config: { warm: WARM, warmup: WARMUP, cold: COLD, runs: RUNS, msgTimeoutMs: MSG_TIMEOUT_MS },
        runs: slim,
        median: med,
        targets,
        errors,
      }) + '\n',
    );
  }
  return errors ? 1 : 0;
}

let stopping = false;
async function bail(code, err) {
  if (stopping) return;
  stopping = true;
  if (err) {
    process.stderr.write(`latency: ${err.stack ?? err}\n`);
    if (cur)
      process.stderr.write(
        `last host stderr lines (${cur.errFile}):\n  ${tail(hostLog(cur), 20).join('\n  ')}\n`,
      );
  }
  await stopHost(cur).catch((e) => process.stderr.write(`latency: cleanup failed: ${e.message}\n`));
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => bail(130, new Error(`interrupted (${sig})`)));
main().then(
  (code) => bail(code),
  (err) => bail(1, err),
);

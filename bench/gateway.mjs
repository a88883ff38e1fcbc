#!/usr/bin/env node
/**
 * Polyclaw gateway bench.
 *
 * What it measures: what the credential gateway adds to a streamed model response. A fake
 * upstream on 127.0.0.1 answers POST with an SSE stream (first event at once) and GET /bytes
 * with a large body. The same requests go
 *   direct   — client → upstream (TCP, loopback),
 *   gateway  — client → gateway unix socket → upstream (token check, vault lookup + AES-GCM
 *              decryption, header rewrite, streaming pipe),
 *   sandbox  — client → TCP→unix forwarder (the runner's, as inside a bwrap sandbox) → gateway → upstream,
 * interleaved request by request so machine noise hits all paths alike. Keep-alive clients
 * on every path. Figures: time to first body byte (TTFB) p50/p99 per path, the added TTFB
 * (gateway p50 − direct p50; target ≤ 2 ms), and throughput of a 64 MiB streamed body.
 * `--runs K` repeats everything K times with a fresh gateway and reports medians across runs;
 * `--json` prints one JSON object. Run `npm run build` first: it imports from dist/.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(ROOT, 'dist', p));
const { openCentralDb } = await dist('host/db/open.js');
const { createGroup } = await dist('host/store/groups.js');
const { Vault } = await dist('gateway/vault.js');
const { Gateway } = await dist('gateway/gateway.js');
const { startForwarder } = await dist('runner/gateway-forwarder.js');
const { createLogger } = await dist('shared/log.js');

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    requests: { type: 'string', default: '300' },
    mib: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);
const REQUESTS = Number(opt.requests);
const BYTES = Number(opt.mib) * 1024 * 1024;

function startUpstream() {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url.startsWith('/bytes')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const pump = () => {
          while (sent < BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message_start\ndata: {}\n\n');
      setImmediate(() => res.end('event: message_stop\ndata: {}\n\n'));
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function timed(target, agent, method, p, headers) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0;
    let bytes = 0;
    const req = http.request({ ...target, agent, method, path: p, headers }, (res) => {
      res.on('data', (c) => {
        if (!first) first = performance.now() - t0;
        bytes += c.length;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode, ttfb: first, total: performance.now() - t0, bytes }),
      );
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(method === 'POST' ? '{"stream":true}' : undefined);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const median = (xs) => pct(xs, 50);

async function oneRun() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-gw-'));
  const upstream = await startUpstream();
  const upPort = upstream.address().port;
  const db = openCentralDb(path.join(home, 'polyclaw.db'));
  const vault = Vault.open(db, { kind: 'file', path: path.join(home, 'vault.key') });
  const group = createGroup(db, 'bench', { provider: 'mock' });
  vault.set({
    name: 'claude',
    kind: 'anthropic',
    value: 'sk-ant-bench-key',
    baseUrl: `http://127.0.0.1:${upPort}`,
  });
  const gw = new Gateway({
    secrets: vault,
    policy: () => ({ allowHosts: [], requestsPerHour: null }),
    log: createLogger({ level: 'error' }),
    audit: () => undefined,
  });
  const { socket } = await gw.listen({ socketDir: path.join(home, 'gateway'), tcpPort: null });
  const fwd = await startForwarder({ socketPath: socket, port: 0, log: createLogger({ level: 'error' }) });
  const token = gw.issue({ groupId: group.id, groupName: 'bench' }, 'bench').token;
  const paths = {
    direct: {
      target: { host: '127.0.0.1', port: upPort },
      prefix: '',
      headers: { 'x-api-key': 'sk-ant-bench-key' },
    },
    gateway: { target: { socketPath: socket }, prefix: '/anthropic', headers: { 'x-api-key': token } },
    sandbox: {
      target: { host: '127.0.0.1', port: fwd.port },
      prefix: '/anthropic',
      headers: { 'x-api-key': token },
    },
  };
  const agents = Object.fromEntries(
    Object.keys(paths).map((k) => [k, new http.Agent({ keepAlive: true, maxSockets: 1 })]),
  );
  const ttfb = { direct: [], gateway: [], sandbox: [] };
  for (let i = 0; i < REQUESTS + 20; i++) {
    for (const [name, p] of Object.entries(paths)) {
      const r = await timed(p.target, agents[name], 'POST', `${p.prefix}/v1/messages`, p.headers);
      if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status}`);
      if (i >= 20) ttfb[name].push(r.ttfb);
    }
  }
  const mbps = { direct: [], gateway: [], sandbox: [] };
  for (let i = 0; i < 3; i++) {
    for (const [name, p] of Object.entries(paths)) {
      const r = await timed(p.target, agents[name], 'GET', `${p.prefix}/bytes`, p.headers);
      if (r.bytes !== BYTES) throw new Error(`${name}: got ${r.bytes} bytes`);
      mbps[name].push(BYTES / 1024 / 1024 / (r.total / 1000));
    }
  }
  for (const a of Object.values(agents)) a.destroy();
  await fwd.close();
  await gw.close();
  db.close();
  await new Promise((r) => upstream.close(r));
  fs.rmSync(home, { recursive: true, force: true });
  const out = {};
  for (const k of Object.keys(paths))
    out[k] = { p50: pct(ttfb[k], 50), p99: pct(ttfb[k], 99), mibPerS: median(mbps[k]) };
  out.addedP50 = out.gateway.p50 - out.direct.p50;
  out.addedP50Sandbox = out.sandbox.p50 - out.direct.p50;
  return out;
}

const runs = [];
for (let i = 0; i < RUNS; i++) runs.push(await oneRun());
const med = (f) => median(runs.map(f));
const summary = {
  runs: RUNS,
  requests: REQUESTS,
  mib: BYTES / 1024 / 1024,
  ...Object.fromEntries(
    ['direct', 'gateway', 'sandbox'].map((k) => [
      k,
      { ttfbP50: med((r) => r[k].p50), ttfbP99: med((r) => r[k].p99), mibPerS: med((r) => r[k].mibPerS) },
    ]),
  ),
  addedTtfbP50: med((r) => r.addedP50),
  addedTtfbP50ViaForwarder: med((r) => r.addedP50Sandbox),
  perRunAddedP50: runs.map((r) => Number(r.addedP50.toFixed(3))),
};
summary.pass = summary.addedTtfbP50 <= 2;
if (opt.json) console.log(JSON.stringify(summary));
else {
  const f = (x) => `${x.toFixed(2)} ms`;
  console.log(
    `gateway bench: ${RUNS} runs × ${REQUESTS} interleaved SSE requests per path, ${summary.mib} MiB body`,
  );
  console.log('path      TTFB p50   TTFB p99   throughput');
  for (const k of ['direct', 'gateway', 'sandbox'])
    console.log(
      `${k.padEnd(9)} ${f(summary[k].ttfbP50).padEnd(10)} ${f(summary[k].ttfbP99).padEnd(10)} ${summary[k].mibPerS.toFixed(0)} MiB/s`,
    );
  console.log(
    `added TTFB p50: ${f(summary.addedTtfbP50)} (target ≤ 2 ms: ${summary.pass ? 'pass' : 'FAIL'}); via the sandbox forwarder: ${f(summary.addedTtfbP50ViaForwarder)}`,
  );
  console.log(`per-run added p50: ${summary.perRunAddedP50.join(' / ')} ms`);
}
process.exit(summary.pass ? 0 : 1);

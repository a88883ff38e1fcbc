/**
 * A real bwrap sandbox built exactly as the host builds one (buildSpec with a gateway ticket),
 * running the real runner (whose forwarder is the only way out). From inside, a scanner:
 *  - calls the model through POLYCLAW_GATEWAY_URL with its token (the fake upstream must get the real key);
 *  - tries every other way out (host TCP ports, the admin socket, CONNECT to a denied host);
 *  - reads every regular file it can reach from / (skipping /proc, /sys, /dev) plus
 *    /proc/self/environ and the cmdline and environ of every process in its pid namespace,
 *    and looks for the secret. The needles reach the scanner on stdin (a pipe, not a file),
 *    and two canaries (one in a file, one in the environment) prove the scan would find them.
 */
import { sessionMeta } from './support/meta.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, paths } from '../src/host/config.js';
import { openCentralDb, type Db } from '../src/host/db/open.js';
import { buildSpec, groupDir, sessionDir } from '../src/host/sandbox-spec.js';
import { SessionQueue } from '../src/host/session-queue.js';
import { createGroup } from '../src/host/store/groups.js';
import { Gateway } from '../src/gateway/gateway.js';
import { Vault } from '../src/gateway/vault.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import { createLogger } from '../src/shared/log.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { tempHome } from './support/cli.js';

const SCANNER = String.raw`
const fs = require('fs'), net = require('net'), http = require('http'), cp = require('child_process'), os = require('os');
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const needles = input.needles.map((n) => Buffer.from(n));
const maxLen = Math.max(...needles.map((n) => n.length));
const found = needles.map(() => []);
const out = { found, filesRead: 0, bytesRead: 0, unreadable: 0, procFiles: 0 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function searchBuf(buf, where) { needles.forEach((n, i) => { if (buf.indexOf(n) >= 0 && found[i].length < 20) found[i].push(where); }); }
function scanFile(p) {
  let fd;
  try { fd = fs.openSync(p, 'r'); } catch { out.unreadable++; return; }
  try {
    const chunk = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    for (;;) {
      let n;
      try { n = fs.readSync(fd, chunk, 0, chunk.length, null); } catch { out.unreadable++; break; }
      if (n <= 0) break;
      out.bytesRead += n;
      const view = Buffer.concat([carry, chunk.subarray(0, n)]);
      searchBuf(view, p);
      carry = Buffer.from(view.subarray(Math.max(0, view.length - maxLen + 1)));
    }
    out.filesRead++;
  } finally { fs.closeSync(fd); }
}
function walk(dir) {
  let names;
  try { names = fs.readdirSync(dir); } catch { out.unreadable++; return; }
  for (const name of names) {
    const p = dir === '/' ? '/' + name : dir + '/' + name;
    if (p === '/proc' || p === '/sys' || p === '/dev') continue;
    let st;
    try { st = fs.lstatSync(p); } catch { out.unreadable++; continue; }
    if (st.isDirectory()) walk(p);
    else if (st.isFile()) scanFile(p);
  }
}
function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
}
function httpReq(opts, body) {
  return new Promise((resolve) => {
    const req = http.request(opts, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve({ status: res.statusCode, body: b })); });
    req.on('error', (e) => resolve({ status: 0, body: e.code || e.message }));
    req.end(body);
  });
}
function connectVia(port, authority, token) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let b = '';
    s.on('data', (c) => (b += c));
    s.on('close', () => resolve(b));
    s.on('error', () => resolve(b || 'error'));
    s.write('CONNECT ' + authority + ' HTTP/1.1\r\nproxy-authorization: Basic ' + Buffer.from('polyclaw:' + token).toString('base64') + '\r\n\r\n');
  });
}
(async () => {
  const runner = cp.spawn(process.execPath, ['/app/dist/cli/main.js', 'runner'], { env: process.env, stdio: ['pipe', 'ignore', 'pipe'] });
  let runnerErr = '';
  runner.stderr.on('data', (d) => (runnerErr += d));
  const port = Number(process.env.POLYCLAW_GATEWAY_PORT);
  let up = false;
  for (let i = 0; i < 400 && !up; i++) { up = (await tryConnect(port)) === 'connected'; if (!up) await sleep(25); }
  out.forwarderUp = up;
  const model = await httpReq({ host: '127.0.0.1', port, method: 'POST', path: '/anthropic/v1/messages',
    headers: { 'x-api-key': process.env.POLYCLAW_GATEWAY_TOKEN, 'content-type': 'application/json' } }, '{"stream":true}');
  out.modelStatus = model.status;
  out.modelDone = model.body.includes('event: done');
  searchBuf(Buffer.from(model.body), 'model response');
  out.denied = await connectVia(port, 'example.com:443', process.env.POLYCLAW_GATEWAY_TOKEN);
  out.hostGatewayTcp = await tryConnect(input.hostGatewayPort);
  out.hostUpstream = await tryConnect(input.upstreamPort);
  out.adminSocket = fs.existsSync(input.adminSocket) ? 'visible' : 'ENOENT';
  out.interfaces = Object.keys(os.networkInterfaces()).sort().join(',');
  out.gatewayDir = fs.readdirSync('/run/polyclaw').join(',');
  // Processes in this pid namespace: their arguments and environments.
  const pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  out.pids = pids.length;
  for (const pid of pids) for (const f of ['cmdline', 'environ']) {
    try { searchBuf(fs.readFileSync('/proc/' + pid + '/' + f), '/proc/' + pid + '/' + f); out.procFiles++; } catch { out.unreadable++; }
  }
  searchBuf(fs.readFileSync('/proc/self/environ'), '/proc/self/environ');
  searchBuf(Buffer.from(JSON.stringify(process.env)), 'process.env');
  walk('/');
  runner.kill('SIGTERM');
  out.runnerErr = runnerErr.slice(-500);
  console.log(JSON.stringify(out));
  process.exit(0);
})();
`;

describe('a bwrap sandbox reaches models only through the gateway and holds no secret', () => {
  let home: string;
  let db: Db;
  let up: FakeUpstream;
  let gateway: Gateway;
  let tcpPort: number;
  let result: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  let specText: string;
  const SECRET = 'sk-ant-api03-' + randomBytes(24).toString('hex');
  const FILE_CANARY = 'canary-file-' + randomBytes(12).toString('hex');
  const ENV_CANARY = 'canary-env-' + randomBytes(12).toString('hex');

  beforeAll(async () => {
    home = tempHome('polyclaw-gwsb-');
    db = openCentralDb(paths(home).db);
    const vault = Vault.open(db, { kind: 'file', path: paths(home).vaultKey });
    vault.set({ name: 'claude', kind: 'anthropic', value: SECRET });
    const group = createGroup(db, 'one', { provider: 'mock' });
    fs.mkdirSync(groupDir(home, 'one'), { recursive: true });
    fs.writeFileSync(path.join(groupDir(home, 'one'), 'canary.txt'), `x${FILE_CANARY}x`);
    up = await startFakeUpstream();
    gateway = new Gateway({
      secrets: vault,
      policy: () => ({ allowHosts: [], requestsPerHour: null }),
      log: createLogger({ level: 'error' }),
      upstreams: { anthropic: up.url },
    });
    tcpPort = (await gateway.listen({ socketDir: paths(home).gatewayDir, tcpPort: 0 })).tcpPort!;
    const q = new SessionQueue(sessionDir(home, 'one', 's1'));
    q.setMeta(sessionMeta({ sessionId: 's1', agentGroup: 'one' }), []);
    q.close();
    const config = loadConfig({ POLYCLAW_HOME: home });
    const runtime = runtimeRegistry.get('bwrap')({
      log: createLogger({ level: 'error' }),
      runDir: paths(home).run,
    });
    const ticket = gateway.issue({ groupId: group.id, groupName: 'one' }, 's1');
    const spec = buildSpec({ config, runtime, installId: 'gwtest', group, sessionId: 's1', gateway: ticket });
    specText = JSON.stringify(spec);
    const r = await runtime.exec(
      { ...spec, env: { ...spec.env, CANARY_ENV: ENV_CANARY }, command: [process.execPath, '-e', SCANNER] },
      {
        timeoutMs: 200_000,
        input: JSON.stringify({
          needles: [SECRET, FILE_CANARY, ENV_CANARY],
          hostGatewayPort: tcpPort,
          upstreamPort: up.port,
          adminSocket: paths(home).socket,
        }),
      },
    );
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    result = JSON.parse(r.stdout.trim().split('\n').pop()!);
  }, 240_000);

  afterAll(async () => {
    await gateway?.close();
    await up?.close();
    db?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('calls the model through the forwarder; the fake upstream receives the real key', () => {
    expect(result.forwarderUp, result.runnerErr).toBe(true);
    expect(result.modelStatus).toBe(200);
    expect(result.modelDone).toBe(true);
    expect(up.requests.some((r) => r.headers['x-api-key'] === SECRET)).toBe(true);
  });

  it('finds no secret byte in files, environments or process arguments — and does find the canaries', () => {
    expect(result.filesRead).toBeGreaterThan(1000);
    expect(result.pids).toBeGreaterThanOrEqual(2);
    expect(result.found[0]).toEqual([]);
    expect(result.found[1]).toContain('/workspace/agent/canary.txt');
    expect(result.found[2]).toContain('/proc/self/environ');
    expect(
      (result.found[2] as string[]).filter((p) => /^\/proc\/\d+\/environ$/.test(p)).length,
    ).toBeGreaterThanOrEqual(2);
    expect(specText).not.toContain(SECRET);
  });

  it('has no other way out: host ports, the admin socket and unlisted hosts are unreachable', () => {
    expect(result.hostGatewayTcp).toBe('ECONNREFUSED');
    expect(result.hostUpstream).toBe('ECONNREFUSED');
    expect(result.adminSocket).toBe('ENOENT');
    expect(result.interfaces).toBe('lo');
    expect(result.gatewayDir).toBe('gateway.sock');
    expect(result.denied).toMatch(/^HTTP\/1\.1 403/);
    expect(result.denied).toContain('egress to example.com is not allowed for agent group "one"');
  });
});

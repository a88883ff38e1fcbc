/**
 * What a real bwrap sandbox with the session mount table can and cannot touch, attempted
 * from inside with a script running as the agent would.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/host/config.js';
import { openCentralDb } from '../src/host/db/open.js';
import { buildSpec, groupDir, sessionDir } from '../src/host/sandbox-spec.js';
import { SessionQueue } from '../src/host/session-queue.js';
import { createGroup } from '../src/host/store/groups.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import type { SandboxRuntime } from '../src/sandbox/runtime.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome } from './support/cli.js';

const PROBE = String.raw`
const fs = require('fs'), net = require('net');
const out = {};
const tryIt = (name, fn) => { try { const v = fn(); out[name] = v === undefined ? 'ok' : v; } catch (e) { out[name] = e.code || e.message; } };
const T = JSON.parse(process.env.PROBE_TARGETS);
tryIt('writeInbound', () => fs.writeFileSync('/workspace/session/inbound.db', 'x'));
tryIt('appendInbound', () => fs.appendFileSync('/workspace/session/inbound.db', 'x'));
tryIt('plantJournal', () => fs.writeFileSync('/workspace/session/inbound.db-journal', 'x'));
tryIt('unlinkInbound', () => fs.unlinkSync('/workspace/session/inbound.db'));
tryIt('renameInbound', () => fs.renameSync('/workspace/session/inbound.db', '/workspace/session/moved.db'));
tryIt('writeInbox', () => fs.writeFileSync('/workspace/session/inbox/planted', 'x'));
tryIt('writeApp', () => fs.writeFileSync('/app/dist/planted', 'x'));
tryIt('writeUsr', () => fs.writeFileSync('/usr/planted', 'x'));
tryIt('writeEtc', () => fs.writeFileSync('/etc/planted', 'x'));
tryIt('writeAgent', () => fs.writeFileSync('/workspace/agent/note.txt', 'mine'));
tryIt('writeOutbound', () => fs.writeFileSync('/workspace/session/outbox-probe', 'x'));
tryIt('writeTmp', () => fs.writeFileSync('/tmp/probe', 'x'));
for (const [k, p] of Object.entries(T.read)) tryIt(k, () => fs.readFileSync(p).length);
tryIt('uid', () => process.getuid());
tryIt('procCount', () => fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length);
tryIt('rootEntries', () => fs.readdirSync('/').sort().join(','));
tryIt('appEntries', () => fs.readdirSync('/app').sort().join(','));
tryIt('readInbound', () => fs.readFileSync('/workspace/session/inbound.db').length > 0);
tryIt('nestedUserns', () => { require('child_process').execFileSync('unshare', ['-Ur', 'true'], { stdio: 'ignore' }); });
const s = net.connect(T.port, '127.0.0.1');
s.on('connect', () => { out.hostTcp = 'connected'; done(); });
s.on('error', (e) => { out.hostTcp = e.code; done(); });
function done() { console.log(JSON.stringify(out)); process.exit(0); }
`;

describe('bwrap sandbox isolation', () => {
  let home: string;
  let runtime: SandboxRuntime;
  let result: Record<string, unknown>;
  const homeMarker = path.join(os.homedir(), `.polyclaw-isolation-probe-${process.pid}`);
  let server: net.Server;

  beforeAll(async () => {
    home = tempHome();
    fs.writeFileSync(homeMarker, 'user home secret');
    // The data dir holds what a sandbox must never see: the central DB, a vault key, another group.
    const db = openCentralDb(path.join(home, 'polyclaw.db'));
    fs.writeFileSync(path.join(home, 'vault.key'), 'k'.repeat(32), { mode: 0o600 });
    const g1 = createGroup(db, 'one', { provider: 'mock' });
    createGroup(db, 'two', { provider: 'mock' });
    db.close();
    fs.mkdirSync(groupDir(home, 'two'), { recursive: true });
    fs.writeFileSync(path.join(groupDir(home, 'two'), 'secret.md'), 'other group');
    fs.mkdirSync(groupDir(home, 'one'), { recursive: true });
    const q = new SessionQueue(sessionDir(home, 'one', 's1'));
    q.enqueue({
      kind: 'chat',
      trigger: true,
      routing: { channelType: 'terminal', platformId: 'one', threadId: null },
      content: { text: 'hi', attachments: [] },
    });
    const config = loadConfig({ POLYCLAW_HOME: home });
    server = net.createServer((c) => c.end('host service'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    runtime = runtimeRegistry.get('bwrap')({
      log: createLogger({ level: 'error' }),
      runDir: path.join(home, 'run'),
    });
    const spec = buildSpec({ config, runtime, installId: 'test', group: g1, sessionId: 's1' });
    const targets = {
      port: (server.address() as net.AddressInfo).port,
      read: {
        readCentralDb: path.join(home, 'polyclaw.db'),
        readVaultKey: path.join(home, 'vault.key'),
        readOtherGroup: path.join(groupDir(home, 'two'), 'secret.md'),
        readOtherGroupViaApp: '/app/../' + path.join(groupDir(home, 'two'), 'secret.md'),
        readUserHome: homeMarker,
        readAdminSocketDir: path.join(home, 'admin.sock'),
      },
    };
    const r = await runtime.exec(
      {
        ...spec,
        env: { ...spec.env, PROBE_TARGETS: JSON.stringify(targets) },
        command: [process.execPath, '-e', PROBE],
      },
      { timeoutMs: 15_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    result = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    q.close();
  });

  afterAll(() => {
    fs.rmSync(homeMarker, { force: true });
    server?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('cannot write inbound.db, plant a journal, or touch the host-written inbox', () => {
    expect(result.writeInbound).toBe('EROFS');
    expect(result.appendInbound).toBe('EROFS');
    expect(['EROFS', 'EBUSY']).toContain(result.plantJournal);
    expect(['EBUSY', 'EROFS']).toContain(result.unlinkInbound);
    expect(['EBUSY', 'EROFS']).toContain(result.renameInbound);
    expect(result.writeInbox).toBe('EROFS');
    expect(result.readInbound).toBe(true);
  });

  it('cannot write the install or the system', () => {
    expect(result.writeApp).toBe('EROFS');
    expect(result.writeUsr).toBe('EROFS');
    expect(['EROFS', 'EACCES']).toContain(result.writeEtc);
  });

  it('can write its own folders and a private /tmp', () => {
    expect(result.writeAgent).toBe('ok');
    expect(result.writeOutbound).toBe('ok');
    expect(result.writeTmp).toBe('ok');
    expect(fs.readFileSync(path.join(groupDir(home, 'one'), 'note.txt'), 'utf8')).toBe('mine');
    expect(fs.existsSync('/tmp/probe') && fs.readFileSync('/tmp/probe', 'utf8') === 'x').toBe(false);
  });

  it('cannot read the central DB, the vault key, another group, or the user home', () => {
    for (const k of [
      'readCentralDb',
      'readVaultKey',
      'readOtherGroup',
      'readOtherGroupViaApp',
      'readUserHome',
      'readAdminSocketDir',
    ]) {
      expect(result[k], k).toBe('ENOENT');
    }
    expect(String(result.appEntries)).toBe('dist,node_modules,package.json');
    expect(String(result.rootEntries)).not.toMatch(/\b(root|home)\b/);
  });

  it('runs unprivileged in its own pid namespace with no route to host services', () => {
    expect(result.uid).toBe(1000);
    // No user namespace of its own inside: no namespace-root capabilities for kernel exploits.
    expect(result.nestedUserns).not.toBe('ok');
    expect(Number(result.procCount)).toBeLessThan(5);
    expect(result.hostTcp).toBe('ECONNREFUSED');
  });
});

/**
 * Unix socket paths have a kernel limit (107 bytes on Linux) and Node cuts a longer one short,
 * binding it somewhere else. A too-long data dir refuses the start at once with one line, and a
 * listener that fails part-way leaves nothing open behind it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCentralDb } from '../src/host/db/open.js';
import { Gateway, GATEWAY_SOCKET, MAX_SOCKET_PATH_BYTES } from '../src/gateway/gateway.js';
import { Vault } from '../src/gateway/vault.js';
import { startHost } from '../src/host/host.js';
import { createLogger } from '../src/shared/log.js';
import { cli, tempHome } from './support/cli.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A data dir path under the temp dir, long enough that even the admin socket in it is too long. */
function longHome(): { home: string; strays: () => string[] } {
  const base = `polyclaw-long-${randomBytes(4).toString('hex')}-${'x'.repeat(120)}`;
  const home = path.join(os.tmpdir(), base);
  // Anything else in the temp dir whose name is a cut-short prefix of ours.
  const strays = () =>
    fs.readdirSync(os.tmpdir()).filter((n) => n !== base && n.length > 20 && base.startsWith(n));
  cleanup.push(() => {
    fs.rmSync(home, { recursive: true, force: true });
    for (const s of strays()) fs.rmSync(path.join(os.tmpdir(), s), { force: true });
  });
  return { home, strays };
}

function gatewayIn(home: string): Gateway {
  const db = openCentralDb(path.join(home, 'polyclaw.db'));
  cleanup.push(() => db.close());
  return new Gateway({
    secrets: Vault.open(db, { kind: 'file', path: path.join(home, 'vault.key') }),
    policy: () => ({ allowHosts: [], requestsPerHour: null }),
    log: createLogger({ level: 'error', sink: () => {} }),
  });
}

describe('unix socket paths', () => {
  it('refuses `up` on a too-long POLYCLAW_HOME at once, with one line and no stray socket', () => {
    const { home, strays } = longHome();
    const t0 = Date.now();
    const r = cli(home, ['up'], { POLYCLAW_SANDBOX: 'process' }, 15_000);
    expect(r.code, r.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.join(home, 'admin.sock'));
    expect(lines[0]).toContain(`${MAX_SOCKET_PATH_BYTES}-byte limit`);
    expect(lines[0]).toContain('shorter POLYCLAW_HOME');
    expect(strays()).toEqual([]);
  });

  it('has the gateway refuse a too-long socket path without binding anything', async () => {
    const dir = tempHome();
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { home, strays } = longHome();
    const gw = gatewayIn(dir);
    await expect(gw.listen({ socketDir: path.join(home, 'gateway'), tcpPort: null })).rejects.toMatchObject({
      code: 'config',
      message: expect.stringContaining(path.join(home, 'gateway', GATEWAY_SOCKET)),
    });
    expect(fs.existsSync(home)).toBe(false);
    expect(strays()).toEqual([]);
  });

  it('closes the gateway socket again when its TCP port cannot be had', async () => {
    const dir = tempHome();
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanup.push(() => taken.close());
    const port = (taken.address() as net.AddressInfo).port;
    const gw = gatewayIn(dir);
    const socketDir = path.join(dir, 'gateway');
    await expect(gw.listen({ socketDir, tcpPort: port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const reached = await new Promise<boolean>((resolve) => {
      const c = net.connect(path.join(socketDir, GATEWAY_SOCKET));
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    expect(reached).toBe(false);
  });
});

describe('stopping the host', () => {
  it('goes through every step when one throws: the lock is released and the host can start again', async () => {
    const home = tempHome();
    cleanup.push(() => fs.rmSync(home, { recursive: true, force: true }));
    const env = { POLYCLAW_HOME: home, POLYCLAW_SANDBOX: 'process', POLYCLAW_GATEWAY_PORT: '' };
    const broken = {
      channelType: 'broken',
      setup: async () => {},
      teardown: async () => {
        throw new Error('the platform went away');
      },
      deliver: async () => 'x',
    };
    const quiet = createLogger({ level: 'error', sink: () => {} });
    const host = await startHost({ env, log: quiet, extraChannels: [broken] });
    await host.close();
    expect(fs.existsSync(path.join(home, 'host.lock'))).toBe(false);
    const again = await startHost({ env, log: quiet });
    await again.close();
  });
});

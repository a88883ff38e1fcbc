/** What every sandbox start is given: mounts, a minimal env, the group's MCP servers, no secrets. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/host/config.js';
import { openCentralDb } from '../src/host/db/open.js';
import { buildSpec } from '../src/host/sandbox-spec.js';
import { createGroup } from '../src/host/store/groups.js';
import { bwrapArgs, bwrapEnv } from '../src/sandbox/bwrap.js';
import { runtimeRegistry } from '../src/sandbox/index.js';
import type { Mount, SandboxSpec } from '../src/sandbox/runtime.js';
import { createLogger } from '../src/shared/log.js';
import { mcpServersFromEnv } from '../src/shared/mcp.js';
import { tempHome } from './support/cli.js';

let home: string;
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

describe('sandbox spec', () => {
  it('hands the group MCP servers to the runner, and nothing of the host environment', () => {
    home = tempHome();
    const db = openCentralDb(path.join(home, 'polyclaw.db'));
    const group = createGroup(db, 'g', {
      provider: 'mock',
      mcpServers: [
        { name: 'files', command: 'mcp-files', args: ['--root', '/workspace/agent'] },
        { name: 'web', url: 'https://mcp.example.test/sse' },
      ],
    });
    db.close();
    const runtime = runtimeRegistry.get('bwrap')({
      log: createLogger({ level: 'error' }),
      runDir: path.join(home, 'run'),
    });
    process.env.POLYCLAW_TEST_SECRET_SHOULD_NOT_LEAK = 'sk-leak';
    try {
      const spec = buildSpec({
        config: loadConfig({ POLYCLAW_HOME: home }),
        runtime,
        installId: 'x',
        group,
        sessionId: 's',
      });
      expect(mcpServersFromEnv(spec.env)).toEqual([
        { name: 'files', command: 'mcp-files', args: ['--root', '/workspace/agent'] },
        { name: 'web', args: [], url: 'https://mcp.example.test/sse' },
      ]);
      expect(JSON.stringify(spec)).not.toContain('sk-leak');
      expect(Object.keys(spec.env).sort()).toEqual([
        'HOME',
        'LANG',
        'PATH',
        'POLYCLAW_AGENT_DIR',
        'POLYCLAW_MCP_SERVERS',
        'POLYCLAW_SESSION_DIR',
        'TZ',
      ]);
      // The data folder is hidden wherever the system view would show it (bwrap arguments).
      expect(spec.hidden).toEqual([path.resolve(home)]);
    } finally {
      delete process.env.POLYCLAW_TEST_SECRET_SHOULD_NOT_LEAK;
    }
  });
});

describe('sandbox spec: host-wide provider defaults come from the config module', () => {
  it('an opencode group gets the configured timeouts, read by loadConfig, not from the host process', () => {
    home = tempHome();
    const db = openCentralDb(path.join(home, 'polyclaw.db'));
    const group = createGroup(db, 'oc', { provider: 'opencode', endpoint: 'local' });
    db.close();
    const runtime = runtimeRegistry.get('bwrap')({
      log: createLogger({ level: 'error' }),
      runDir: path.join(home, 'run'),
    });
    const spec = (env: NodeJS.ProcessEnv) =>
      buildSpec({
        config: loadConfig({ POLYCLAW_HOME: home, ...env }),
        runtime,
        installId: 'x',
        group,
        sessionId: 's',
      });
    process.env.OPENCODE_IDLE_TIMEOUT_MS = '999999';
    try {
      const plain = spec({});
      expect(plain.env.OPENCODE_IDLE_TIMEOUT_MS).toBeUndefined();
      expect(plain.env.POLYCLAW_MODEL_ENDPOINT).toBe('local');
      const tuned = spec({ OPENCODE_IDLE_TIMEOUT_MS: '600000', OPENCODE_START_TIMEOUT_MS: '90000' });
      expect(tuned.env.OPENCODE_IDLE_TIMEOUT_MS).toBe('600000');
      expect(tuned.env.OPENCODE_START_TIMEOUT_MS).toBe('90000');
      expect(() => spec({ OPENCODE_IDLE_TIMEOUT_MS: 'soon' })).toThrow(
        /OPENCODE_IDLE_TIMEOUT_MS must be an integer/,
      );
    } finally {
      delete process.env.OPENCODE_IDLE_TIMEOUT_MS;
    }
  });
});

describe('bwrap arguments', () => {
  it('refuse a read-only overlay of a writable mount whose source is gone; skip other missing sources', () => {
    const home = tempHome();
    try {
      const spec = (mounts: Mount[]): SandboxSpec => ({
        id: 's',
        installId: 'i',
        mounts,
        env: {},
        command: ['/bin/true'],
        cwd: '/',
        limits: { memoryMb: 256, cpus: 1, pids: 64 },
      });
      const gone = path.join(home, 'gone');
      const session = { source: home, target: '/session', mode: 'rw' as const };
      expect(() =>
        bwrapArgs(spec([session, { source: gone, target: '/session/inbound.db', mode: 'ro' }])),
      ).toThrow(/read-only overlay \/session\/inbound\.db has no source/);
      const args = bwrapArgs(spec([session, { source: gone, target: '/app/extra', mode: 'ro' }]));
      expect(args).not.toContain('/app/extra');
      expect(args.join(' ')).toContain(`--bind ${home} /session`);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('settle overlay mount points the sandbox replaced: a planted link is not followed out to the host', () => {
    const home = tempHome();
    try {
      const group = path.join(home, 'group');
      fs.mkdirSync(group);
      const composed = path.join(home, 'composed.md');
      fs.writeFileSync(composed, 'the composed instructions\n');
      const cfg = path.join(home, 'cfg');
      fs.mkdirSync(cfg);
      // Planted by an earlier sandbox of the group: a link climbing out of bwrap's new root into
      // the host's, and a file where a folder overlay goes.
      const planted = path.join(home, 'PLANTED');
      fs.symlinkSync(`../../..${'/oldroot'}${planted}`, path.join(group, 'CLAUDE.md'));
      fs.writeFileSync(path.join(group, '.cfg'), 'x');
      const spec: SandboxSpec = {
        id: 's',
        installId: 'i',
        mounts: [
          { source: group, target: '/workspace/agent', mode: 'rw' },
          { source: cfg, target: '/workspace/agent/.cfg', mode: 'rw' },
          { source: composed, target: '/workspace/agent/CLAUDE.md', mode: 'ro', file: true },
        ],
        env: {},
        command: ['/bin/cat', '/workspace/agent/CLAUDE.md'],
        cwd: '/',
        limits: { memoryMb: 256, cpus: 1, pids: 64 },
      };
      const args = bwrapArgs(spec);
      expect(fs.lstatSync(path.join(group, 'CLAUDE.md')).isFile()).toBe(true);
      expect(fs.lstatSync(path.join(group, '.cfg')).isDirectory()).toBe(true);
      const r = spawnSync('bwrap', args, { env: bwrapEnv(spec), encoding: 'utf8' });
      expect([r.status, r.stdout]).toEqual([0, 'the composed instructions\n']);
      expect(fs.existsSync(planted)).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("moves the agent's own entry at an overlay's name aside, keeping it; an overlay that cannot be placed is left out", () => {
    const home = tempHome();
    try {
      const group = path.join(home, 'group');
      fs.mkdirSync(path.join(group, 'AGENTS.md', 'sub'), { recursive: true });
      fs.writeFileSync(path.join(group, 'AGENTS.md', 'sub', 'x'), 'kept');
      fs.chmodSync(path.join(group, 'AGENTS.md', 'sub'), 0o555);
      const composed = path.join(home, 'composed.md');
      fs.writeFileSync(composed, 'c');
      const spec = (groupSource: string): SandboxSpec => ({
        id: 's',
        installId: 'i',
        mounts: [
          { source: groupSource, target: '/workspace/agent', mode: 'rw' },
          { source: composed, target: '/workspace/agent/AGENTS.md', mode: 'ro', file: true },
        ],
        env: {},
        command: ['/bin/true'],
        cwd: '/',
        limits: { memoryMb: 256, cpus: 1, pids: 64 },
      });
      const left: string[] = [];
      const args = bwrapArgs(spec(group), process.execPath, (target) => left.push(target));
      expect(left).toEqual([]);
      expect(args.join(' ')).toContain(`--ro-bind ${composed} /workspace/agent/AGENTS.md`);
      expect(fs.lstatSync(path.join(group, 'AGENTS.md')).isFile()).toBe(true);
      const aside = fs.readdirSync(group).filter((n) => n.startsWith('AGENTS.md.displaced-'));
      expect(aside).toHaveLength(1);
      expect(fs.readFileSync(path.join(group, aside[0]!, 'sub', 'x'), 'utf8')).toBe('kept');
      fs.chmodSync(path.join(group, aside[0]!, 'sub'), 0o755);
      // A mount point that cannot be made at all: the overlay is left out and said so.
      const notAFolder = path.join(home, 'not-a-folder');
      fs.writeFileSync(notAFolder, '');
      const args2 = bwrapArgs(spec(notAFolder), process.execPath, (target) => left.push(target));
      expect(left).toEqual(['/workspace/agent/AGENTS.md']);
      expect(args2).not.toContain('/workspace/agent/AGENTS.md');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('shows the sandbox only the Node binary, never the folders around it (a home, an install)', () => {
    const spec: SandboxSpec = {
      id: 's',
      installId: 'i',
      mounts: [],
      env: {},
      command: ['/bin/true'],
      cwd: '/',
      limits: { memoryMb: 256, cpus: 1, pids: 64 },
    };
    const node = path.join(os.homedir(), 'bin', 'node');
    const args = bwrapArgs(spec, node);
    const sources = args.flatMap((a, i) => (/^--(ro-)?bind$/.test(a) ? [args[i + 1]!] : []));
    expect(sources.filter((s) => node.startsWith(s + '/'))).toEqual([]);
    expect(args.join(' ')).toContain(`--ro-bind ${node} ${node}`);
    // Under a system folder it is already visible: no bind of its own.
    expect(bwrapArgs(spec, '/usr/bin/node').filter((a) => a.endsWith('/node'))).toEqual([]);
  });

  it('hides a data folder that lies inside the system view (a home under /usr): its vault key and DB stay out', () => {
    // A real folder under /usr where this machine lets us make one (CI runs as root); the
    // arguments are checked everywhere.
    const base = '/usr/local/share';
    const home = (() => {
      try {
        return fs.mkdtempSync(path.join(base, 'polyclaw-home-'));
      } catch {
        return null; // a read-only /usr: the arguments alone are checked
      }
    })();
    const where = home ?? '/usr/local/share/polyclaw-home-x';
    const spec: SandboxSpec = {
      id: 's',
      installId: 'i',
      mounts: [],
      env: {},
      command: ['/bin/sh', '-c', `cat ${where}/vault.key; ls ${where}`],
      cwd: '/',
      limits: { memoryMb: 256, cpus: 1, pids: 64 },
      hidden: [where],
    };
    try {
      const args = bwrapArgs(spec);
      expect(args.indexOf('--tmpfs', args.indexOf('/usr'))).toBe(args.indexOf(where) - 1);
      // A home outside the system view needs nothing: it is not shown in the first place.
      const elsewhere = path.join(os.tmpdir(), 'polyclaw-elsewhere');
      expect(bwrapArgs({ ...spec, hidden: [elsewhere] }).filter((a) => a === elsewhere)).toEqual([]);
      if (home) {
        fs.writeFileSync(path.join(home, 'vault.key'), 'the-vault-key');
        const r = spawnSync('bwrap', args, { env: bwrapEnv(spec), encoding: 'utf8' });
        expect(r.stdout).not.toContain('the-vault-key');
        expect(r.stdout.trim()).toBe('');
      }
    } finally {
      if (home) fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

/**
 * The vault with a real SQLite DB and the `polyclaw secrets` command: encryption at rest, key
 * handling (wrong, missing, world-readable, env), values never printed, bad input refused
 * without loss, grants, and `secrets login codex` with a fake codex binary.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { paths } from '../src/host/config.js';
import { openCentralDb } from '../src/host/db/open.js';
import { createGroup } from '../src/host/store/groups.js';
import { codexLogin } from '../src/gateway/codex-login.js';
import { Vault } from '../src/gateway/vault.js';
import { testSecret } from '../src/gateway/secret-test.js';
import { openVault } from '../src/host/gateway-host.js';
import { createLogger } from '../src/shared/log.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { BASE_ENV, cli, cliAsync, MAIN, tempHome } from './support/cli.js';
import { startFakeUpstream } from './support/fake-upstream.js';

const homes: string[] = [];
const home = () => {
  const h = tempHome('polyclaw-vault-');
  homes.push(h);
  return h;
};
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

function setSecret(h: string, args: string[], value: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, 'secrets', 'set', ...args, '--value-stdin', '--json'], {
    env: { ...BASE_ENV, POLYCLAW_HOME: h, POLYCLAW_LOG_LEVEL: 'warn', ...env },
    input: value,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vault', () => {
  it('stores values encrypted; a wrong key is refused and nothing is changed', () => {
    const h = home();
    const db = openCentralDb(paths(h).db);
    const v = Vault.open(db, { kind: 'file', path: paths(h).vaultKey });
    const secret = 'sk-test-' + randomBytes(16).toString('hex');
    v.set({ name: 'k', kind: 'openai', value: secret });
    expect((fs.statSync(paths(h).vaultKey).mode & 0o777).toString(8)).toBe('600');
    db.close();
    const bytes = fs.readFileSync(paths(h).db);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    const wal = paths(h).db + '-wal';
    if (fs.existsSync(wal)) expect(fs.readFileSync(wal).includes(Buffer.from(secret))).toBe(false);

    const keyBefore = fs.readFileSync(paths(h).vaultKey, 'utf8');
    const db2 = openCentralDb(paths(h).db);
    const wrong = randomBytes(32).toString('hex');
    expect(() => Vault.open(db2, { kind: 'env', name: 'POLYCLAW_VAULT_KEY', value: wrong })).toThrow(
      /does not open/,
    );
    expect(fs.readFileSync(paths(h).vaultKey, 'utf8')).toBe(keyBefore);
    fs.rmSync(paths(h).vaultKey);
    expect(() => Vault.open(db2, { kind: 'file', path: paths(h).vaultKey })).toThrow(/missing.*refusing/);
    expect(fs.existsSync(paths(h).vaultKey)).toBe(false);
    fs.writeFileSync(paths(h).vaultKey, keyBefore, { mode: 0o644 });
    fs.chmodSync(paths(h).vaultKey, 0o644);
    expect(() => Vault.open(db2, { kind: 'file', path: paths(h).vaultKey })).toThrow(/chmod 600/);
    fs.chmodSync(paths(h).vaultKey, 0o600);
    const v2 = Vault.open(db2, { kind: 'file', path: paths(h).vaultKey });
    const g = createGroup(db2, 'g', { provider: 'mock' });
    const got = v2.forKind({ groupId: g.id, groupName: 'g', sandboxId: 'x' }, 'openai');
    expect(got.ok && got.secret.value).toBe(secret);
    db2.close();
  });

  it('refuses bad values without losing the stored one, and binds ciphertexts to rows', () => {
    const h = home();
    const db = openCentralDb(paths(h).db);
    const v = Vault.open(db, { kind: 'file', path: paths(h).vaultKey });
    const g = createGroup(db, 'g', { provider: 'mock' });
    const caller = { groupId: g.id, groupName: 'g', sandboxId: 'x' };
    v.set({ name: 'a', kind: 'anthropic', value: 'key-a' });
    v.set({ name: 'b', kind: 'anthropic', value: 'key-b' });
    expect(() => v.set({ name: 'a', kind: 'anthropic', value: 'two\nlines' })).toThrow(/one line/);
    expect(() => v.set({ name: 'a', kind: 'codex-chatgpt', value: '{}' })).toThrow(/auth.json/);
    expect(() => v.set({ name: 'c', kind: 'openai-compatible', value: 'k' })).toThrow(/--base-url/);
    expect(() => v.set({ name: 'Bad Name', kind: 'openai', value: 'k' })).toThrow(/secret names/);
    const a = v.byName(caller, 'a');
    expect(a.ok && a.secret.value).toBe('key-a');
    // Swap the sealed blobs between rows: decryption must fail, not return the other value.
    db.exec(`UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'b') WHERE name = 'a'`);
    expect(() => v.byName(caller, 'a')).toThrow(/cannot be decrypted/);
    db.close();
  });

  it('a lookup after a change sees it: a new value (here or from another process), a revoke, a delete', () => {
    const h = home();
    const db = openCentralDb(paths(h).db);
    const v = Vault.open(db, { kind: 'file', path: paths(h).vaultKey });
    const g = createGroup(db, 'g', { provider: 'mock' });
    const other = createGroup(db, 'other', { provider: 'mock' });
    const caller = { groupId: g.id, groupName: 'g', sandboxId: 'x' };
    const value = () => {
      const r = v.byName(caller, 'a');
      return r.ok ? r.secret.value : r.reason;
    };
    v.set({ name: 'a', kind: 'anthropic', value: 'key-1' });
    expect(value()).toBe('key-1');
    expect(value()).toBe('key-1');
    v.set({ name: 'a', kind: 'anthropic', value: 'key-2' });
    expect(value()).toBe('key-2');
    // Another process (the CLI) writing the same DB file.
    const db2 = openCentralDb(paths(h).db);
    Vault.open(db2, { kind: 'file', path: paths(h).vaultKey }).set({
      name: 'a',
      kind: 'anthropic',
      value: 'key-3',
    });
    db2.close();
    expect(value()).toBe('key-3');
    v.grant('a', other.id);
    expect(value()).toBe('not_granted');
    v.grantAll('a');
    expect(value()).toBe('key-3');
    v.delete('a');
    expect(value()).toBe('none');
    db.close();
  });
});

describe('polyclaw secrets', () => {
  it('set/list/grant/revoke/delete; list never prints a value', () => {
    const h = home();
    expect(cli(h, ['groups', 'create', 'alpha', '--provider', 'mock']).code).toBe(0);
    expect(cli(h, ['groups', 'create', 'beta', '--provider', 'mock']).code).toBe(0);
    const secret = 'sk-ant-api03-' + randomBytes(16).toString('hex');
    const s = setSecret(h, ['claude', '--kind', 'anthropic'], secret + '\n');
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).result).toEqual({ name: 'claude', created: true });
    const l = cli(h, ['secrets', 'list', '--json']);
    expect(l.code).toBe(0);
    expect(l.json.result[0]).toMatchObject({
      name: 'claude',
      kind: 'anthropic',
      host: 'api.anthropic.com',
      grants: 'all',
      lastUsedAt: null,
    });
    const human = cli(h, ['secrets', 'list']);
    expect(human.stdout).toContain('claude  kind=anthropic');
    expect(cli(h, ['secrets', 'grant', 'claude', '--group', 'alpha', '--json']).json.result.grants).toEqual([
      'alpha',
    ]);
    expect(cli(h, ['secrets', 'revoke', 'claude', '--group', 'alpha', '--json']).json.result.grants).toEqual(
      [],
    );
    expect(cli(h, ['secrets', 'grant', 'claude', '--all', '--json']).json.result.grants).toBe('all');
    for (const r of [l, human]) expect(r.stdout + r.stderr).not.toContain(secret);
    expect(cli(h, ['secrets', 'delete', 'claude']).code).toBe(0);
    expect(cli(h, ['secrets', 'list', '--json']).json.result).toEqual([]);
  });

  it('deleting or revoking the secret a group names as --endpoint warns that its messages will fail', () => {
    const h = home();
    expect(
      setSecret(h, ['ep', '--kind', 'openai-compatible', '--base-url', 'http://127.0.0.1:9/v1'], 'k').code,
    ).toBe(0);
    expect(cli(h, ['groups', 'create', 'oc1', '--provider', 'mock', '--endpoint', 'ep']).code).toBe(0);
    expect(cli(h, ['secrets', 'grant', 'ep', '--group', 'oc1']).stderr).toBe('');
    const revoked = cli(h, ['secrets', 'revoke', 'ep', '--group', 'oc1']);
    expect([revoked.code, revoked.stderr]).toEqual([
      0,
      'warning: group oc1 uses "ep" as --endpoint: its messages fail until it is granted again\n',
    ]);
    // Granting one group a secret open to all narrows it to that group: the others are told.
    expect(cli(h, ['groups', 'create', 'oc2', '--provider', 'mock', '--endpoint', 'ep']).code).toBe(0);
    expect(cli(h, ['secrets', 'grant', 'ep', '--all']).code).toBe(0);
    const narrowed = cli(h, ['secrets', 'grant', 'ep', '--group', 'oc2']);
    expect([narrowed.code, narrowed.stderr]).toEqual([
      0,
      'warning: group oc1 uses "ep" as --endpoint: its messages fail until it is granted again\n',
    ]);
    expect(cli(h, ['groups', 'delete', 'oc2']).code).toBe(0);
    const deleted = cli(h, ['secrets', 'delete', 'ep', '--json']);
    expect(deleted.json.result.warnings).toEqual([
      'group oc1 uses "ep" as --endpoint: its messages fail until it is set again',
    ]);
  });

  it('secrets test makes one authenticated request through the gateway', async () => {
    const h = home();
    const up = await startFakeUpstream();
    try {
      const secret = 'sk-ant-' + randomBytes(8).toString('hex');
      expect(setSecret(h, ['claude', '--kind', 'anthropic', '--base-url', up.url], secret).code).toBe(0);
      const r = await cliAsync(h, ['secrets', 'test', 'claude', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.result).toMatchObject({ name: 'claude', ok: true, status: 200 });
      expect(up.requests[0]).toMatchObject({ url: '/v1/models' });
      expect(up.requests[0]!.headers['x-api-key']).toBe(secret);
      expect(r.stdout + r.stderr).not.toContain(secret);
      const l = cli(h, ['secrets', 'list', '--json']);
      expect(l.json.result[0].lastStatus).toBe(200);
    } finally {
      await up.close();
    }
  });

  it('secrets test of an endpoint that fails says why on stderr, in one line, and exits non-zero', async () => {
    const h = home();
    expect(
      setSecret(h, ['dead', '--kind', 'openai-compatible', '--base-url', 'http://127.0.0.1:9/v1'], 'k').code,
    ).toBe(0);
    const r = await cliAsync(h, ['secrets', 'test', 'dead']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^polyclaw: secret dead FAILED \(HTTP 502, \d+ ms\): \S/);
    const j = await cliAsync(h, ['secrets', 'test', 'dead', '--json']);
    expect(j.code).toBe(1);
    expect(j.json).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });

  it('bad input: one-line error, non-zero exit, nothing lost', () => {
    const h = home();
    expect(setSecret(h, ['k', '--kind', 'openai'], 'keep-me').code).toBe(0);
    const cases: Array<[string[], RegExp, string?]> = [
      [
        ['secrets', 'set', 'k', '--kind', 'nope', '--value-stdin'],
        /^polyclaw: --kind: Invalid option: expected one of/,
        'x',
      ],
      [['secrets', 'set', 'k', '--kind', 'openai', 'literal-value'], /never from arguments/],
      [['secrets', 'set', 'k', '--kind', 'openai', '--value-stdin'], /empty/, ''],
      [['secrets', 'set', 'k', '--kind', 'openai', '--base-url', 'ftp://x', '--value-stdin'], /http/, 'v'],
      [['secrets', 'delete', 'nope'], /no secret named/],
      [['secrets', 'grant', 'k', '--group', 'ghost'], /ghost/],
      [['secrets', 'frobnicate'], /unknown secrets command/],
      [['secrets', 'login', 'claude'], /only "secrets login codex"/],
    ];
    for (const [args, re, input] of cases) {
      const r = spawnSync(process.execPath, [MAIN, ...args], {
        env: { ...BASE_ENV, POLYCLAW_HOME: h, POLYCLAW_LOG_LEVEL: 'warn' },
        input: input ?? '',
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, args.join(' ')).toBeGreaterThan(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(re);
      const j = spawnSync(process.execPath, [MAIN, ...args, '--json'], {
        env: { ...BASE_ENV, POLYCLAW_HOME: h, POLYCLAW_LOG_LEVEL: 'warn' },
        input: input ?? '',
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(JSON.parse(j.stdout.trim()).ok).toBe(false);
    }
    const db = openCentralDb(paths(h).db);
    const v = Vault.open(db, { kind: 'file', path: paths(h).vaultKey });
    const g = createGroup(db, 'g', { provider: 'mock' });
    const k = v.byName({ groupId: g.id, groupName: 'g', sandboxId: 'x' }, 'k');
    expect(k.ok && k.secret.value).toBe('keep-me');
    db.close();
  });

  it('a wrong POLYCLAW_VAULT_KEY is refused by the CLI and by the host', () => {
    const h = home();
    expect(setSecret(h, ['k', '--kind', 'openai'], 'v').code).toBe(0);
    const bad = { POLYCLAW_VAULT_KEY: randomBytes(32).toString('hex') };
    const r = cli(h, ['secrets', 'list'], bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not open this data directory's vault/);
    const up = cli(h, ['up'], bad, 20_000);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/does not open this data directory's vault/);
    expect(cli(h, ['secrets', 'list', '--json']).json.result).toHaveLength(1);
  });
});

describe('secrets login codex', () => {
  const fakeCodex = (dir: string, script: string) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'codex'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  };
  const AUTH = JSON.stringify({
    OPENAI_API_KEY: null,
    tokens: { access_token: 'at-real', refresh_token: 'rt-real', account_id: 'acct' },
  });

  it('vaults the auth.json and removes the temp CODEX_HOME on success and on failure', async () => {
    const h = home();
    const bin = path.join(h, 'bin');
    const tmp = path.join(h, 'tmp');
    fs.mkdirSync(tmp);
    // The fake checks it runs with a throwaway CODEX_HOME = HOME and without our vault key.
    fakeCodex(
      bin,
      `[ "$1" = login ] || exit 9\n[ "$CODEX_HOME" = "$HOME" ] || exit 8\n[ -z "$POLYCLAW_VAULT_KEY" ] || exit 7\necho '${AUTH}' > "$CODEX_HOME/auth.json"`,
    );
    // The key in our environment must not reach the login child (the fake exits 7 if it does).
    const key = randomBytes(32).toString('hex');
    const env = { PATH: `${bin}:${process.env.PATH}`, TMPDIR: tmp, POLYCLAW_VAULT_KEY: key };
    const ok = cli(h, ['secrets', 'login', 'codex', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json.result).toEqual({ name: 'codex', created: true });
    expect(ok.stdout).not.toContain('rt-real');
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(cli(h, ['secrets', 'list', '--json'], { POLYCLAW_VAULT_KEY: key }).json.result[0]).toMatchObject({
      name: 'codex',
      kind: 'codex-chatgpt',
    });

    fakeCodex(bin, `echo '${AUTH}' > "$CODEX_HOME/auth.json"; exit 3`);
    const fail = cli(h, ['secrets', 'login', 'codex', '--name', 'other'], env);
    expect(fail.code).toBe(1);
    expect(fail.stderr).toMatch(/codex login did not complete/);
    expect(fs.readdirSync(tmp)).toEqual([]);
    fakeCodex(bin, `echo 'not json' > "$CODEX_HOME/auth.json"`);
    expect(cli(h, ['secrets', 'login', 'codex', '--name', 'other'], env).code).not.toBe(0);
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(cli(h, ['secrets', 'list', '--json'], { POLYCLAW_VAULT_KEY: key }).json.result).toHaveLength(1);
  });

  it('removes the temp dir when the binary is missing (injected spawn)', async () => {
    const h = home();
    let dir = '';
    await expect(
      codexLogin({ tmpRoot: h, codexBin: path.join(h, 'no-such-codex'), onTempDir: (d) => (dir = d) }),
    ).rejects.toThrow(/not installed/);
    expect(dir).not.toBe('');
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('secrets test of an upstream that never answers', () => {
  it('fails with a reason after its timeout; the late end of the request records nothing and throws nothing', async () => {
    const hang = http.createServer(() => {}); // takes the request, never answers
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    const port = (hang.address() as AddressInfo).port;
    const h = home();
    const db = openCentralDb(path.join(h, 'polyclaw.db'));
    try {
      const vault = openVault(db, { POLYCLAW_HOME: h });
      vault.set({
        name: 'slow',
        kind: 'openai-compatible',
        value: 'k',
        baseUrl: `http://127.0.0.1:${port}/v1`,
      });
      const r = await testSecret(vault, 'slow', {
        log: createLogger({ level: 'error' }),
        upstreams: {},
        timeoutMs: 200,
      });
      expect(r).toMatchObject({ name: 'slow', ok: false, status: 0, reason: 'no answer within 0.2 s' });
    } finally {
      db.close(); // as the CLI does once the test returned
      hang.closeAllConnections();
      await new Promise((r) => hang.close(r));
    }
    await new Promise((r) => setTimeout(r, 100)); // a late markUsed on the closed DB would throw here
  });
});

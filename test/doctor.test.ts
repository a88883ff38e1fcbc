/**
 * `polyclaw doctor`: the agents it can run here, and groups whose provider or endpoint is missing;
 * `groups create` warns about a missing endpoint secret too.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryCheck } from '../src/providers/binary-check.js';
import { claudeBinary, codexBinary, opencodeBinary } from '../src/shared/agent-binaries.js';
import { cli, cliAsync, tempHome } from './support/cli.js';

type Check = { name: string; ok: boolean; detail: string; fix?: string };
const checks = (r: { json: { result: { checks: Check[] } } }) =>
  Object.fromEntries(r.json.result.checks.map((c) => [c.name, c]));

describe('polyclaw doctor', () => {
  let home: string;
  beforeAll(() => (home = tempHome()));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('makes a missing data folder private (0700), as the host does: the vault key and DB go in it', () => {
    const fresh = `${home}-fresh`;
    try {
      expect(cli(fresh, ['doctor', '--json']).code).toBe(0);
      expect(fs.statSync(fresh).mode & 0o777).toBe(0o700);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('reports the version of every installed agent', () => {
    const r = cli(home, ['doctor', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const c = checks(r);
    expect(c['provider claude']).toMatchObject({ ok: true, detail: expect.stringMatching(/Claude Code/) });
    expect(c['provider codex']).toMatchObject({ ok: true, detail: expect.stringMatching(/^codex-cli \d/) });
    expect(c['provider opencode']).toMatchObject({ ok: true, detail: expect.stringMatching(/^\d+\.\d+/) });
    expect(c['provider mock']).toMatchObject({ ok: true });
  });

  it('fails on a group whose endpoint secret is not in the vault, and says what to run', async () => {
    const created = cli(home, ['groups', 'create', 'asst', '--provider', 'claude', '--endpoint', 'work-key']);
    expect(created.code).toBe(0); // a group may be saved before its secret…
    expect(created.stderr).toMatch(/^warning: the vault has no secret "work-key" yet/m); // …with a warning
    const bad = cli(home, ['doctor', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({
      ok: false,
      error: {
        code: 'unavailable',
        message: expect.stringMatching(/^\d+ checks? failed: (.*, )?group asst(,|$)/),
      },
    });
    expect(checks(bad)['group asst']).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/endpoint secret "work-key" is not in the vault/),
      fix: expect.stringMatching(/polyclaw secrets set work-key/),
    });
    const human = cli(home, ['doctor']);
    expect(human.stdout).toMatch(/^FAIL group asst: .*work-key.* — polyclaw secrets set work-key/m);

    const set = await cliAsync(
      home,
      ['secrets', 'set', 'work-key', '--kind', 'anthropic', '--value-stdin'],
      {},
      'sk-ant-x',
    );
    expect(set.code, set.stderr).toBe(0);
    const good = cli(home, ['doctor', '--json']);
    expect(good.code, good.stdout).toBe(0);
    expect(checks(good)['group asst']).toMatchObject({ ok: true, detail: 'claude, endpoint work-key' });
  });
});

describe('the agent binary locators', () => {
  it('find the installed binaries, and answer null (not a guessed path) where none is installed', () => {
    for (const bin of [claudeBinary(), codexBinary(), opencodeBinary()])
      expect(fs.existsSync(bin!)).toBe(true);
    const elsewhere = tempHome('no-modules-');
    try {
      expect(codexBinary(elsewhere)).toBeNull();
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('an agent binary check', () => {
  it('says the binary is missing, or why it did not answer', async () => {
    expect(await binaryCheck(() => null, 'codex')).toEqual({
      ok: false,
      detail: 'its binary is not installed',
      fix: 'run npm ci in the Polyclaw install (@openai/codex vendors the codex binary)',
    });
    expect(await binaryCheck(() => '/nonexistent/codex', 'codex')).toMatchObject({
      ok: false,
      detail: 'its binary is not installed',
    });
    expect(await binaryCheck(() => '/bin/false', 'claude')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/\/bin\/false --version failed/),
    });
  });
});

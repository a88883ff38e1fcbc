/** The command line's own behaviour, through the built `polyclaw` command: flags given twice, the version. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliAsync, ROOT, tempHome } from './support/cli.js';

const home = tempHome('polyclaw-cli-args-');
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

describe('polyclaw command line', () => {
  it('a value flag given twice is a usage error naming it, and nothing is made', async () => {
    for (const args of [
      ['groups', 'create', 'x', '--provider', 'mock', '--provider', 'claude'],
      ['groups', 'create', 'x', '--provider=mock', '--provider=claude'],
    ]) {
      const r = await cliAsync(home, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining('--provider is given twice')]);
    }
    expect((await cliAsync(home, ['groups', 'list', '--json'])).json.result).toEqual([]);
  });

  it('prints its version, as text or JSON', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const v of ['version', '--version']) {
      const r = await cliAsync(home, [v]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(`polyclaw ${version}`);
    }
    expect((await cliAsync(home, ['version', '--json'])).json.result).toEqual({ version });
    expect((await cliAsync(home, ['version', 'extra'])).code).toBe(2);
  });
});

describe('groups update', () => {
  it('an empty optional setting clears it back to the default', async () => {
    const h = tempHome('polyclaw-cli-clear-');
    try {
      expect(
        (
          await cliAsync(h, [
            'groups',
            'create',
            'g',
            '--provider',
            'mock',
            '--model',
            'm1',
            '--timezone',
            'UTC',
          ])
        ).code,
      ).toBe(0);
      const r = await cliAsync(h, ['groups', 'update', 'g', '--model', '', '--timezone', '', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const shown = (await cliAsync(h, ['groups', 'show', 'g', '--json'])).json.result;
      expect(JSON.stringify(shown)).toMatch(/"model":null/);
      expect(JSON.stringify(shown)).toMatch(/"timezone":null/);
    } finally {
      fs.rmSync(h, { recursive: true, force: true });
    }
  });
});

describe('admin commands while a host starts or stops', () => {
  it('never run beside a host that holds the lock without answering: one line, after a short wait', async () => {
    const h = tempHome('polyclaw-cli-held-');
    try {
      fs.writeFileSync(path.join(h, 'host.lock'), ''); // a starter that has not written its pid yet
      const t0 = Date.now();
      const r = await cliAsync(h, ['groups', 'create', 'x', '--provider', 'mock']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/holds this POLYCLAW_HOME .*try again/),
      ]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2500); // it waited for the socket first
      expect(fs.existsSync(path.join(h, 'polyclaw.db'))).toBe(false);
      // A chat waits for it the same way, and says it is starting or stopping, not "not running".
      const chat = await cliAsync(h, ['chat', '-m', 'hi']);
      expect(chat.code).toBe(1);
      expect(chat.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/holds this POLYCLAW_HOME .*try again/),
      ]);
      fs.rmSync(path.join(h, 'host.lock'));
      expect((await cliAsync(h, ['groups', 'list', '--json'])).json.result).toEqual([]);
      expect((await cliAsync(h, ['chat', '-m', 'hi'])).stderr).toMatch(/host is not running/);
    } finally {
      fs.rmSync(h, { recursive: true, force: true });
    }
  });
});

/** Sandbox lifecycle through a real host: limits, idle stop, resume, and the concurrency cap. */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLayout } from '../src/sandbox/limits.js';
import { cli, cliAsync, startHostProc, tempHome, waitFor, type HostProc } from './support/cli.js';
import { mock } from './support/meta.js';

describe('sandbox lifecycle', () => {
  let home: string;
  let host: HostProc;

  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, {
      POLYCLAW_IDLE_TIMEOUT_MS: '1500',
      POLYCLAW_MAX_SANDBOXES: '1',
      POLYCLAW_LOG_LEVEL: 'warn',
    });
    expect(cli(home, ['groups', 'create', 'second', '--provider', 'mock']).code).toBe(0);
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const sandboxOf = (group: string) =>
    (cli(home, ['sessions', 'list', '--group', group, '--json']).json.result[0]?.sandbox ?? null) as {
      pid: number;
    } | null;

  it('applies memory and pids limits through cgroups when the host offers them', async () => {
    const layout = detectLayout();
    const turn = cliAsync(home, ['chat', '-m', mock({ delayMs: 1500 }), '--json']);
    const sb = await waitFor(() => sandboxOf('main'), 10_000, 'sandbox running');
    if (layout) {
      // The record appears at spawn; the wrapper joins its cgroups a moment later, before exec.
      const cg = await waitFor(
        () => {
          const text = fs.readFileSync(`/proc/${sb.pid}/cgroup`, 'utf8');
          return /polyclaw-[0-9a-f]+-/.test(text) ? text : null;
        },
        5000,
        'sandbox in its cgroups',
      );
      const memLine = cg
        .split('\n')
        .find((l) => (layout.kind === 'v2' ? l.startsWith('0::') : /:memory:/.test(l)))!;
      const rel = memLine.slice(memLine.lastIndexOf(':') + 1);
      const limitFile =
        layout.kind === 'v2'
          ? `${layout.base}${rel}/memory.max`
          : `${layout.memory}${rel}/memory.limit_in_bytes`;
      const limit = fs.readFileSync(limitFile, 'utf8').trim();
      expect(limit).toMatch(/^\d+$/);
      expect(Number(limit)).toBeLessThan(64 * 1024 ** 3);
    }
    expect((await turn).code).toBe(0);
  });

  it('stops an idle sandbox and resumes the conversation in the next one', async () => {
    const first = cli(home, ['chat', '-m', mock({ reply: 'turn {{turn}} resumed={{resumed}}' }), '--json'])
      .json.result.replies[0].text as string;
    await waitFor(() => sandboxOf('main') === null, 10_000, 'idle stop');
    const second = cli(home, ['chat', '-m', mock({ reply: 'turn {{turn}} resumed={{resumed}}' }), '--json'])
      .json.result.replies[0].text as string;
    expect(second).toBe(`turn ${Number(first.split(' ')[1]) + 1} resumed=true`);
  });

  it('with a cap of one sandbox, a second group waits for the busy one and then answers', async () => {
    const slow = cliAsync(home, ['chat', '-m', mock({ delayMs: 1000, reply: 'main done' }), '--json']);
    await waitFor(() => sandboxOf('main'), 5000, 'main sandbox');
    const t0 = Date.now();
    const other = cli(home, ['chat', '--group', 'second', '-m', 'hi', '--json']);
    expect(other.json.result.replies[0].text).toBe('echo: hi');
    expect((await slow).json.result.replies[0].text).toBe('main done');
    expect(Date.now() - t0).toBeGreaterThan(300);
    expect(sandboxOf('main')).toBeNull();
  });
});

describe('process runtime (explicit opt-in, development only)', () => {
  it('answers without isolation and warns on every sandbox start', async () => {
    const home = tempHome();
    const host = await startHostProc(home, { POLYCLAW_SANDBOX: 'process', POLYCLAW_LOG_LEVEL: 'warn' });
    try {
      const r = cli(home, ['chat', '-m', 'plain process', '--json']);
      expect(r.json.result.replies[0].text).toBe('echo: plain process');
      await waitFor(() => host.stderr().includes('WITHOUT a sandbox'), 5000, 'warning');
    } finally {
      await host.stop();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

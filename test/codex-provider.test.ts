/**
 * The codex provider against the REAL `codex app-server` binary and a fake Responses server on
 * 127.0.0.1 (no sandbox here; e2e-codex.test.ts covers the host + bwrap + gateway path).
 * CODEX_HOME lives under the repo's .test-tmp, never under /tmp (FINDINGS §A).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodexProvider } from '../src/runner/providers/codex.js';
import type { AgentQuery, ProviderEvent } from '../src/shared/provider.js';
import { createLogger } from '../src/shared/log.js';
import { startFakeResponses, type FakeResponses } from './support/fake-responses.js';
import { MAIN, ROOT } from './support/cli.js';

const TMP = path.join(ROOT, '.test-tmp');

function mkAgent(name: string) {
  const dir = fs.mkdtempSync(path.join(TMP, `${name}-`));
  fs.mkdirSync(path.join(dir, 'agent'));
  fs.mkdirSync(path.join(dir, 'session'));
  return dir;
}

/** Collect events until `n` results/errors arrived (then end()), or the stream ends. */
async function collect(
  q: AgentQuery,
  n: number,
  onEvent?: (e: ProviderEvent) => void,
): Promise<ProviderEvent[]> {
  const out: ProviderEvent[] = [];
  let answers = 0;
  for await (const e of q.events) {
    out.push(e);
    onEvent?.(e);
    if (e.type === 'result' || e.type === 'error') if (++answers === n) q.end();
  }
  return out;
}

describe('codex provider with the real codex app-server', () => {
  let fake: FakeResponses;
  const secretEnv = { OPENAI_API_KEY: 'sk-should-never-reach-codex', ANTHROPIC_API_KEY: 'sk-ant-nope' };
  const mk = (dir: string, extra: Record<string, string> = {}) =>
    new CodexProvider(
      {
        sessionDir: path.join(dir, 'session'),
        agentDir: path.join(dir, 'agent'),
        model: 'fake-model',
        env: {
          PATH: process.env.PATH,
          HOME: path.join(dir, 'agent'),
          LANG: 'C.UTF-8',
          POLYCLAW_GATEWAY_URL: fake.url,
          POLYCLAW_GATEWAY_TOKEN: 'gw-token-123',
          ...secretEnv,
          ...extra,
        },
      },
      { toolsCli: MAIN, log: createLogger({ level: 'warn' }) },
    );

  beforeAll(async () => {
    fs.mkdirSync(TMP, { recursive: true });
    fake = await startFakeResponses();
  });
  afterAll(async () => {
    await fake?.close();
    fs.rmSync(TMP, { recursive: true, force: true });
  });

  it('text turn with streamed deltas, archived, through the gateway route with the token', async () => {
    const dir = mkAgent('text');
    fake.script({ text: 'Hello there', deltas: ['Hel', 'lo ', 'there'] });
    const q = mk(dir).query({ prompt: 'hi', cwd: path.join(dir, 'agent'), systemContext: 'ctx' });
    const ev = await collect(q, 1);
    expect(ev.find((e) => e.type === 'init')).toBeTruthy();
    expect(ev.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text)).toEqual([
      'Hel',
      'lo ',
      'there',
    ]);
    expect(ev.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'Hello there' }]);
    const req = fake.requests.at(-1)!;
    expect(req.url).toBe('/openai/v1/responses');
    expect(req.headers.authorization).toBe('Bearer gw-token-123');
    const toml = fs.readFileSync(path.join(dir, 'agent/.codex/config.toml'), 'utf8');
    expect(toml).toContain(`base_url = "${fake.url}/openai/v1"`);
    expect(toml).toContain('wire_api = "responses"');
    expect(fs.existsSync(path.join(dir, 'agent/memory/index.md'))).toBe(true);
  }, 30_000);

  it('shell tool turn: exec_command runs and its output reaches the model', async () => {
    const dir = mkAgent('shell');
    fake.script({ exec: 'echo tool-said-$((40+2))' }, { text: 'done with tool' });
    const q = mk(dir).query({ prompt: 'run it', cwd: path.join(dir, 'agent'), systemContext: '' });
    const ev = await collect(q, 1);
    expect(ev.some((e) => e.type === 'progress' && e.message.startsWith('running:'))).toBe(true);
    expect(ev.filter((e) => e.type === 'result')).toEqual([{ type: 'result', text: 'done with tool' }]);
    const out = JSON.stringify(fake.requests.at(-1)!.body.input);
    expect(out).toContain('tool-said-42');
  }, 30_000);

  it('resumes the same thread in a new process; a stale thread falls back to a fresh one', async () => {
    const dir = mkAgent('resume');
    const p = mk(dir);
    const a = await collect(p.query({ prompt: 'first', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    const init = (x: ProviderEvent[]) => x.find((e) => e.type === 'init') as { continuation: string };
    const thread = init(a).continuation;
    const warmPid = findCodexPid(path.join(dir, 'agent/.codex'));
    // A second query on the same provider reuses the warm app-server and its loaded thread.
    const again = await collect(
      p.query({ prompt: 'again', cwd: path.join(dir, 'agent'), systemContext: '', continuation: thread }),
      1,
    );
    expect(init(again).continuation).toBe(thread);
    expect(findCodexPid(path.join(dir, 'agent/.codex'))).toBe(warmPid);
    // The sandbox restarts: the old runner's app-server is gone, a new process resumes the thread.
    await p.close();
    fake.script({ text: 'second answer' });
    const b = await collect(
      mk(dir).query({
        prompt: 'second',
        cwd: path.join(dir, 'agent'),
        systemContext: '',
        continuation: thread,
      }),
      1,
    );
    expect(init(b).continuation).toBe(thread);
    // The resumed thread carries the first exchange to the model.
    expect(JSON.stringify(fake.requests.at(-1)!.body.input)).toContain('first');
    const stale = '019a0000-0000-7000-8000-000000000000';
    const c = await collect(
      mk(dir).query({
        prompt: 'third',
        cwd: path.join(dir, 'agent'),
        systemContext: '',
        continuation: stale,
      }),
      1,
    );
    expect(init(c).continuation).not.toBe(stale);
    expect(c.at(-1)).toEqual({ type: 'result', text: 'ok: third' });
    // The runner reports each exchange; codex keeps no transcript we can read, so it is archived.
    p.onExchangeComplete({ prompt: '', result: 'first answer', status: 'completed' });
    const files = fs.readdirSync(path.join(dir, 'agent/conversations'));
    expect(files).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, 'agent/conversations', files[0]!), 'utf8')).toContain('first');
  }, 45_000);

  it('steers a follow-up into a running turn; one answer per prompt, in order', async () => {
    const dir = mkAgent('steer');
    fake.script({ text: 'slow answer', deltas: ['slow ', 'answer'], delayMs: 1500 }, { text: 'after steer' });
    const q = mk(dir).query({ prompt: 'slow one', cwd: path.join(dir, 'agent'), systemContext: '' });
    let pushed = false;
    const ev = await collect(q, 2, (e) => {
      if (e.type === 'progress' && !pushed) {
        pushed = true;
        setTimeout(() => q.push('steered follow-up'), 200);
      }
    });
    const answers = ev.filter((e) => e.type === 'result' || e.type === 'error');
    expect(answers).toHaveLength(2);
    expect(JSON.stringify(fake.requests.map((r) => r.body.input))).toContain('steered follow-up');
  }, 30_000);

  it('a follow-up racing turn completion starts a new turn instead of being swallowed', async () => {
    const dir = mkAgent('race');
    const q = mk(dir).query({ prompt: 'race one', cwd: path.join(dir, 'agent'), systemContext: '' });
    let pushed = false;
    const ev = await collect(q, 2, (e) => {
      if (e.type === 'result' && !pushed) {
        pushed = true;
        q.push('race two');
      }
    });
    expect(ev.filter((e) => e.type === 'result')).toEqual([
      { type: 'result', text: 'ok: race one' },
      { type: 'result', text: 'ok: race two' },
    ]);
  }, 30_000);

  it('a turn that outlives its timeout ends with a retryable timeout error, and the next turn works', async () => {
    const dir = mkAgent('timeout');
    fake.script({ hang: true });
    const p = mk(dir, { POLYCLAW_CODEX_TURN_TIMEOUT_MS: '800' });
    const t0 = Date.now();
    const ev = await collect(p.query({ prompt: 'slow', cwd: path.join(dir, 'agent'), systemContext: '' }), 1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ev.at(-1)).toMatchObject({ type: 'error', retryable: true, classification: 'timeout' });
    fake.script({ text: 'back' });
    const next = await collect(
      p.query({ prompt: 'again', cwd: path.join(dir, 'agent'), systemContext: '' }),
      1,
    );
    expect(next.at(-1)).toEqual({ type: 'result', text: 'back' });
    await p.close();
  }, 30_000);

  it('abort interrupts a hanging turn and ends the stream promptly', async () => {
    const dir = mkAgent('abort');
    fake.script({ hang: true });
    const q = mk(dir).query({ prompt: 'hang', cwd: path.join(dir, 'agent'), systemContext: '' });
    const n = fake.requests.length;
    const done = collect(q, 1);
    await fake.waitRequests(n + 1);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    q.abort();
    const ev = await done;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(ev.some((e) => e.type === 'result' || e.type === 'error')).toBe(false);
  }, 30_000);

  it('app-server killed mid-turn: the error arrives within a second with the exit cause; env is allowlisted', async () => {
    const dir = mkAgent('kill');
    fake.script({ hang: true });
    const q = mk(dir).query({ prompt: 'hang again', cwd: path.join(dir, 'agent'), systemContext: '' });
    const n = fake.requests.length;
    const done = collect(q, 1);
    await fake.waitRequests(n + 1);
    const pid = findCodexPid(path.join(dir, 'agent/.codex'));
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    const names = environ.map((l) => l.split('=')[0]!);
    expect(names).not.toContain('OPENAI_API_KEY');
    expect(names).not.toContain('ANTHROPIC_API_KEY');
    expect(names).not.toContain('POLYCLAW_GATEWAY_TOKEN');
    expect(environ.join('\n')).not.toContain('sk-');
    const keyish = names.filter((k) => /KEY|TOKEN|SECRET|PASSWORD/i.test(k));
    expect(keyish).toEqual(['POLYCLAW_CODEX_KEY']);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const ev = await done;
    expect(Date.now() - t0).toBeLessThan(1000);
    const err = ev.find((e) => e.type === 'error') as Extract<ProviderEvent, { type: 'error' }>;
    expect(err).toMatchObject({ classification: 'crash', retryable: true });
    expect(err.message).toMatch(/exited \(signal SIGKILL\)/);
  }, 30_000);
});

function findCodexPid(codexHome: string): number {
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
      if (env.includes(`CODEX_HOME=${codexHome}\0`)) return Number(p);
    } catch {
      continue;
    }
  }
  throw new Error('codex process not found');
}

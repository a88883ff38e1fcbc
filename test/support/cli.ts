/**
 * Runs the built `polyclaw` command and a real host process against a temp POLYCLAW_HOME.
 * Tests use the same entry points a person does (dist/cli/main.js), so the sandbox runs the
 * real runner from the real install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

/** The caller's environment without POLYCLAW_* settings (a developer's own vault key or home must not leak in). */
export const BASE_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('POLYCLAW_')),
);

export function tempHome(prefix = 'polyclaw-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The last stdout line parsed as JSON, or null when it is not JSON (human output). */
function lastJson(stdout: string): unknown {
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '');
  } catch {
    return null;
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function cli(
  home: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): CliResult {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    env: { ...BASE_ENV, POLYCLAW_HOME: home, POLYCLAW_LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: lastJson(r.stdout) };
}

/** Vault an endpoint and create a group on it, without blocking the event loop (a fake model may live here). */
export async function createEndpointGroup(
  home: string,
  group: { name: string; provider: string; model?: string; effort?: string; approval?: string },
  endpoint: { name: string; baseUrl: string; secret: string; kind?: string },
): Promise<void> {
  const env = { POLYCLAW_LOG_LEVEL: 'warn' };
  const set = await cliAsync(
    home,
    [
      'secrets',
      'set',
      endpoint.name,
      '--kind',
      endpoint.kind ?? 'openai-compatible',
      '--base-url',
      endpoint.baseUrl,
      '--value-stdin',
    ],
    env,
    endpoint.secret,
  );
  if (set.code !== 0) throw new Error(`secrets set failed: ${set.stderr}`);
  const args = [
    'groups',
    'create',
    group.name,
    '--provider',
    group.provider,
    '--model',
    group.model ?? 'fake-model',
    '--endpoint',
    endpoint.name,
  ];
  if (group.effort) args.push('--effort', group.effort);
  if (group.approval) args.push('--approval', group.approval);
  const g = await cliAsync(home, args, env);
  if (g.code !== 0) throw new Error(`groups create failed: ${g.stderr}`);
}

export function cliAsync(
  home: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...BASE_ENV, POLYCLAW_HOME: home, POLYCLAW_LOG_LEVEL: 'warn', ...env },
    });
    child.stdin.end(input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr, json: lastJson(stdout) }));
  });
}

export interface HostProc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

export async function startHostProc(
  home: string,
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<HostProc> {
  const child = spawn(process.execPath, [MAIN, 'up'], {
    env: { ...BASE_ENV, POLYCLAW_HOME: home, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const deadline = Date.now() + timeoutMs;
  while (!out.includes('Polyclaw is up')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`host did not start: ${out}\n${err.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function waitFor<T>(
  fn: () => T | undefined | null | false,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Host processes and homes of a test file: `host(home)` starts one with `env`; after each test
 * every host is stopped and every home in `homes` removed.
 */
export function hostsPerTest(env: Record<string, string>): {
  homes: string[];
  host(home: string): Promise<HostProc>;
} {
  const homes: string[] = [];
  const hosts: HostProc[] = [];
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.stop();
    for (const d of homes.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    homes,
    async host(home) {
      const h = await startHostProc(home, env);
      hosts.push(h);
      return h;
    },
  };
}

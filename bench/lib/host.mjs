/**
 * A real Polyclaw host for benches: a temp POLYCLAW_HOME, `polyclaw up` from dist/, the CLI
 * for setup (secrets, groups), and an attached admin-socket client for timed chat turns.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from './admin-client.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Run the CLI; resolves with stdout, rejects with the tail of stderr. */
export function runCli(env, args, input, main = MAIN) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [main, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.stdin.end(input ?? '');
    c.on('exit', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`polyclaw ${args.join(' ')}: exit ${code}: ${err.slice(-500)}`)),
    );
  });
}

/** `main`: the CLI entry of the build to run (another checkout's dist/cli/main.js for an A/B). */
export async function startBenchHost(extraEnv = {}, main = MAIN) {
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-bench-'));
  const env = { ...process.env, POLYCLAW_HOME: home, POLYCLAW_LOG_LEVEL: 'warn', ...extraEnv };
  const child = spawn(process.execPath, [main, 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let errTail = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (errTail = (errTail + d).slice(-4000)));
  const exited = new Promise((r) => child.on('exit', r));
  const deadline = Date.now() + 20_000;
  while (!out.includes('Polyclaw is up')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`host did not start: ${errTail}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = await connect(path.join(home, 'admin.sock'));
  return {
    home,
    env,
    client,
    cli: (args, input) => runCli(env, args, input, main),
    /** Vault an OpenAI-compatible endpoint at baseUrl and create a group on it, attached for chat. */
    async group(name, provider, baseUrl, kind = 'openai-compatible') {
      await runCli(
        env,
        ['secrets', 'set', `${name}-key`, '--kind', kind, '--base-url', baseUrl, '--value-stdin'],
        'sk-bench',
        main,
      );
      await runCli(
        env,
        [
          'groups',
          'create',
          name,
          '--provider',
          provider,
          '--model',
          'fake-model',
          '--endpoint',
          `${name}-key`,
        ],
        undefined,
        main,
      );
      await client.request('chat.attach', { platformId: name });
    },
    async stop() {
      client.sock.destroy();
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

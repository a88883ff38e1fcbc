/**
 * `polyclaw secrets login codex`: run `codex login` under a throwaway CODEX_HOME (and HOME),
 * return the auth.json it wrote, and delete the directory on every exit path (success, failure,
 * Ctrl-C). The session is dedicated to Polyclaw, never a copy of the user's ~/.codex: two
 * refreshers sharing one OAuth session get it revoked. The child gets a minimal environment:
 * nothing of ours (no vault key) is passed on.
 * Not verified here (no codex binary on this machine): that `cli_auth_credentials_store = "file"`
 * in config.toml keeps codex off the OS keyring; tests use a fake `codex` script.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PolyclawError } from '../shared/errors.js';
import { parseAuthJson } from './chatgpt-auth.js';

export interface CodexLoginOptions {
  deviceAuth?: boolean;
  /** Injected for tests; defaults to child_process.spawn. */
  spawn?: typeof nodeSpawn;
  codexBin?: string;
  /** Parent of the throwaway directory (default: the OS temp dir). */
  tmpRoot?: string;
  /** PATH for the child (default: this process's PATH). */
  pathEnv?: string;
  /** Called with the temp dir as soon as it exists (tests check it is gone afterwards). */
  onTempDir?: (dir: string) => void;
}

export async function codexLogin(o: CodexLoginOptions = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(o.tmpRoot ?? os.tmpdir(), 'polyclaw-codex-login-'));
  o.onTempDir?.(dir);
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, 'config.toml'), 'cli_auth_credentials_store = "file"\n', { mode: 0o600 });
    const spawn = o.spawn ?? nodeSpawn;
    const child = spawn(o.codexBin ?? 'codex', ['login', ...(o.deviceAuth ? ['--device-auth'] : [])], {
      env: {
        PATH: o.pathEnv ?? process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        CODEX_HOME: dir,
        LANG: process.env.LANG ?? 'C.UTF-8',
        ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
        ...(process.env.DISPLAY ? { DISPLAY: process.env.DISPLAY } : {}),
      },
      stdio: 'inherit',
    });
    // Ctrl-C reaches codex too; we only make sure to wait for it so the cleanup below runs.
    const onSigint = () => child.kill('SIGINT');
    process.on('SIGINT', onSigint);
    let code: number | null;
    try {
      code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', (err: NodeJS.ErrnoException) =>
          reject(
            err.code === 'ENOENT'
              ? new PolyclawError('unavailable', 'the codex CLI is not installed (npm i -g @openai/codex)')
              : err,
          ),
        );
        child.once('exit', (c) => resolve(c));
      });
    } finally {
      process.off('SIGINT', onSigint);
    }
    if (code !== 0)
      throw new PolyclawError('unavailable', `codex login did not complete (exit ${code ?? 'signal'})`);
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, 'auth.json'), 'utf8');
    } catch {
      throw new PolyclawError('unavailable', 'codex login finished but wrote no auth.json');
    }
    parseAuthJson(text);
    return text;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

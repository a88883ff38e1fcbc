/**
 * Where the real agent binaries are: the platform packages npm installs next to the pinned
 * SDKs, not the npm launchers (a launcher costs a Node start per spawn and, for OpenCode, would
 * leave the real server holding its port). Shared by the runner (which spawns them) and by
 * `polyclaw doctor` (which asks them their version). Linux x64 is what the lockfile pins; other
 * platforms resolve to the package npm would have installed there.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const req = createRequire(import.meta.url);
const TRIPLE = 'x86_64-unknown-linux-musl';

/** The directory of an installed package, or null when npm did not install it here. */
function packageDir(name: string): string | null {
  try {
    return path.dirname(req.resolve(`${name}/package.json`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

/** Claude Code as bundled with @anthropic-ai/claude-agent-sdk (the SDK spawns the same file). */
export function claudeBinary(): string | null {
  const plat = `${process.platform}-${process.arch}`;
  for (const name of [
    `@anthropic-ai/claude-agent-sdk-${plat}`,
    `@anthropic-ai/claude-agent-sdk-${plat}-musl`,
  ]) {
    const dir = packageDir(name);
    const bin = dir && path.join(dir, process.platform === 'win32' ? 'claude.exe' : 'claude');
    if (bin && fs.existsSync(bin)) return bin;
  }
  return null;
}

/**
 * The vendored codex of the pinned @openai/codex (the Node launcher costs ~60 ms more per
 * start), from the nearest node_modules up from `from`; null when it is not installed.
 */
export function codexBinary(from = import.meta.dirname): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const p = path.join(dir, 'node_modules/@openai/codex-linux-x64/vendor', TRIPLE, 'bin/codex');
    if (fs.existsSync(p)) return p;
    if (path.dirname(dir) === dir) return null;
  }
}

/** The OpenCode platform binary, or null when its package is not installed here. */
export function opencodeBinary(): string | null {
  const dir = packageDir('opencode-linux-x64');
  return dir && path.join(dir, 'bin', 'opencode');
}

/** Which package brings each agent's binary: what the message about a missing one names. */
const INSTALLED_BY = {
  claude: '@anthropic-ai/claude-agent-sdk bundles Claude Code',
  codex: '@openai/codex vendors the codex binary',
  opencode: 'opencode-linux-x64 is the binary, on Linux x64',
} as const;
export type AgentBinary = keyof typeof INSTALLED_BY;

/** What to do about a missing agent binary (doctor's fix line). */
export function installFix(agent: AgentBinary): string {
  return `run npm ci in the Polyclaw install (${INSTALLED_BY[agent]})`;
}

/** The one-line error when an agent's binary is missing where a query needs it. */
export function notInstalled(agent: AgentBinary): string {
  return `the ${agent} binary is not installed: ${installFix(agent)}`;
}

/** First line of `<bin> --version`, or a one-line reason it could not run. */
export function binaryVersion(
  bin: string,
  timeoutMs = 15_000,
): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    execFile(bin, ['--version'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) resolve({ ok: false, reason: `${bin} --version failed: ${err.message.split('\n')[0]}` });
      else resolve({ ok: true, version: stdout.trim().split('\n')[0] ?? '' });
    });
  });
}

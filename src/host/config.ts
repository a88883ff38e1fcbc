/**
 * The one place configuration is read: POLYCLAW_* environment variables over
 * $POLYCLAW_HOME/config.json over embedded defaults, validated with zod; an unknown key is an
 * error (a misspelt setting must not fall back to its default without a word). Nothing else in
 * the host reads process.env for settings, and no secret from here is copied into a child's env.
 * A bad value is one line naming where it came from: the variable, else config.json and the field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { checkedString, upstreamUrl } from '../shared/fields.js';
import { validateTimezone } from '../shared/schedule.js';
import { PolyclawError } from '../shared/errors.js';
import { LOG_LEVELS, type Level } from '../shared/log.js';

/** The longest timer Node can set (~24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
/** A duration setting in ms: at least `min`, at most what a timer can wait. */
const ms = (min: number) =>
  z
    .number()
    .int()
    .min(min)
    .max(MAX_TIMER_MS, {
      error: `at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest timer Node can set)`,
    });

const SandboxConfig = z.strictObject({
  runtime: z.enum(['auto', 'bwrap', 'process']).default('auto'),
  maxConcurrent: z.number().int().min(1).max(256).default(8),
  idleTimeoutMs: ms(1000).default(30 * 60_000),
  memoryMb: z.number().int().min(64).default(4096),
  cpus: z.number().min(0.1).max(256).default(2),
  pids: z.number().int().min(16).default(1024),
});

/** Per agent group: CONNECT allowlist (host names, `*.domain`) and an optional request budget. */
const GatewayGroup = z.strictObject({
  allowHosts: z.array(z.string().min(1)).default([]),
  requestsPerHour: z.number().int().min(1).nullable().default(null),
});
const GatewayConfig = z.strictObject({
  /** Loopback TCP listener for runtimes without the socket; 0 = any free port, null = off. */
  tcpPort: z.number().int().min(0).max(65535).nullable().default(0),
  /** Upstream base URLs per secret kind (a secret's own --base-url wins). */
  upstreams: z
    .strictObject({
      anthropic: upstreamUrl(),
      openai: upstreamUrl(),
      'codex-chatgpt': upstreamUrl(),
    })
    .partial()
    .default({}),
  chatgptTokenUrl: upstreamUrl({ query: true }).optional(),
  groups: z.record(z.string(), GatewayGroup).default({}),
});

/** Host-wide defaults for OpenCode groups (slow local models): passed to its runner. */
const OpencodeConfig = z.strictObject({
  /** A turn with no event for this long fails as a timeout (a group's own value wins). */
  idleTimeoutMs: ms(1000).optional(),
  /** How long `opencode serve` may take to come up. */
  startTimeoutMs: ms(1000).optional(),
});

const ConfigSchema = z.strictObject({
  timezone: checkedString(validateTimezone).default(
    Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  ),
  sandbox: SandboxConfig.default(SandboxConfig.parse({})),
  /** Inbound processing attempts before a message is failed and the user told. */
  maxTries: z.number().int().min(1).max(20).default(3),
  retryBaseMs: ms(10).default(2000),
  /** A turn whose runner heartbeat is older than this is treated as stuck: sandbox killed, retried. */
  // Compared with the clock by the sweep, never a timer: a huge value means "off".
  stuckTimeoutMs: z
    .number()
    .int()
    .min(1000)
    .default(15 * 60_000),
  /**
   * A turn running longer than this (host clock, checked by the safety sweep) is failed and its
   * sandbox stopped, heartbeat or not.
   */
  maxTurnMs: z
    .number()
    .int()
    .min(60_000)
    .default(2 * 3_600_000),
  deliveryMaxAttempts: z.number().int().min(1).max(20).default(14),
  deliveryBaseMs: ms(10).default(500),
  /** Safety-net sweep; the hot path is event-driven. */
  safetyPollMs: ms(500).default(30_000),
  gateway: GatewayConfig.default(GatewayConfig.parse({})),
  opencode: OpencodeConfig.default({}),
});
export type Config = z.infer<typeof ConfigSchema> & { home: string; installDir: string };

const ENV_MAP: Array<[string, string[], 'int' | 'str']> = [
  ['POLYCLAW_SANDBOX', ['sandbox', 'runtime'], 'str'],
  ['POLYCLAW_MAX_SANDBOXES', ['sandbox', 'maxConcurrent'], 'int'],
  ['POLYCLAW_IDLE_TIMEOUT_MS', ['sandbox', 'idleTimeoutMs'], 'int'],
  ['POLYCLAW_MAX_TRIES', ['maxTries'], 'int'],
  ['POLYCLAW_RETRY_BASE_MS', ['retryBaseMs'], 'int'],
  ['POLYCLAW_STUCK_TIMEOUT_MS', ['stuckTimeoutMs'], 'int'],
  ['POLYCLAW_MAX_TURN_MS', ['maxTurnMs'], 'int'],
  ['POLYCLAW_TZ', ['timezone'], 'str'],
  ['POLYCLAW_GATEWAY_PORT', ['gateway', 'tcpPort'], 'int'],
  ['OPENCODE_IDLE_TIMEOUT_MS', ['opencode', 'idleTimeoutMs'], 'int'],
  ['OPENCODE_START_TIMEOUT_MS', ['opencode', 'startTimeoutMs'], 'int'],
];

export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.POLYCLAW_HOME || 'data');
}

/** Directory holding dist/ and node_modules/ of this install. */
export function installDir(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const home = resolveHome(env);
  // Read by the logger itself (it runs before any config), so checked here: a misspelt level
  // would otherwise log at 'info' without a word.
  const level = env.POLYCLAW_LOG_LEVEL;
  if (level && !LOG_LEVELS.includes(level.toLowerCase() as Level))
    throw new PolyclawError(
      'config',
      `POLYCLAW_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`,
    );
  let raw: Record<string, unknown> = {};
  const file = path.join(home, 'config.json');
  const hasFile = fs.existsSync(file);
  if (hasFile) raw = readConfigFile(file);
  // Which setting came from which variable: its errors name the variable, the rest the file.
  const fromEnv: Array<{ name: string; keys: string[] }> = [];
  for (const [name, keys, kind] of ENV_MAP) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const value = kind === 'int' ? Number(v) : v;
    // Decimal digits only: Number() would also take "0x10", "1e3" and " 5 ".
    if (kind === 'int' && (!/^-?\d+$/.test(v) || !Number.isSafeInteger(value)))
      throw new PolyclawError('config', `${name} must be an integer, got "${v}"`);
    const parent = objectAt(raw, keys.slice(0, -1));
    // The file has a non-object where a section belongs: left as it is, so the error names it.
    if (!parent) continue;
    parent[keys[keys.length - 1]!] = value;
    fromEnv.push({ name, keys });
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.map(String);
    const byEnv = fromEnv.find((o) => o.keys.every((k, i) => at[i] === k));
    if (byEnv) throw new PolyclawError('config', `${byEnv.name}: ${issue.message}`);
    const where = hasFile ? file : 'config';
    throw new PolyclawError('config', `${where}: ${at.length ? `${at.join('.')}: ` : ''}${issue.message}`);
  }
  return { ...parsed.data, home, installDir: installDir() };
}

/** The settings file as an object; anything else is one line naming the file. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PolyclawError('config', `${file}: cannot be read (${why})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PolyclawError('config', `${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new PolyclawError('config', `${file}: must be a JSON object of settings, got ${got}`);
  }
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The section at `keys` under `root`, made when missing; null when something else is there. */
function objectAt(root: Record<string, unknown>, keys: string[]): Record<string, unknown> | null {
  let obj = root;
  for (const k of keys) {
    if (obj[k] === undefined) obj[k] = {};
    const next = obj[k];
    if (!isObject(next)) return null;
    obj = next;
  }
  return obj;
}

/**
 * Where the vault key comes from: POLYCLAW_VAULT_KEY (never stored in Config, so it cannot be
 * logged or passed on), else the 0600 file $POLYCLAW_HOME/vault.key.
 */
export function vaultKeySource(
  env: NodeJS.ProcessEnv = process.env,
): { kind: 'env'; name: string; value: string } | { kind: 'file'; path: string } {
  const v = env.POLYCLAW_VAULT_KEY;
  // Set but empty is a mistake (an unset variable expanded), not a wish for the key file: a
  // key file made now would not open what the intended key sealed.
  if (v !== undefined && v.trim() === '')
    throw new PolyclawError(
      'config',
      'POLYCLAW_VAULT_KEY is set but empty: give the key, or unset it to use the key file',
    );
  if (v) return { kind: 'env', name: 'POLYCLAW_VAULT_KEY', value: v };
  return { kind: 'file', path: paths(resolveHome(env)).vaultKey };
}

/** Make the data directory (0700) if needed; a path that cannot be one is one line naming it. */
export function ensureHome(home: string): void {
  try {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'is not a directory'
        : code === 'EACCES' || code === 'EROFS'
          ? 'cannot be created here (no permission)'
          : `cannot be created (${(err as Error).message})`;
    throw new PolyclawError('config', `the data directory ${home} (POLYCLAW_HOME) ${why}`);
  }
  if (!fs.statSync(home).isDirectory())
    throw new PolyclawError('config', `the data directory ${home} (POLYCLAW_HOME) is not a directory`);
}

export const paths = (home: string) => ({
  db: path.join(home, 'polyclaw.db'),
  socket: path.join(home, 'admin.sock'),
  lock: path.join(home, 'host.lock'),
  groups: path.join(home, 'groups'),
  sessions: path.join(home, 'sessions'),
  run: path.join(home, 'run'),
  installId: path.join(home, 'install-id'),
  vaultKey: path.join(home, 'vault.key'),
  gatewayDir: path.join(home, 'gateway'),
});

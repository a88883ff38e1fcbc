/**
 * What `opencode serve` is started with: its config (OPENCODE_CONFIG_CONTENT) and its whole
 * environment. The settings are the verified offline ones (shared/reference/agent-clis/FINDINGS.md §B):
 *  - models fetch, autoupdate, share, LSP downloads, default plugins, Claude Code and external
 *    skills are all off; HOME and XDG dirs are isolated per group (they live in the group
 *    folder, so sessions survive a sandbox restart);
 *  - `$HOME/.npmrc` makes its unconditional plugin install fail offline instead of calling out;
 *  - the only model provider is an OpenAI-compatible one whose base URL is the runner's tap onto
 *    the gateway route, with a placeholder key: no credential is in the config or the environment;
 *  - `permission` is the group's approval policy (permissionConfig()): OPENCODE_CONFIG_CONTENT
 *    outranks every config file the agent could write in its folder.
 * The environment is built from an allowlist, never copied whole from the runner's.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ApprovalPolicy } from '../../shared/messages.js';
import { forOpencode, type StdioServer } from '../tools/config.js';
import { MAX_QUESTION_TIMEOUT_S } from '../../shared/messages.js';
import type { McpServerSpec, OpencodeSettings } from './opencode-settings.js';

export const PROVIDER_ID = 'polyclaw';
/** Sent as the API key: the tap replaces it with the gateway token, the gateway with the real key. */
export const PLACEHOLDER_KEY = 'polyclaw-placeholder';

/** The gateway route of the group's model calls, as a path under the gateway (and the tap). */
export function modelRoute(s: Pick<OpencodeSettings, 'endpoint'>): string {
  // An openai-compatible secret's base URL already ends in /v1 (Ollama, vLLM); the OpenAI route does not.
  return s.endpoint ? `/endpoints/${encodeURIComponent(s.endpoint)}` : '/openai/v1';
}

/** How OpenCode names an MCP tool (and its permission): `<server>_<tool>`, each part sanitized. */
const mcpKeyPart = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, '_');

/** The permission pattern that covers every tool of our MCP server `name` (and nothing else). */
export const ourToolsPattern = (name: string) => `${mcpKeyPart(name)}_*`;

/**
 * Tools that run under every policy: read-only ones, todo bookkeeping, loading skills, starting a subagent (whose own tool calls are checked in turn), and
 * `invalid`, OpenCode's answer to a call of a tool the model was not offered (denied, under
 * it the model would read "unavailable tool 'invalid'" instead of the tool it called).
 */
const ALWAYS_ALLOWED = [
  'invalid',
  'read',
  'glob',
  'grep',
  'list',
  'lsp',
  'todowrite',
  'todoread',
  'skill',
  'task',
] as const;

/**
 * The group's approval policy as OpenCode permission rules. OpenCode takes the LAST matching
 * rule, so the catch-all comes first:
 *  - 'bypass': everything is allowed (the sandbox is the boundary) but OpenCode's `question`;
 *  - 'ask': whatever is not in ALWAYS_ALLOWED (bash, edit/write/patch, webfetch, websearch,
 *    external_directory, doom_loop, other MCP servers' tools, tools added later) is asked
 *    (`permission.asked`), and the turn puts it to the chat (opencode-turn.ts);
 *  - 'deny': the same set is denied. OpenCode then leaves those tools out of what the model is
 *    offered; a call of one anyway is answered "Model tried to call unavailable tool …", and a
 *    pattern-level denial with "The user has specified a rule which prevents you …".
 * Our own MCP tools are allowed under every policy: the host re-checks what they do.
 */
export function permissionConfig(policy: ApprovalPolicy, ourServer: string): Record<string, string> {
  const rules: Record<string, string> = { '*': policy === 'bypass' ? 'allow' : policy };
  if (policy !== 'bypass') for (const p of ALWAYS_ALLOWED) rules[p] = 'allow';
  rules[ourToolsPattern(ourServer)] = 'allow';
  // OpenCode's own question tool waits for an answer over its HTTP API that nobody gives (the
  // turn would hang until the idle timeout): never offered, the model asks with ours.
  rules.question = 'deny';
  return rules;
}

/**
 * Group servers; one whose tool names would fall under our server's permission pattern is left
 * out, or its tools would skip the approval policy (ours keeps its name: it wins a clash).
 */
function groupMcp(servers: McpServerSpec[], ours: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const prefix = ourToolsPattern(ours).slice(0, -1);
  for (const m of servers) {
    if (`${mcpKeyPart(m.name)}_`.startsWith(prefix)) continue;
    if (m.url) out[m.name] = { type: 'remote', url: m.url, enabled: true };
    else if (m.command) out[m.name] = { type: 'local', command: [m.command, ...m.args], enabled: true };
  }
  return out;
}

export function buildConfig(opts: {
  settings: OpencodeSettings;
  tapUrl: string;
  tools: StdioServer;
  instructions: string[];
}): Record<string, unknown> {
  const { settings: s } = opts;
  const model: Record<string, unknown> = { tool_call: true, limit: { context: 128_000, output: 8_192 } };
  if (s.effort) model.options = { reasoningEffort: s.effort };
  return {
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    snapshot: false,
    share: 'disabled',
    permission: permissionConfig(s.approval, opts.tools.name),
    enabled_providers: [PROVIDER_ID],
    model: `${PROVIDER_ID}/${s.model}`,
    small_model: `${PROVIDER_ID}/${s.model}`,
    provider: {
      [PROVIDER_ID]: {
        npm: '@ai-sdk/openai-compatible',
        name: 'Polyclaw gateway',
        options: { baseURL: opts.tapUrl + modelRoute(s), apiKey: PLACEHOLDER_KEY },
        models: { [s.model]: model },
      },
    },
    // Ours waits as long as a question may (a day), and a little more.
    mcp: {
      ...groupMcp(s.mcpServers, opts.tools.name),
      ...forOpencode(opts.tools, (MAX_QUESTION_TIMEOUT_S + 600) * 1000),
    },
    instructions: opts.instructions,
  };
}

export interface StateDirs {
  home: string;
  config: string;
  data: string;
  cache: string;
  state: string;
}

export function stateDirs(root: string): StateDirs {
  return {
    home: path.join(root, 'home'),
    config: path.join(root, 'config'),
    data: path.join(root, 'data'),
    cache: path.join(root, 'cache'),
    state: path.join(root, 'state'),
  };
}

/** Create the isolated dirs and the offline .npmrc (idempotent). */
export function prepareStateDirs(root: string): StateDirs {
  const d = stateDirs(root);
  for (const dir of Object.values(d)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // opencode always runs an in-process npm install of its plugin package; keep it on a dead loopback port.
  fs.writeFileSync(
    path.join(d.home, '.npmrc'),
    'offline=true\nregistry=http://127.0.0.1:9/\naudit=false\nfund=false\n',
  );
  return d;
}

/**
 * Variables passed through from the runner; everything else (POLYCLAW_GATEWAY_TOKEN included)
 * stays out. The proxy variables stay so the agent's own tools keep the sandbox's CONNECT egress
 * through the gateway (they carry the per-sandbox token as proxy password, never a secret).
 */
const PASS = [
  'PATH',
  'LANG',
  'LC_ALL',
  'TZ',
  'TERM',
  'TMPDIR',
  'POLYCLAW_LOG_LEVEL',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
];

export function serverEnv(opts: {
  dirs: StateDirs;
  config: Record<string, unknown>;
  runnerEnv: Readonly<Record<string, string | undefined>>;
}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASS) {
    const v = opts.runnerEnv[k];
    if (v !== undefined) env[k] = v;
  }
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  Object.assign(env, {
    HOME: opts.dirs.home,
    XDG_CONFIG_HOME: opts.dirs.config,
    XDG_DATA_HOME: opts.dirs.data,
    XDG_CACHE_HOME: opts.dirs.cache,
    XDG_STATE_HOME: opts.dirs.state,
    OPENCODE_CONFIG_CONTENT: JSON.stringify(opts.config),
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    OPENCODE_DISABLE_AUTOUPDATE: '1',
    OPENCODE_DISABLE_SHARE: '1',
    OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
    OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
    OPENCODE_DISABLE_CLAUDE_CODE: '1',
    OPENCODE_DISABLE_EXTERNAL_SKILLS: '1',
  });
  return env;
}

/** A stable fingerprint of what the server was started with: a change means a restart. */
export function configKey(env: Record<string, string>, instructionFiles: string[]): string {
  const h = createHash('sha256').update(JSON.stringify(env));
  for (const f of instructionFiles) {
    try {
      h.update(fs.readFileSync(f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      h.update(`missing:${f}`);
    }
  }
  return h.digest('hex');
}

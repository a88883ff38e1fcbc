/**
 * `polyclaw secrets …`: the vault from the command line. Works on the data directory directly
 * (host running or not: the gateway reads the vault per request, and a value never travels
 * over the admin socket). Invariants: a value is read from stdin or a hidden prompt, never from
 * argv (argv is visible in `ps`); no output path prints a value; bad input is refused before
 * anything is written.
 */
import { PolyclawError } from '../../shared/errors.js';
import { ensureHome, loadConfig, paths } from '../../host/config.js';
import { openCentralDb, type Db } from '../../host/db/open.js';
import { openVault } from '../../host/gateway-host.js';
import { listGroups, requireGroup } from '../../host/store/groups.js';
import { codexLogin } from '../../gateway/codex-login.js';
import { testSecret } from '../../gateway/secret-test.js';
import type { SecretInfo, Vault } from '../../gateway/vault.js';
import { createLogger } from '../../shared/log.js';
import { checkShape, parse, type Shape } from '../args.js';
import { HelpRequested, printResult, UsageError } from '../output.js';

const USAGE =
  'polyclaw secrets set NAME --kind anthropic|openai|openai-compatible|codex-chatgpt [--base-url URL] [--value-stdin] | list | delete NAME | test NAME | grant NAME --group G|--all | revoke NAME --group G | login codex [--name NAME] [--device-auth]';

const OPTS = {
  kind: { type: 'string' },
  'base-url': { type: 'string' },
  'value-stdin': { type: 'boolean' },
  group: { type: 'string' },
  all: { type: 'boolean' },
  name: { type: 'string' },
  'device-auth': { type: 'boolean' },
} as const;

const SHAPES: Record<string, Shape> = {
  set: [2, ['kind', 'base-url', 'value-stdin']],
  list: [1, []],
  delete: [2, []],
  test: [2, []],
  grant: [2, ['group', 'all']],
  revoke: [2, ['group']],
  login: [2, ['name', 'device-auth']],
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Prompt on the terminal without echoing what is typed. */
async function readHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  let value = '';
  try {
    for await (const chunk of stdin) {
      for (const ch of chunk as string) {
        if (ch === '\r' || ch === '\n') return value;
        if (ch === '\u0003') throw new UsageError('cancelled');
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    }
    return value;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

function need(pos: string[], i: number, what: string): string {
  const v = pos[i];
  if (!v) throw new UsageError(`missing ${what} — usage: ${USAGE}`);
  return v;
}

function human(list: SecretInfo[]): string {
  if (list.length === 0) return '(no secrets)';
  return list
    .map(
      (s) =>
        `${s.name}  kind=${s.kind}  host=${s.host ?? '-'}  groups=${s.grants === 'all' ? 'all' : s.grants.join(',') || '(none)'}  last used=${s.lastUsedAt ? new Date(s.lastUsedAt).toISOString() : 'never'}${s.lastStatus ? ` (${s.lastStatus})` : ''}`,
    )
    .join('\n');
}

/**
 * Groups whose --endpoint is this secret lose their model when it is deleted, or when a grant
 * or revoke leaves them out (`granted` says who may use it now): say so.
 */
function endpointWarnings(
  db: Db,
  secret: string,
  how: 'deleted' | 'revoked',
  granted: (group: string) => boolean = () => false,
): string[] {
  const users = listGroups(db)
    .filter((g) => g.endpoint === secret && !granted(g.name))
    .map((g) => g.name);
  return users.length
    ? [
        `group${users.length === 1 ? '' : 's'} ${users.join(', ')} use${users.length === 1 ? 's' : ''} "${secret}" as --endpoint: ${users.length === 1 ? 'its' : 'their'} messages fail until it is ${how === 'deleted' ? 'set' : 'granted'} again`,
      ]
    : [];
}

async function withVault<T>(fn: (vault: Vault, db: Db) => Promise<T> | T): Promise<T> {
  const config = loadConfig();
  ensureHome(config.home);
  const db = openCentralDb(paths(config.home).db);
  try {
    return await fn(openVault(db), db);
  } finally {
    db.close();
  }
}

export async function secretsCommand(argv: string[]): Promise<number> {
  const parsed = parse(argv, OPTS, USAGE);
  const { values: v, positionals: pos } = parsed;
  const json = v.json === true;
  const verb = pos[0];
  if (v.help) throw new HelpRequested(USAGE);
  if (!verb) throw new UsageError(`usage: ${USAGE}`);
  const shape = SHAPES[verb];
  if (!shape) throw new UsageError(`unknown secrets command "${verb}" — usage: ${USAGE}`);
  if (verb === 'set' && pos.length > 2)
    throw new UsageError('the value is read from stdin (--value-stdin) or a prompt, never from arguments');
  checkShape(`secrets ${verb}`, parsed, shape, USAGE);
  switch (verb) {
    case 'set': {
      const name = need(pos, 1, 'secret NAME');
      if (typeof v.kind !== 'string') throw new UsageError(`secrets set needs --kind — usage: ${USAGE}`);
      let value: string;
      if (v['value-stdin']) value = await readStdin();
      else if (process.stdin.isTTY) value = await readHidden(`value for ${name}: `);
      else
        throw new UsageError('pass the value on stdin with --value-stdin (it is never taken from arguments)');
      const kind = v.kind;
      const r = await withVault((vault) =>
        vault.set({ name, kind, value, baseUrl: (v['base-url'] as string | undefined) ?? null }),
      );
      printResult(r, json, () => `${r.created ? 'stored' : 'updated'} secret ${r.name}`);
      return 0;
    }
    case 'list': {
      const list = await withVault((vault) => vault.list());
      printResult(list, json, human as (r: never) => string);
      return 0;
    }
    case 'delete': {
      const name = need(pos, 1, 'secret NAME');
      const warnings = await withVault((vault, db) => {
        vault.delete(name);
        return endpointWarnings(db, name, 'deleted');
      });
      printResult(
        { deleted: name, ...(warnings.length ? { warnings } : {}) },
        json,
        () => `deleted secret ${name}`,
      );
      return 0;
    }
    case 'grant':
    case 'revoke': {
      const name = need(pos, 1, 'secret NAME');
      const group = v.group as string | undefined;
      if (verb === 'grant' && group && v.all)
        throw new UsageError(`secrets grant takes --group G or --all, not both — usage: ${USAGE}`);
      if (verb === 'grant' && !group && !v.all)
        throw new UsageError(`secrets grant needs --group G or --all — usage: ${USAGE}`);
      if (verb === 'revoke' && !group)
        throw new UsageError(`secrets revoke needs --group G — usage: ${USAGE}`);
      const { list, warnings } = await withVault((vault, db) => {
        if (verb === 'grant' && v.all) vault.grantAll(name);
        else if (verb === 'grant') vault.grant(name, requireGroup(db, group!).id);
        else vault.revoke(name, requireGroup(db, group!).id);
        const info = vault.list().find((s) => s.name === name)!;
        const { grants } = info;
        // A grant to one group narrows a secret open to all: the others are left out too.
        const left = grants === 'all' ? [] : endpointWarnings(db, name, 'revoked', (g) => grants.includes(g));
        return { list: info, warnings: left };
      });
      printResult(
        { name, grants: list.grants, ...(warnings.length ? { warnings } : {}) },
        json,
        () => `${name}: ${list.grants === 'all' ? 'all groups' : list.grants.join(', ') || 'no groups'}`,
      );
      return 0;
    }
    case 'test': {
      const name = need(pos, 1, 'secret NAME');
      const config = loadConfig();
      const r = await withVault((vault) =>
        testSecret(vault, name, {
          log: createLogger({ level: 'warn' }).child('gateway'),
          upstreams: config.gateway.upstreams,
          chatgptTokenUrl: config.gateway.chatgptTokenUrl,
        }),
      );
      if (!r.ok)
        throw new PolyclawError(
          'unavailable',
          `secret ${name} FAILED (${r.status ? `HTTP ${r.status}` : 'no answer'}, ${r.durationMs} ms): ${r.reason ?? 'no reason given'}`,
        );
      printResult(r, json, () => `${name}: ok (HTTP ${r.status}, ${r.durationMs} ms)`);
      return 0;
    }
    case 'login': {
      if (pos[1] !== 'codex') throw new UsageError(`only "secrets login codex" exists — usage: ${USAGE}`);
      const name = (v.name as string | undefined) ?? 'codex';
      // Validate the name before the (interactive) login, so bad input costs nothing.
      await withVault((vault) => vault.checkName(name));
      const authJson = await codexLogin({ deviceAuth: v['device-auth'] === true });
      const r = await withVault((vault) => vault.set({ name, kind: 'codex-chatgpt', value: authJson }));
      printResult(r, json, () => `${r.created ? 'stored' : 'updated'} ChatGPT login as secret ${r.name}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown secrets command "${verb}" — usage: ${USAGE}`);
  }
}

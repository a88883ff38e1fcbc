/**
 * The vault: secrets sealed with AES-256-GCM in the central DB, plus grants (which agent
 * groups may use a secret; every group by default). Invariants:
 *  - opening verifies the key against the DB's key check first: a wrong key is refused and
 *    nothing is written;
 *  - values are only ever returned to the gateway (SecretSource) — list() and every error
 *    message carry names, kinds and hosts, never a value;
 *  - a value is validated before it is stored, so nothing unusable replaces a working secret;
 *  - every lookup reads the row and its grants from the DB (a delete, a revoke or a new value
 *    counts from the next request); only the decryption is remembered, per row and per exact
 *    sealed bytes, since it is the costly step of a model request's path (~0.2–1 ms on a cold
 *    CPU) and the key that opens it is in this process anyway.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { badRequest, notFound, PolyclawError } from '../shared/errors.js';
import { upstreamUrlProblem } from '../shared/fields.js';
import { prep } from '../shared/sql.js';
import { parseAuthJson } from './chatgpt-auth.js';
import {
  DEFAULT_UPSTREAMS,
  SECRET_KINDS,
  type Caller,
  type OpenedSecret,
  type SecretKind,
  type SecretLookup,
  type SecretSource,
} from './contract.js';
import { keyMatches, loadVaultKey, makeKeyCheck, seal, unseal, type VaultKeySource } from './vault-key.js';

export const SECRET_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const MAX_VALUE = 64 * 1024;
const API_KEY = /^[\x21-\x7e]+$/;

const SetInput = z.object({
  name: z.string().regex(SECRET_NAME, 'secret names are lowercase letters, digits, . _ - (max 63)'),
  kind: z.enum(SECRET_KINDS),
  value: z.string().max(MAX_VALUE, 'the secret value is too long'),
  baseUrl: z.string().nullable().default(null),
});

export interface SecretInfo {
  name: string;
  kind: SecretKind;
  baseUrl: string | null;
  host: string | null;
  grants: 'all' | string[];
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number | null;
  lastStatus: number | null;
}

interface Row {
  id: string;
  name: string;
  kind: SecretKind;
  base_url: string | null;
  sealed: Buffer;
  grant_all: number;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
  last_status: number | null;
}

export function checkBaseUrl(url: string): string {
  const problem = upstreamUrlProblem(url);
  if (problem) throw badRequest(`--base-url ${problem}`);
  return new URL(url).toString().replace(/\/$/, '');
}

/** Reject values that could not be sent as a credential, before they replace anything. */
function checkValue(kind: SecretKind, value: string): string {
  if (kind === 'codex-chatgpt') {
    parseAuthJson(value);
    return value;
  }
  const v = value.trim();
  // A local OpenAI-compatible server (Ollama, vLLM without --api-key) takes no key at all.
  if (v === '' && kind === 'openai-compatible') return v;
  if (v === '') throw badRequest('the secret value is empty');
  if (!API_KEY.test(v)) throw badRequest('an API key must be one line of printable characters');
  return v;
}

/** Whether the vault holds a secret of that name (read without the key: names are not sealed). */
export function secretExists(db: Database.Database, name: string): boolean {
  const table = prep(db, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'secrets'`).get();
  return !!table && !!prep(db, 'SELECT 1 FROM secrets WHERE name = ?').get(name);
}

export class Vault implements SecretSource {
  /** Opened values by row id, valid while the row's sealed bytes are these. */
  private readonly opened = new Map<string, { sealed: Buffer; value: string }>();

  private constructor(
    private readonly db: Database.Database,
    private readonly key: Buffer,
    private readonly now: () => number,
  ) {}

  /** Open the vault of this DB; throws PolyclawError('config') on a wrong or missing key. */
  static open(db: Database.Database, source: VaultKeySource, now: () => number = Date.now): Vault {
    const meta = db.prepare('SELECT key_check FROM vault_meta WHERE id = 1').get() as
      { key_check: Buffer } | undefined;
    const hasSecrets = (db.prepare('SELECT COUNT(*) AS n FROM secrets').get() as { n: number }).n > 0;
    const key = loadVaultKey(source, !meta && !hasSecrets);
    if (meta) {
      if (!keyMatches(key, meta.key_check))
        throw new PolyclawError(
          'config',
          `the vault key (${source.kind === 'env' ? source.name : source.path}) does not open this data directory's vault; refusing to start (nothing was changed)`,
        );
    } else {
      db.prepare('INSERT INTO vault_meta (id, key_check, created_at) VALUES (1, ?, ?)').run(
        makeKeyCheck(key),
        now(),
      );
    }
    return new Vault(db, key, now);
  }

  checkName(name: string): void {
    if (!SECRET_NAME.test(name))
      throw badRequest('secret names are lowercase letters, digits, . _ - (max 63)');
  }

  set(input: { name: string; kind: string; value: string; baseUrl?: string | null }): {
    name: string;
    created: boolean;
  } {
    const r = SetInput.safeParse(input);
    if (!r.success) {
      // The name and value messages say what they are about; a flag's is named as typed.
      const issue = r.error.issues[0]!;
      const flag = { kind: '--kind: ', baseUrl: '--base-url: ' }[String(issue.path[0])] ?? '';
      throw badRequest(flag + issue.message);
    }
    const { name, kind } = r.data;
    const baseUrl = r.data.baseUrl ? checkBaseUrl(r.data.baseUrl) : null;
    if (kind === 'openai-compatible' && !baseUrl)
      throw badRequest(
        'an openai-compatible secret needs --base-url (the endpoint, e.g. http://127.0.0.1:11434/v1)',
      );
    const value = checkValue(kind, r.data.value);
    const existing = this.row(name);
    const id = existing?.id ?? randomUUID();
    const sealed = seal(this.key, value, id);
    const t = this.now();
    if (existing)
      this.db
        .prepare('UPDATE secrets SET kind = ?, base_url = ?, sealed = ?, updated_at = ? WHERE id = ?')
        .run(kind, baseUrl, sealed, t, id);
    else
      this.db
        .prepare(
          'INSERT INTO secrets (id, name, kind, base_url, sealed, grant_all, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)',
        )
        .run(id, name, kind, baseUrl, sealed, t, t);
    return { name, created: !existing };
  }

  list(): SecretInfo[] {
    const rows = this.db.prepare('SELECT * FROM secrets ORDER BY name').all() as Row[];
    const grants = this.db
      .prepare(
        'SELECT g.secret_id AS sid, a.name AS grp FROM secret_grants g JOIN agent_groups a ON a.id = g.agent_group_id ORDER BY a.name',
      )
      .all() as Array<{ sid: string; grp: string }>;
    return rows.map((r) => ({
      name: r.name,
      kind: r.kind,
      baseUrl: r.base_url,
      host: hostOf(r.base_url ?? DEFAULT_UPSTREAMS[r.kind]),
      grants: r.grant_all ? 'all' : grants.filter((g) => g.sid === r.id).map((g) => g.grp),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      lastUsedAt: r.last_used_at,
      lastStatus: r.last_status,
    }));
  }

  delete(name: string): void {
    const r = this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name);
    if (r.changes === 0) throw notFound(`no secret named "${name}"`);
    this.opened.clear();
  }

  /** Limit a secret to listed groups (the first grant switches it off "all groups"). */
  grant(name: string, groupId: string): void {
    const row = this.require(name);
    this.db.transaction(() => {
      this.db.prepare('UPDATE secrets SET grant_all = 0 WHERE id = ?').run(row.id);
      this.db
        .prepare('INSERT OR IGNORE INTO secret_grants (secret_id, agent_group_id) VALUES (?, ?)')
        .run(row.id, groupId);
    })();
  }

  revoke(name: string, groupId: string): void {
    const row = this.require(name);
    this.db.transaction(() => {
      if (row.grant_all) {
        // "all groups" minus one: list every other group explicitly.
        this.db
          .prepare(
            'INSERT OR IGNORE INTO secret_grants (secret_id, agent_group_id) SELECT ?, id FROM agent_groups WHERE id != ?',
          )
          .run(row.id, groupId);
        this.db.prepare('UPDATE secrets SET grant_all = 0 WHERE id = ?').run(row.id);
      }
      this.db
        .prepare('DELETE FROM secret_grants WHERE secret_id = ? AND agent_group_id = ?')
        .run(row.id, groupId);
    })();
  }

  grantAll(name: string): void {
    const row = this.require(name);
    this.db.transaction(() => {
      this.db.prepare('UPDATE secrets SET grant_all = 1 WHERE id = ?').run(row.id);
      this.db.prepare('DELETE FROM secret_grants WHERE secret_id = ?').run(row.id);
    })();
  }

  /** The group's own --endpoint secret first (when it has the kind), else by name. */
  forKind(caller: Caller, kind: SecretKind): SecretLookup {
    const row = prep(
      this.db,
      `SELECT s.* FROM secrets s
         WHERE s.kind = ? AND (s.grant_all = 1 OR EXISTS
           (SELECT 1 FROM secret_grants g WHERE g.secret_id = s.id AND g.agent_group_id = ?))
         ORDER BY s.name = (SELECT endpoint FROM agent_groups WHERE id = ?) DESC, s.name LIMIT 1`,
    ).get(kind, caller.groupId, caller.groupId) as Row | undefined;
    if (row) return { ok: true, secret: this.openRow(row) };
    const any = prep(this.db, 'SELECT 1 FROM secrets WHERE kind = ? LIMIT 1').get(kind);
    return { ok: false, reason: any ? 'not_granted' : 'none' };
  }

  byName(caller: Caller, name: string): SecretLookup {
    const row = this.row(name);
    if (!row) return { ok: false, reason: 'none' };
    if (!this.granted(row, caller.groupId)) return { ok: false, reason: 'not_granted' };
    return { ok: true, secret: this.openRow(row) };
  }

  /** A named secret regardless of grants: only for commands the owner runs (secrets test). */
  openForOwner(name: string): SecretLookup {
    const row = this.row(name);
    return row ? { ok: true, secret: this.openRow(row) } : { ok: false, reason: 'none' };
  }

  markUsed(secretId: string, status: number): void {
    prep(this.db, 'UPDATE secrets SET last_used_at = ?, last_status = ? WHERE id = ?').run(
      this.now(),
      status,
      secretId,
    );
  }

  replaceValue(secretId: string, value: string): void {
    const row = prep(this.db, 'SELECT kind FROM secrets WHERE id = ?').get(secretId) as
      { kind: SecretKind } | undefined;
    if (!row) throw notFound('the secret was deleted');
    const v = checkValue(row.kind, value);
    prep(this.db, 'UPDATE secrets SET sealed = ?, updated_at = ? WHERE id = ?').run(
      seal(this.key, v, secretId),
      this.now(),
      secretId,
    );
  }

  private granted(row: Row, groupId: string): boolean {
    if (row.grant_all) return true;
    return !!prep(this.db, 'SELECT 1 FROM secret_grants WHERE secret_id = ? AND agent_group_id = ?').get(
      row.id,
      groupId,
    );
  }

  private openRow(row: Row): OpenedSecret {
    let hit = this.opened.get(row.id);
    if (!hit || !hit.sealed.equals(row.sealed)) {
      hit = { sealed: row.sealed, value: unseal(this.key, row.sealed, row.id) };
      this.opened.set(row.id, hit);
    }
    return { id: row.id, name: row.name, kind: row.kind, baseUrl: row.base_url, value: hit.value };
  }

  private row(name: string): Row | undefined {
    return prep(this.db, 'SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined;
  }

  private require(name: string): Row {
    const r = this.row(name);
    if (!r) throw notFound(`no secret named "${name}"`);
    return r;
  }
}

function hostOf(url: string | null): string | null {
  if (!url) return null;
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}

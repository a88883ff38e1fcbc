/** Central DB migrations: numbered, recorded by name, one transaction each. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { migrate, openCentralDb } from '../src/host/db/open.js';
import { migrations } from '../src/host/db/migrations/index.js';
import { getDelivery, openNotices } from '../src/host/store/deliveries.js';
import { createGroup, listGroups } from '../src/host/store/groups.js';
import { firstRun } from '../src/host/first-run.js';
import { loadConfig } from '../src/host/config.js';
import { ops } from '../src/host/admin-ops.js';
import { ensureMessagingGroup } from '../src/host/store/messaging.js';
import { findSession, resolveSession } from '../src/host/store/sessions.js';

describe('central DB migrations', () => {
  it('apply in order, are recorded by name, and re-running is a no-op', () => {
    const db = new Database(':memory:');
    expect(migrate(db, migrations)).toEqual(migrations.map((m) => m.name));
    expect(migrate(db, migrations)).toEqual([]);
    const names = (
      db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as Array<{ name: string }>
    ).map((r) => r.name);
    expect(names).toEqual(migrations.map((m) => m.name).sort());
    expect(names.slice(0, 3)).toEqual(['001-initial', '002-delivery', '003-tasks']);
    for (const m of migrations) expect(m.name).toMatch(/^\d{3}-[a-z-]+$/);
  });

  it('a failing migration leaves nothing half-applied', () => {
    const db = new Database(':memory:');
    const bad = { name: '999-broken', sql: 'CREATE TABLE half (x INT); CREATE TABLE oops (' };
    expect(() => migrate(db, [...migrations, bad])).toThrow();
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'half'`).get()).toBeUndefined();
    expect(db.prepare(`SELECT 1 FROM schema_migrations WHERE name = '999-broken'`).get()).toBeUndefined();
    expect(migrate(db, migrations)).toEqual([]);
  });

  it('a second process migrating the same file at the same moment skips what the first applied', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pc-migrate-')), 'polyclaw.db');
    const b = new Database(file);
    b.pragma('busy_timeout = 5000');
    // B has made its migrations table and is about to apply the first migration when A opens
    // the same file and applies them all.
    function* racing() {
      openCentralDb(file).close();
      yield* migrations;
    }
    expect(migrate(b, racing())).toEqual([]);
    const names = b.prepare('SELECT name FROM schema_migrations ORDER BY name').pluck().all();
    expect(names).toEqual(migrations.map((m) => m.name).sort());
    b.close();
  });

  it('007 keeps every task and makes task ids unique per group, not per install', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(
      db,
      migrations.filter((m) => m.name < '007'),
    );
    db.exec(`
      INSERT INTO agent_groups (id, name, provider, created_at, updated_at) VALUES ('g1', 'a', 'mock', 0, 0), ('g2', 'b', 'mock', 0, 0);
      INSERT INTO sessions (id, agent_group_id, session_key, session_mode, created_at, last_active_at) VALUES ('s1', 'g1', 'k', 'shared', 0, 0), ('s2', 'g2', 'k', 'shared', 0, 0);
      INSERT INTO tasks (id, agent_group_id, session_id, prompt, cron, timezone, status, next_run_at, created_at, updated_at)
        VALUES ('digest', 'g1', 's1', 'p', '0 8 * * *', 'UTC', 'active', 5, 1, 2);`);
    const before = db.prepare('SELECT * FROM tasks').all();
    expect(
      migrate(
        db,
        migrations.filter((m) => m.name < '008'),
      ),
    ).toEqual(['007-task-ids-per-group']);
    expect(db.prepare('SELECT * FROM tasks').all()).toEqual(before);
    const add = db.prepare(
      `INSERT INTO tasks (id, agent_group_id, session_id, prompt, cron, timezone, status, created_at, updated_at) VALUES ('digest', ?, ?, 'p', '0 9 * * *', 'UTC', 'active', 0, 0)`,
    );
    add.run('g2', 's2');
    expect(() => add.run('g1', 's1')).toThrow(/UNIQUE/);
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'tasks_due'`).get()).toBeDefined();
  });

  it('008 keeps every ledger row; rows from before it are no notices to send', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(
      db,
      migrations.filter((m) => m.name < '008'),
    );
    db.exec(`
      INSERT INTO agent_groups (id, name, provider, created_at, updated_at) VALUES ('g1', 'a', 'mock', 0, 0);
      INSERT INTO sessions (id, agent_group_id, session_key, session_mode, created_at, last_active_at) VALUES ('s1', 'g1', 'k', 'shared', 0, 0);
      INSERT INTO deliveries (session_id, out_id, seq, status, attempts, updated_at) VALUES ('s1', 'fail:m1', NULL, 'sending', 1, 0);`);
    expect(
      migrate(
        db,
        migrations.filter((m) => m.name < '009'),
      ),
    ).toEqual(['008-notice-payload']);
    expect(getDelivery(db, 's1', 'fail:m1')).toMatchObject({ status: 'sending', attempts: 1, notice: null });
    expect(openNotices(db, 's1')).toEqual([]);
  });

  it('opens in WAL mode with foreign keys enforced', () => {
    const db = openCentralDb(':memory:');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(() =>
      db
        .prepare(
          `INSERT INTO wirings (id, messaging_group_id, agent_group_id, engage_mode, session_mode, created_at) VALUES ('w', 'nope', 'nope', 'mention', 'shared', 0)`,
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
  });
});

describe('finding a session by id prefix', () => {
  it('compares the prefix as text: "%" and "_" are no wildcards', () => {
    const db = openCentralDb(':memory:');
    const g = createGroup(db, 'g', { provider: 'mock' });
    const mg = ensureMessagingGroup(db, 'chat', 'room');
    const s = resolveSession(db, g.id, 'shared', mg.id, null).session;
    expect(findSession(db, s.id.slice(0, 6)).id).toBe(s.id);
    expect(findSession(db, s.id).id).toBe(s.id);
    for (const bad of ['%', `%${s.id.slice(2, 6)}`, `${s.id.slice(0, 2)}_${s.id.slice(3, 6)}`])
      expect(() => findSession(db, bad), bad).toThrow(/no session matching/);
    expect(() => findSession(db, '')).toThrow(/no session id given/);
  });
});

describe('first run', () => {
  const config = () => loadConfig({ POLYCLAW_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'polyclaw-first-')) });

  it('gives a new data folder its main group once: deleted, it is not made again at the next start', () => {
    const db = openCentralDb(':memory:');
    const c = config();
    try {
      expect(firstRun(db, c)).toBe(true);
      expect(listGroups(db).map((g) => g.name)).toEqual(['main']);
      ops['groups.delete']!({ db, config: c, host: null }, { name: 'main' });
      expect(firstRun(db, c)).toBe(false);
      expect(listGroups(db)).toEqual([]);
    } finally {
      db.close();
      fs.rmSync(c.home, { recursive: true, force: true });
    }
  });

  it('makes no main where groups were made before the first start, nor in an install that had groups before 011', () => {
    const db = openCentralDb(':memory:');
    const c = config();
    try {
      createGroup(db, 'mine', { provider: 'mock' });
      expect(firstRun(db, c)).toBe(false);
      expect(listGroups(db).map((g) => g.name)).toEqual(['mine']);
    } finally {
      db.close();
      fs.rmSync(c.home, { recursive: true, force: true });
    }
    const old = new Database(':memory:');
    migrate(
      old,
      migrations.filter((m) => m.name < '011'),
    );
    old.exec(`INSERT INTO agent_groups (id, name, provider, created_at, updated_at) VALUES ('g1', 'a', 'mock', 0, 0)`);
    migrate(old, migrations);
    old.exec(`DELETE FROM agent_groups`);
    expect(firstRun(old as never, config())).toBe(false);
    old.close();
  });
});

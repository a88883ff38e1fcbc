/**
 * Central DB: SQLite in WAL mode, foreign keys on. Migrations run in one transaction each and
 * are recorded by name, so a half-applied migration cannot exist and re-runs are no-ops.
 */
import Database from 'better-sqlite3';
import { PolyclawError } from '../../shared/errors.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';

export type Db = Database.Database;

export function openCentralDb(file: string, migrations: Migration[] = allMigrations): Db {
  let db: Db;
  try {
    db = new Database(file);
  } catch (err) {
    // SQLite's own message names no file ("unable to open database file").
    throw new PolyclawError('config', `cannot open the database ${file}: ${(err as Error).message}`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, migrations);
  return db;
}

export function migrate(db: Db, migrations: Migration[]): string[] {
  db.exec(
    `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`,
  );
  const done = new Set(
    (db.prepare('SELECT name FROM schema_migrations').all() as Array<{ name: string }>).map((r) => r.name),
  );
  const applied: string[] = [];
  for (const m of migrations) {
    if (done.has(m.name)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)').run(m.name, Date.now());
    })();
    applied.push(m.name);
  }
  return applied;
}

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

/**
 * Apply what is not yet recorded, in order. Another process may migrate the same file at the
 * same moment (the host and a CLI command on first use or after an upgrade): each migration
 * takes the write lock first (BEGIN IMMEDIATE) and checks the record inside it, so the second
 * process skips what the first applied instead of failing on it.
 */
export function migrate(db: Db, migrations: Iterable<Migration>): string[] {
  db.exec(
    `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`,
  );
  const recorded = db.prepare('SELECT 1 FROM schema_migrations WHERE name = ?');
  const record = db.prepare('INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)');
  const applied: string[] = [];
  for (const m of migrations) {
    const ran = db
      .transaction(() => {
        if (recorded.get(m.name)) return false;
        db.exec(m.sql);
        record.run(m.name, Date.now());
        return true;
      })
      .immediate();
    if (ran) applied.push(m.name);
  }
  return applied;
}

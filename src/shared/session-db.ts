/**
 * The two per-session queue files and who may open them how.
 *
 * inbound.db  — written only by the host. It uses a PERSISTent rollback journal so the journal
 *               file always exists and can be bind-mounted read-only next to the database:
 *               the sandbox can neither write the database nor plant a "hot" journal the host
 *               would roll back. The runner opens it read-only.
 * outbound.db — written only by the sandbox (WAL). The host opens it read-only; a WAL reader
 *               recovers from a writer killed mid-commit without writing the database.
 *
 * Both survive kill -9 of either side at any instant: every state change is one transaction.
 *
 * bells/       — the doorbells, in a directory of their own so a watcher wakes for a bell and
 *               never for the dozens of -journal/-wal writes of each commit (every event of a
 *               watched directory wakes the watching process, even one its filter drops).
 * bells/outbound.bell — touched by the runner after each commit. A WAL commit becomes visible
 *               only when the memory-mapped -shm index is updated, which raises no inotify
 *               event; an event on the -wal file can therefore arrive before the commit is
 *               readable. The bell is touched after the commit returns, so a reader woken by it
 *               sees it.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { PolyclawError } from './errors.js';

export type Db = Database.Database;

export const INBOUND_FILE = 'inbound.db';
export const INBOUND_JOURNAL = 'inbound.db-journal';
export const OUTBOUND_FILE = 'outbound.db';
export const OUTBOUND_BELL = 'outbound.bell';
export const BELLS_DIR = 'bells';

/**
 * The session's bells directory, made a real one if it is missing or the sandbox replaced it
 * (a symlink is removed, not followed): watch this, not the session dir.
 */
export function bellsDir(sessionDir: string): string {
  return sessionFolder(sessionDir, BELLS_DIR);
}

/**
 * A folder of the session dir that must be one (bells/, outbox/): the sandbox can write the
 * session dir and may have put a file, a symlink or a FIFO at its name; that is removed and a
 * real folder made, never followed.
 */
export function sessionFolder(sessionDir: string, name: string): string {
  const dir = path.join(sessionDir, name);
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory()) return dir;
  if (st) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/**
 * Ring a bell: touch it after a commit returned. The session dir is the sandbox's to write, so
 * the bell is opened without following a symlink and without blocking on a FIFO, never
 * truncated, and touched through that descriptor; a bell (or bells/) that is missing or is
 * not a plain file is put back as one, and that creation rings too.
 */
export function ringBell(sessionDir: string, name: typeof INBOUND_BELL | typeof OUTBOUND_BELL): void {
  const t = new Date();
  const fd = openBell(sessionDir, name);
  try {
    fs.futimesSync(fd, t, t);
  } finally {
    fs.closeSync(fd);
  }
}

/** Make sure the bell is there as a plain file, without ringing it (opening raises no watched event). */
export function ensureBell(sessionDir: string, name: typeof INBOUND_BELL | typeof OUTBOUND_BELL): void {
  fs.closeSync(openBell(sessionDir, name));
}

function openBell(sessionDir: string, name: string): number {
  const file = path.join(bellsDir(sessionDir), name);
  try {
    return fs.openSync(file, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o644);
  } catch {
    fs.rmSync(file, { recursive: true, force: true });
    return fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o644);
  }
}

/**
 * Touched by the host after each inbound commit the runner must act on. Waking on inbound.db
 * itself would wake the runner while the host still holds the write lock (the page writes
 * come before the journal is finalised), and SQLite's busy handler then sleeps in 1-10 ms steps.
 */
export const INBOUND_BELL = 'inbound.bell';

const INBOUND_SCHEMA = `
CREATE TABLE IF NOT EXISTS messages_in (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  process_after INTEGER NOT NULL,
  recurrence TEXT,
  series_id TEXT,
  tries INTEGER NOT NULL DEFAULT 0,
  trigger INTEGER NOT NULL DEFAULT 1,
  routing TEXT NOT NULL,
  content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_in_pending ON messages_in(status, process_after);
CREATE INDEX IF NOT EXISTS messages_in_platform_id ON messages_in(json_extract(content, '$.platformMessageId'));
CREATE INDEX IF NOT EXISTS messages_in_series ON messages_in(series_id, json_extract(content, '$.task.runAt'));
CREATE INDEX IF NOT EXISTS messages_in_host_key ON messages_in(json_extract(content, '$.hostKey')) WHERE kind = 'system';
CREATE INDEX IF NOT EXISTS messages_in_answer ON messages_in(json_extract(content, '$.answer.questionId')) WHERE kind = 'answer';
CREATE TABLE IF NOT EXISTS destinations (name TEXT PRIMARY KEY, kind TEXT NOT NULL, routing TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  prompt TEXT NOT NULL,
  cron TEXT,
  at TEXT,
  script TEXT,
  status TEXT NOT NULL,
  next_run_at INTEGER,
  timezone TEXT NOT NULL
);
`;

const OUTBOUND_SCHEMA = `
BEGIN;
CREATE TABLE IF NOT EXISTS messages_out (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  in_reply_to TEXT,
  kind TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  routing TEXT NOT NULL,
  content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_out_reply ON messages_out(in_reply_to);
CREATE TABLE IF NOT EXISTS acks (
  message_id TEXT NOT NULL,
  try INTEGER NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (message_id, try)
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
COMMIT;
`;

/**
 * How long a host write to inbound.db waits for a reader's lock (the host's one thread waits
 * synchronously). Only the sandbox reads the file, for milliseconds at a time; past this the
 * host takes the lock for a sandbox's keeping it (SessionQueue.write).
 */
export const INBOUND_BUSY_MS = 1000;

/** Host side: create (if needed) and open inbound.db for writing. */
export function openInboundWriter(sessionDir: string): Db {
  const db = new Database(path.join(sessionDir, INBOUND_FILE));
  db.pragma(`busy_timeout = ${INBOUND_BUSY_MS}`);
  db.pragma('journal_mode = PERSIST');
  db.pragma('synchronous = NORMAL');
  db.exec(INBOUND_SCHEMA);
  // Make sure the persistent journal exists before any sandbox mounts it.
  db.prepare(
    `INSERT INTO meta(key, value) VALUES ('schema', '1') ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  ).run();
  return db;
}

/** Runner side: inbound.db is read-only (and is mounted read-only in real sandboxes). */
export function openInboundReader(sessionDir: string): Db {
  const db = new Database(path.join(sessionDir, INBOUND_FILE), { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Runner side: the only writer of outbound.db. */
export function openOutboundWriter(sessionDir: string): Db {
  const db = new Database(path.join(sessionDir, OUTBOUND_FILE));
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(OUTBOUND_SCHEMA);
  return db;
}

/** How long a host read of outbound.db waits for a lock (see openOutboundReader). */
export const OUTBOUND_BUSY_MS = 200;

/** Host side: outbound.db read-only; null while the runner has not created it yet. */
export function openOutboundReader(sessionDir: string): Db | null {
  const file = path.join(sessionDir, OUTBOUND_FILE);
  // The sandbox writes these files: SQLite follows a symlink (another session's queue) and
  // blocks for good opening a FIFO, so each must be a plain file or absent before the open.
  // (A swap in the microseconds between this check and SQLite's own open is not covered.)
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    const st = fs.lstatSync(file + suffix, { throwIfNoEntry: false });
    if (st && !st.isFile())
      throw new PolyclawError(
        'sandbox',
        `${OUTBOUND_FILE}${suffix} of session ${path.basename(sessionDir)} is not a plain file (the sandbox replaced it); its replies cannot be read`,
      );
    if (!st && suffix === '') return null;
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  // The wait is synchronous, on the host's one thread: a sandbox that keeps its file locked
  // (exclusive locking mode) would stall every session and channel for the whole timeout at
  // each read. A WAL reader meets a lock only for moments; past this it fails, and the next
  // bell or sweep reads again.
  db.pragma(`busy_timeout = ${OUTBOUND_BUSY_MS}`);
  // Functions with side effects may not run from anything the schema holds; the schema itself
  // is checked by the reader in each read's snapshot (outboundSchemaReady).
  db.pragma('trusted_schema = OFF');
  return db;
}

/** Indexes the runner's schema gained after its first release (see outboundSchemaReady). */
const ADDED_OUTBOUND_INDEXES = ['messages_out_reply'];

let expectedOutbound: Set<string> | null = null;
const schemaRows = (db: Db) =>
  db
    .prepare(`SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master`)
    .pluck()
    .all() as string[];

/**
 * Whether outbound.db holds exactly the schema the runner creates (false: not all of it yet).
 * The sandbox writes this file, and a view or trigger in it runs inside every host read — a
 * recursive view never ends — so anything else (an extra view, trigger or index, a table
 * defined otherwise) is refused: PolyclawError 'sandbox'. Run it inside the read transaction
 * whose snapshot the reads use, again whenever PRAGMA schema_version moved.
 */
export function outboundSchemaReady(db: Db, sessionDir: string): boolean {
  if (!expectedOutbound) {
    const mem = new Database(':memory:');
    mem.exec(OUTBOUND_SCHEMA);
    expectedOutbound = new Set(schemaRows(mem));
    mem.close();
  }
  const rows = schemaRows(db);
  const odd = rows.find((r) => !expectedOutbound!.has(r));
  if (odd !== undefined)
    throw new PolyclawError(
      'sandbox',
      `${OUTBOUND_FILE} of session ${path.basename(sessionDir)} holds a schema Polyclaw did not write (${odd.split(' ', 2).join(' ')}); its replies cannot be read`,
    );
  // Indexes added since (ADDED_OUTBOUND_INDEXES) are not awaited: a file an older runner wrote
  // lacks them until a new runner opens it, and its replies must be read meanwhile.
  const required = [...expectedOutbound].filter(
    (r) => !ADDED_OUTBOUND_INDEXES.some((i) => r.startsWith(`index ${i} `)),
  );
  const have = new Set(rows);
  return required.every((r) => have.has(r));
}

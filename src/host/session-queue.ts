/**
 * The host's half of a session directory: it creates the folder, is the only writer of
 * inbound.db, and reads (never writes) outbound.db. Handles are cached per session and closed
 * when the session goes quiet.
 */
import { prep } from '../shared/sql.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  nextEven,
  type Destination,
  type InboundContent,
  type MirroredTask,
  type Routing,
  type SessionMeta,
} from '../shared/messages.js';
import {
  INBOUND_BELL,
  INBOUND_BUSY_MS,
  openInboundWriter,
  openOutboundReader,
  outboundSchemaReady,
  ensureBell,
  ringBell,
  sessionFolder,
  type Db,
} from '../shared/session-db.js';
import { writeAttachment } from '../shared/safe-files.js';
import { encodeHint, mayHint } from '../shared/runner-hint.js';
import {
  ackRow,
  inRow,
  outRow,
  type AckRow,
  type InboundRow,
  type OutboundRow,
  type RawAck,
  type RawIn,
  type RawOut,
} from './session-rows.js';

export type { AckRow, InboundRow, OutboundRow } from './session-rows.js';

/** Outbound rows read per pass (delivery reads on from the last one). */
export const OUTBOUND_BATCH = 256;
/** Longest text cell read from outbound.db; a longer one reads as NULL (the row is then invalid). */
const MAX_CELL_CHARS = 1024 * 1024;
const MAX_ACK_ROWS = 4096;
const cap = (col: string) =>
  `CASE WHEN length(${col}) > ${MAX_CELL_CHARS} THEN NULL ELSE ${col} END AS ${col}`;
const OUT_COLUMNS = [
  // An id too long to be one of the runner's, or with a ':' (the host's own ledger keys, such as
  // fail:<message>, have one: a row must not pass for a notice already sent), still names the
  // row once, by its seq.
  `CASE WHEN length(id) > 200 OR instr(id, ':') > 0 THEN 'row:' || seq ELSE id END AS id`,
  'seq',
  ...['in_reply_to', 'kind'].map(cap),
  'timestamp',
  ...['routing', 'content'].map(cap),
].join(', ');
const NOT_READY = Symbol('not ready');
const ACK_COLUMNS = ['message_id', 'try', 'status', 'error', 'updated_at']
  .map((c) => (c === 'try' || c === 'updated_at' ? c : cap(c)))
  .join(', ');

export type EnqueueInput = {
  kind: InboundRow['kind'];
  routing: Routing;
  content: InboundContent;
  trigger: boolean;
  processAfter?: number;
  /** The scheduled task series this row is a run of. */
  seriesId?: string;
};

/** The running runner's stdin, for early-start hints (see runner-hint.ts). */
export interface RunnerLine {
  /** Write one hint line; false when the runner cannot be told (no pipe, or it is closed). */
  tell(line: string): boolean;
  /**
   * Stop the sandbox at once (SIGKILL of its tree), saying why: the commit of a message it was
   * told of failed, so nothing it did may leave it; or it kept inbound.db locked.
   */
  stop(why: string): void;
}

/** How long the stopped sandbox's lock may take to go (a SIGKILL's teardown). */
const KILLED_BUSY_MS = 5000;
const isLocked = (err: unknown) =>
  err instanceof Error && /^SQLITE_BUSY/.test((err as { code?: string }).code ?? '');

/**
 * Asked at every firing, and at every failed delivery: indexes (messages_in_series,
 * messages_in_host_key) keep them off the session's whole history.
 */
export const TASK_RUN_SQL = `SELECT 1 FROM messages_in WHERE series_id = ? AND json_extract(content, '$.task.runAt') = ?`;
export const HOST_NOTICE_SQL = `SELECT 1 FROM messages_in WHERE kind = 'system' AND json_extract(content, '$.hostKey') = ?`;

export class SessionQueue {
  private inbound: Db;
  private outbound: Db | null = null;
  /** outbound.db's schema version when its schema was last checked. */
  private outVersion: number | null = null;
  /** The metadata generation published last (setMeta); hints carry it. */
  private gen: string | null = null;
  private runner: RunnerLine | null = null;
  constructor(
    readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {
    fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
    sessionFolder(dir, 'outbox'); // the sandbox's to write: a file put in its place must not stop the host
    this.inbound = openInboundWriter(dir);
    ensureBell(dir, INBOUND_BELL);
  }

  /**
   * A write to inbound.db. Only the sandbox reads this file beside the host, and its reads take
   * milliseconds: a SHARED lock held past INBOUND_BUSY_MS is a sandbox keeping it (a read-only
   * handle can). That sandbox is stopped — its processes' death frees the lock — and the write
   * is tried once more, waiting as long as the kill takes. Without a sandbox to stop, the lock
   * error stands (and the host's thread waited INBOUND_BUSY_MS, not the default 5 s).
   */
  private write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isLocked(err) || !this.runner) throw err;
      this.runner.stop('it kept inbound.db locked');
      this.inbound.pragma(`busy_timeout = ${KILLED_BUSY_MS}`);
      try {
        return fn();
      } finally {
        this.inbound.pragma(`busy_timeout = ${INBOUND_BUSY_MS}`);
      }
    }
  }

  /** Wake the runner (and a tool waiting for an answer): called after the commit returned. */
  private ring(): void {
    ringBell(this.dir, INBOUND_BELL);
  }

  /** Hints go to `line` until the returned detach is called (a later attach replaces it). */
  attachRunner(line: RunnerLine): () => void {
    this.runner = line;
    return () => {
      if (this.runner === line) this.runner = null;
    };
  }

  setMeta(meta: SessionMeta, destinations: Destination[]): void {
    const gen = randomUUID();
    const tx = this.inbound.transaction(() => {
      prep(
        this.inbound,
        `INSERT INTO meta(key, value) VALUES ('gen', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
      ).run(gen);
      prep(
        this.inbound,
        `INSERT INTO meta(key, value) VALUES ('session', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
      ).run(JSON.stringify(meta));
      prep(this.inbound, 'DELETE FROM destinations').run();
      const ins = prep(this.inbound, 'INSERT INTO destinations (name, kind, routing) VALUES (?, ?, ?)');
      for (const d of destinations) ins.run(d.name, d.kind, JSON.stringify(d.routing));
    });
    this.write(tx);
    this.gen = gen;
  }

  /**
   * Queue a message. The host is this file's only writer, so the seq read before the
   * transaction is the one it commits (UNIQUE guards it); a runner told of the row before the
   * commit is stopped when the commit fails (see runner-hint.ts).
   */
  enqueue(input: EnqueueInput): { id: string; seq: number } {
    const id = randomUUID();
    const now = this.now();
    const max = (prep(this.inbound, 'SELECT MAX(seq) AS m FROM messages_in').get() as { m: number | null }).m;
    const seq = nextEven(max);
    const processAfter = input.processAfter ?? now;
    const told = this.tell({ ...input, id, seq, timestamp: now, processAfter });
    const tx = this.inbound.transaction(() => {
      prep(
        this.inbound,
        `INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, tries, trigger, routing, content, series_id)
           VALUES (?, ?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?)`,
      ).run(
        id,
        seq,
        input.kind,
        now,
        processAfter,
        input.trigger ? 1 : 0,
        JSON.stringify(input.routing),
        JSON.stringify(input.content),
        input.seriesId ?? null,
      );
    });
    try {
      this.write(tx);
    } catch (err) {
      if (told) this.runner?.stop('a message it was told of could not be queued');
      throw err;
    }
    this.ring();
    return { id, seq };
  }

  /** Tell the running runner of a row about to be committed, when it may be hinted. */
  private tell(
    row: EnqueueInput & { id: string; seq: number; timestamp: number; processAfter: number },
  ): boolean {
    const runner = this.runner;
    if (!runner || !this.gen || this.inbound.inTransaction || !mayHint(row, row.timestamp)) return false;
    // Another unsettled message: the batch is more than this one (or the runner is busy).
    if (prep(this.inbound, `SELECT 1 FROM messages_in WHERE status = 'pending' LIMIT 1`).get()) return false;
    const line = encodeHint({
      gen: this.gen,
      message: {
        id: row.id,
        seq: row.seq,
        kind: 'chat',
        timestamp: row.timestamp,
        tries: 0,
        trigger: true,
        processAfter: row.processAfter,
        routing: row.routing,
        content: row.content,
      },
    });
    return line !== null && runner.tell(line);
  }

  /** Whether the run of task series `seriesId` scheduled for `runAt` was already enqueued (idempotent firing). */
  hasTaskRun(seriesId: string, runAt: number): boolean {
    return !!prep(this.inbound, TASK_RUN_SQL).get(seriesId, runAt);
  }

  /** Replace the mirror of the agent group's tasks (read in the sandbox by list_tasks and the task tools). */
  /**
   * The host has handled the session's task actions up to outbound `seq` (applied or refused):
   * the sandbox lists its own schedule requests after it as 'requested', and only those. Kept
   * as the highest seen (a row handled again after a crash does not move it back).
   */
  markActionsHandled(seq: number): void {
    this.write(() =>
      prep(
        this.inbound,
        `INSERT INTO meta(key, value) VALUES ('actions-handled', ?)
           ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))`,
      ).run(String(seq)),
    );
  }

  setTasks(tasks: MirroredTask[]): void {
    const ins = prep(
      this.inbound,
      'INSERT INTO tasks (id, prompt, cron, at, script, status, next_run_at, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.write(
      this.inbound.transaction(() => {
        prep(this.inbound, 'DELETE FROM tasks').run();
        for (const t of tasks)
          ins.run(t.id, t.prompt, t.cron, t.at, t.script, t.status, t.nextRunAt, t.timezone);
      }),
    );
  }

  /** Store an inbound attachment under inbox/<message>/ (refuses traversal, symlinks, overwrite). */
  saveAttachment(messageFolder: string, name: string, data: Buffer): string {
    return writeAttachment(path.join(this.dir, 'inbox'), messageFolder, name, data);
  }

  get(id: string): InboundRow | null {
    const r = prep(this.inbound, 'SELECT * FROM messages_in WHERE id = ?').get(id) as RawIn | undefined;
    return r ? inRow(r) : null;
  }

  /**
   * The message that came in from this chat with this platform id, if any: an event delivered
   * again (an agent chat's send replayed after a host crash) is recognised, not queued twice.
   */
  byPlatformMessage(routing: Routing, platformMessageId: string): { id: string; seq: number } | null {
    const r = prep(
      this.inbound,
      `SELECT id, seq FROM messages_in WHERE json_extract(content, '$.platformMessageId') = ?
         AND json_extract(routing, '$.channelType') = ? AND json_extract(routing, '$.platformId') = ?
         AND json_extract(routing, '$.threadId') IS ?`,
    ).get(platformMessageId, routing.channelType, routing.platformId, routing.threadId);
    return (r as { id: string; seq: number } | undefined) ?? null;
  }

  /** Whether the host already queued the notice with this key (InboundContent.hostKey). */
  hasHostNotice(key: string): boolean {
    return prep(this.inbound, HOST_NOTICE_SQL).get(key) !== undefined;
  }

  bySeq(seq: number): InboundRow | null {
    const r = prep(this.inbound, 'SELECT * FROM messages_in WHERE seq = ?').get(seq) as RawIn | undefined;
    return r ? inRow(r) : null;
  }

  pending(): InboundRow[] {
    return (
      prep(this.inbound, `SELECT * FROM messages_in WHERE status = 'pending' ORDER BY seq`).all() as RawIn[]
    ).map(inRow);
  }

  /** The ids of pending messages, oldest first (no row parsing: for the ack snapshot). */
  pendingIds(): string[] {
    return this.pendingTries().map((r) => r.id);
  }

  /** Id and try number of each pending message, oldest first (no row parsing). */
  pendingTries(): Array<{ id: string; tries: number }> {
    return prep(
      this.inbound,
      `SELECT id, tries FROM messages_in WHERE status = 'pending' ORDER BY seq`,
    ).all() as Array<{ id: string; tries: number }>;
  }

  markDone(id: string, status: 'completed' | 'failed'): boolean {
    return (
      this.write(() =>
        prep(this.inbound, `UPDATE messages_in SET status = ? WHERE id = ? AND status = 'pending'`).run(
          status,
          id,
        ),
      ).changes > 0
    );
  }

  /** Schedule another attempt: a new try number means the runner treats it as not yet started. */
  retry(id: string, processAfter: number): void {
    this.write(() =>
      prep(
        this.inbound,
        `UPDATE messages_in SET tries = tries + 1, process_after = ? WHERE id = ? AND status = 'pending'`,
      ).run(processAfter, id),
    );
    this.ring();
  }

  /**
   * Run `fn` on outbound.db in one read transaction whose snapshot was checked to hold only the
   * runner's schema (checked again whenever the schema version moves); null before the runner
   * made the file and committed that schema. Every text column is read through `cap`, so no row of the sandbox's can
   * make the host load more than MAX_CELL_CHARS of it.
   */
  private read<T>(fn: (db: Db) => T): T | null {
    if (!this.outbound) this.outbound = openOutboundReader(this.dir);
    const db = this.outbound;
    if (!db) return null;
    const r = db.transaction(() => {
      const v = db.pragma('schema_version', { simple: true }) as number;
      if (v !== this.outVersion) {
        if (!outboundSchemaReady(db, this.dir)) return NOT_READY;
        this.outVersion = v;
      }
      return fn(db);
    })();
    if (r !== NOT_READY) return r;
    // Not all of it yet (the runner commits its schema in one transaction): open afresh later,
    // as the file may not even be in WAL mode yet.
    db.close();
    this.outbound = null;
    return null;
  }

  /** Rows after `seq`, oldest first, at most `limit` of them (read again from the last one for more). */
  outboundSince(seq: number, limit = OUTBOUND_BATCH): OutboundRow[] {
    const rows = this.read(
      (db) =>
        prep(db, `SELECT ${OUT_COLUMNS} FROM messages_out WHERE seq > ? ORDER BY seq LIMIT ?`).all(
          seq,
          limit,
        ) as RawOut[],
    );
    return (rows ?? []).map(outRow);
  }

  outboundById(id: string): OutboundRow | null {
    const r = this.read(
      (db) => prep(db, `SELECT ${OUT_COLUMNS} FROM messages_out WHERE id = ?`).get(id) as RawOut | undefined,
    );
    return r ? outRow(r) : null;
  }

  /**
   * Acks of the given messages (all tries; a bounded number). The ids go in as one JSON array:
   * one bound variable however many (SQLite takes at most 32766; a session with more pending
   * rows, say an accumulating chat, could not be delivered or settled again), one statement.
   */
  acksFor(ids: string[]): AckRow[] {
    if (ids.length === 0) return [];
    const rows = this.read(
      (db) =>
        prep(
          db,
          `SELECT ${ACK_COLUMNS} FROM acks WHERE message_id IN (SELECT value FROM json_each(?)) LIMIT ${MAX_ACK_ROWS}`,
        ).all(JSON.stringify(ids)) as RawAck[],
    );
    return (rows ?? []).flatMap(ackRow);
  }

  state(key: string): { value: string; updatedAt: number } | null {
    const r = this.read(
      (db) =>
        prep(db, `SELECT ${cap('value')}, updated_at FROM state WHERE key = ?`).get(key) as
          { value: string | null; updated_at: number } | undefined,
    );
    return r && r.value !== null ? { value: r.value, updatedAt: r.updated_at } : null;
  }

  close(): void {
    this.inbound.close();
    this.outbound?.close();
    this.outbound = null;
    this.outVersion = null;
  }
}

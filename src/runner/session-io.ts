/**
 * The runner's half of the session directory: inbound.db read-only, outbound.db as its only
 * writer. Every state change (reply + acks) is one transaction, so a sandbox killed at any
 * instant leaves either all of a step or none of it.
 */
import { safeJson } from '../shared/safe-json.js';
import { prep } from '../shared/sql.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  type Answer,
  InboundContentSchema,
  nextOdd,
  RoutingSchema,
  SessionMetaSchema,
  TaskSpecSchema,
  type TaskSpec,
  type TaskListing,
  type AckError,
  type AckStatus,
  type InboundContent,
  type OutboundContent,
  type OutboundKind,
  type Destination,
  type Routing,
  type SessionMeta,
} from '../shared/messages.js';
import { z } from 'zod';
import {
  bellsDir,
  openInboundReader,
  openOutboundWriter,
  OUTBOUND_BELL,
  ringBell,
  type Db,
} from '../shared/session-db.js';

export interface PendingMessage {
  id: string;
  seq: number;
  kind: string;
  timestamp: number;
  tries: number;
  trigger: boolean;
  processAfter: number;
  routing: Routing;
  content: InboundContent;
}

const TurnSchema = z.object({ messageId: z.string(), routing: RoutingSchema });
const WaitMark = z.object({ until: z.number(), turn: z.string().nullable() });

export interface OutMessage {
  kind: OutboundKind;
  inReplyTo: string | null;
  routing: Routing;
  content: Partial<OutboundContent> & { text: string };
}

export interface SessionContext {
  gen: string | null;
  meta: SessionMeta;
  destinations: Destination[];
}

/**
 * Asked at every settle and at every wake while a question waits: indexes (messages_out_reply,
 * messages_in_answer) keep them off the session's whole history.
 */
export const REPLIES_SQL = `SELECT seq, kind, routing, json_extract(content, '$.answer') AS answer,
    length(trim(coalesce(json_extract(content, '$.text'), ''))) > 0 AS said
  FROM messages_out WHERE in_reply_to = ?`;
export const ANSWER_SQL = `SELECT content FROM messages_in WHERE kind = 'answer' AND json_extract(content, '$.answer.questionId') = ?`;

export class RunnerQueue {
  readonly inbound: Db;
  readonly outbound: Db;
  private lastBeat = 0;
  private cached: SessionContext | null = null;

  constructor(
    readonly sessionDir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.inbound = openInboundReader(sessionDir);
    this.outbound = openOutboundWriter(sessionDir);
    fs.writeFileSync(path.join(bellsDir(sessionDir), OUTBOUND_BELL), '');
  }

  /** Tell the host a commit is readable (see OUTBOUND_BELL). Called after each commit returns. */
  private ring(): void {
    ringBell(this.sessionDir, OUTBOUND_BELL);
  }

  meta(): SessionMeta {
    const r = prep(this.inbound, `SELECT value FROM meta WHERE key = 'session'`).get() as
      { value: string } | undefined;
    if (!r) throw new Error('inbound.db has no session metadata');
    return SessionMetaSchema.parse(JSON.parse(r.value));
  }

  /**
   * The session's metadata and destinations with the generation the host published them
   * under, read in one snapshot and kept for an early-start hint (see runner-hint.ts).
   */
  context(): SessionContext {
    const read = this.inbound.transaction(() => {
      const gen = prep(this.inbound, `SELECT value FROM meta WHERE key = 'gen'`).get() as
        { value: string } | undefined;
      return { gen: gen?.value ?? null, meta: this.meta(), destinations: this.destinations() };
    });
    this.cached = read();
    return this.cached;
  }

  /** The last context read, when the host has published nothing since (`gen` is its current one). */
  cachedContext(gen: string): SessionContext | null {
    return this.cached && this.cached.gen === gen ? this.cached : null;
  }

  /** Whether this try of the message was already started (acked in any status). */
  started(id: string, tries: number): boolean {
    return !!prep(this.outbound, 'SELECT 1 FROM acks WHERE message_id = ? AND try = ?').get(id, tries);
  }

  destinations(): Destination[] {
    const rows = prep(
      this.inbound,
      'SELECT name, kind, routing FROM destinations ORDER BY name',
    ).all() as Array<{ name: string; kind: string; routing: string }>;
    return rows.map((r) => ({
      name: r.name,
      kind: r.kind,
      routing: RoutingSchema.parse(JSON.parse(r.routing)),
    }));
  }

  /** Pending messages whose current try has not been started, oldest first; and when the next one is due. */
  pending(exclude: ReadonlySet<string> = new Set()): { due: PendingMessage[]; nextDueAt: number | null } {
    const now = this.now();
    const rows = prep(
      this.inbound,
      `SELECT * FROM messages_in WHERE status = 'pending' ORDER BY seq`,
    ).all() as Array<Record<string, unknown>>;
    const due: PendingMessage[] = [];
    let nextDueAt: number | null = null;
    for (const r of rows) {
      const id = r.id as string;
      if (exclude.has(id) || this.started(id, r.tries as number)) continue;
      const processAfter = r.process_after as number;
      if (processAfter > now) {
        nextDueAt = nextDueAt === null ? processAfter : Math.min(nextDueAt, processAfter);
        continue;
      }
      due.push({
        id,
        seq: r.seq as number,
        kind: r.kind as string,
        timestamp: r.timestamp as number,
        tries: r.tries as number,
        trigger: r.trigger === 1,
        processAfter,
        routing: RoutingSchema.parse(JSON.parse(r.routing as string)),
        content: InboundContentSchema.parse(JSON.parse(r.content as string)),
      });
    }
    return { due, nextDueAt };
  }

  ack(messages: Array<Pick<PendingMessage, 'id' | 'tries'>>, status: AckStatus, error?: AckError): void {
    const now = this.now();
    const stmt = prep(
      this.outbound,
      `INSERT INTO acks (message_id, try, status, error, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(message_id, try) DO UPDATE SET status = excluded.status, error = excluded.error, updated_at = excluded.updated_at`,
    );
    // IMMEDIATE: the tool server writes this file from another process; take the write lock up front.
    this.outbound
      .transaction(() => {
        for (const m of messages) stmt.run(m.id, m.tries, status, error ? JSON.stringify(error) : null, now);
        // A turn starts alive: the host times a turn's silence from the last beat, and an idle
        // runner writes none, so the beat before a long quiet spell would look like a stuck turn.
        if (status === 'processing') this.beat(now);
      })
      .immediate();
    // 'processing' needs no prompt host reaction (a dead sandbox is noticed by its exit), and
    // waking the host then would only compete for CPU with the turn that is starting.
    if (!this.outbound.inTransaction && status !== 'processing') this.ring();
  }

  /** Write outbound rows and then acks for `done`, atomically. Returns the rows' seqs. */
  commit(
    out: OutMessage[],
    done: Array<Pick<PendingMessage, 'id' | 'tries'>>,
    status: AckStatus = 'completed',
    error?: AckError,
  ): number[] {
    const seqs: number[] = [];
    this.outbound
      .transaction(() => {
        for (const o of out) seqs.push(this.insertOut(o));
        if (done.length) this.ack(done, status, error);
      })
      .immediate();
    this.ring();
    return seqs;
  }

  private insertOut(o: OutMessage): number {
    const seq = nextOdd(this.lastOutboundSeq());
    const content: OutboundContent = { files: [], ...o.content };
    prep(
      this.outbound,
      'INSERT INTO messages_out (id, seq, in_reply_to, kind, timestamp, routing, content) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(
      randomUUID(),
      seq,
      o.inReplyTo,
      o.kind,
      this.now(),
      JSON.stringify(o.routing),
      JSON.stringify(content),
    );
    return seq;
  }

  /** The message whose turn is running (read by the tool server for in_reply_to and the default chat). */
  turn(): { messageId: string; routing: Routing } | null {
    const v = this.getState('turn');
    if (!v) return null;
    const r = TurnSchema.safeParse(JSON.parse(v));
    return r.success ? r.data : null;
  }

  setTurn(ref: { messageId: string; routing: Routing } | null): void {
    this.setState('turn', ref ? JSON.stringify(ref) : null);
  }

  outboundBySeq(seq: number): { kind: string; inReplyTo: string | null; routing: Routing } | null {
    const r = prep(this.outbound, 'SELECT kind, in_reply_to, routing FROM messages_out WHERE seq = ?').get(
      seq,
    ) as { kind: string; in_reply_to: string | null; routing: string } | undefined;
    return r
      ? { kind: r.kind, inReplyTo: r.in_reply_to, routing: RoutingSchema.parse(JSON.parse(r.routing)) }
      : null;
  }

  inboundBySeq(seq: number): { kind: string; routing: Routing } | null {
    const r = prep(this.inbound, 'SELECT kind, routing FROM messages_in WHERE seq = ?').get(seq) as
      { kind: string; routing: string } | undefined;
    return r ? { kind: r.kind, routing: RoutingSchema.parse(JSON.parse(r.routing)) } : null;
  }

  /**
   * Rows the agent sent in reply to a message (to apply "never both" at the end of a turn);
   * `answer`: the loop's own answer of a turn (OutboundContent.answer), not a tool's message.
   */
  /** `said`: the row carries text (a file sent without a caption says nothing). */
  repliesTo(
    messageId: string,
  ): Array<{ seq: number; kind: string; routing: Routing; answer: boolean; said: boolean }> {
    const rows = prep(this.outbound, REPLIES_SQL).all(messageId) as Array<{ seq: number; kind: string; routing: string; answer: unknown; said: number }>;
    return rows.map((r) => ({
      seq: r.seq,
      kind: r.kind,
      routing: RoutingSchema.parse(JSON.parse(r.routing)),
      answer: r.answer === 1,
      said: r.said === 1,
    }));
  }

  /** The seq of the newest outbound row (0 before any): rows after it are newer than now. */
  lastOutboundSeq(): number {
    return (
      (prep(this.outbound, 'SELECT MAX(seq) AS m FROM messages_out').get() as { m: number | null }).m ?? 0
    );
  }

  /** Tasks the host mirrored into inbound.db. */
  tasks(): TaskListing[] {
    const rows = prep(
      this.inbound,
      // In the order the host mirrored them: oldest first.
      'SELECT id, prompt, cron, at, status, next_run_at, timezone FROM tasks ORDER BY rowid',
    ).all() as Array<{
      id: string;
      prompt: string;
      cron: string | null;
      at: string | null;
      status: string;
      next_run_at: number | null;
      timezone: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      prompt: r.prompt,
      cron: r.cron,
      at: r.at,
      status: r.status,
      nextRunAt: r.next_run_at,
      timezone: r.timezone,
    }));
  }

  /** Tasks this session asked the host to schedule that it has not refused (they may not be mirrored back yet). */
  requestedTasks(): TaskSpec[] {
    const refused = new Set(
      (
        prep(
          this.inbound,
          `SELECT json_extract(content, '$.refused.seq') AS seq FROM messages_in WHERE kind = 'system' AND json_extract(content, '$.refused.seq') IS NOT NULL`,
        ).all() as Array<{ seq: number }>
      ).map((r) => r.seq),
    );
    // Rows the host has handled are not requests any more: applied ones are in the mirror (or
    // were, before a finished task was pruned from it), refused ones were told.
    const handled = prep(this.inbound, `SELECT value FROM meta WHERE key = 'actions-handled'`).get() as
      { value: string } | undefined;
    const rows = prep(
      this.outbound,
      `SELECT seq, json_extract(content, '$.action.task') AS task FROM messages_out
         WHERE kind = 'system' AND json_extract(content, '$.action.type') = 'schedule_task' AND seq > ?`,
    ).all(Number(handled?.value ?? 0)) as Array<{ seq: number; task: string | null }>;
    return rows.flatMap((r) => {
      if (refused.has(r.seq)) return [];
      const t = r.task ? TaskSpecSchema.safeParse(JSON.parse(r.task)) : null;
      return t?.success ? [t.data] : [];
    });
  }

  /** The answer to a question, once the host has written it. */
  answer(questionId: string): Answer | null {
    const r = prep(this.inbound, ANSWER_SQL).get(questionId) as { content: string } | undefined;
    if (!r) return null;
    return InboundContentSchema.parse(JSON.parse(r.content)).answer ?? null;
  }

  getState(key: string): string | null {
    const r = prep(this.outbound, 'SELECT value FROM state WHERE key = ?').get(key) as
      { value: string } | undefined;
    return r?.value ?? null;
  }

  setState(key: string, value: string | null): void {
    if (value === null) prep(this.outbound, 'DELETE FROM state WHERE key = ?').run(key);
    else
      prep(
        this.outbound,
        'INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      ).run(key, value, this.now());
  }

  continuation(provider: string): string | null {
    return this.getState(`continuation:${provider}`);
  }

  setContinuation(provider: string, value: string | null): void {
    this.setState(`continuation:${provider}`, value);
  }

  /**
   * A tool waits for a person's answer to `questionId` until `expiresAt`, in the turn of
   * `messageId` (expiresAt null: no longer). Kept in the state table so the runner, another
   * process, sees it (personWaiting).
   */
  markWaiting(questionId: string, expiresAt: number | null, messageId: string | null = null): void {
    this.setState(
      `waiting:${questionId}`,
      expiresAt === null ? null : JSON.stringify({ until: expiresAt, turn: messageId }),
    );
  }

  /**
   * Does a tool wait for a person in the running turn now? A mark counts only before its
   * deadline and for the turn it was made in, so one left by a tool server that was killed
   * cannot keep a later turn's timers from running.
   */
  personWaiting(): boolean {
    const turn = this.turn()?.messageId ?? null;
    const rows = prep(this.outbound, `SELECT value FROM state WHERE key LIKE 'waiting:%'`).all() as Array<{
      value: string;
    }>;
    return rows.some((r) => {
      const m = WaitMark.safeParse(safeJson(r.value));
      return m.success && m.data.until > this.now() && m.data.turn === turn;
    });
  }

  /** A runner starting has no tool waiting yet: marks of an earlier one are void. */
  clearWaiting(): void {
    prep(this.outbound, `DELETE FROM state WHERE key LIKE 'waiting:%'`).run();
  }

  /** Liveness for the host's stuck-turn detection; written at most every 500 ms. */
  heartbeat(force = false): void {
    const now = this.now();
    if (!force && now - this.lastBeat < 500) return;
    this.beat(now);
  }

  private beat(now: number): void {
    this.lastBeat = now;
    this.setState('heartbeat', String(now));
  }

  close(): void {
    this.inbound.close();
    this.outbound.close();
  }
}

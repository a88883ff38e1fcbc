/** Open questions per chat, and matching a person's reply to one of the options. */
import { prep } from '../../shared/sql.js';
import { z } from 'zod';
import { optionKey } from '../../shared/outbound-rules.js';
import type { Question, Routing } from '../../shared/messages.js';
import type { Db } from '../db/open.js';

export interface OpenQuestion {
  questionId: string;
  sessionId: string;
  /** The chat the question was sent to (a button press comes from it). */
  channelType: string;
  platformId: string;
  options: string[];
  expiresAt: number;
  /** Only an admin of the group may answer (tool approvals). */
  adminOnly: boolean;
}

/**
 * The longest a question stays open, whatever deadline the sandbox wrote (the tool allows 24 h;
 * a minute more for clock skew): a question must not catch a chat's replies for ever.
 */
export const MAX_QUESTION_OPEN_MS = 24 * 3_600_000 + 60_000;

export function recordQuestion(
  db: Db,
  q: {
    questionId: string;
    sessionId: string;
    routing: Routing;
    options: string[];
    expiresAt: number;
    adminOnly?: boolean;
    /** The inbound message whose turn asks (its end expires the question). */
    messageId?: string | null;
    /** Already in its chat (default); false until markShown: replies in the chat pass it by. */
    shown?: boolean;
  },
  now = Date.now(),
): void {
  prep(
    db,
    `INSERT OR IGNORE INTO pending_questions (question_id, session_id, channel_type, platform_id, thread_id, options, expires_at, admin_only, message_id, shown, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    q.questionId,
    q.sessionId,
    q.routing.channelType,
    q.routing.platformId,
    q.routing.threadId,
    JSON.stringify(q.options),
    Math.min(q.expiresAt, now + MAX_QUESTION_OPEN_MS),
    q.adminOnly ? 1 : 0,
    q.messageId ?? null,
    q.shown === false ? 0 : 1,
    now,
  );
}

/** The question's send went through: from now on a reply in its chat may answer it. */
export function markShown(db: Db, questionId: string): void {
  prep(db, `UPDATE pending_questions SET shown = 1 WHERE question_id = ?`).run(questionId);
}

/** Record the question an outbound row asks, not shown yet (once: a row handled again changes nothing). */
export function recordQuestionRow(
  db: Db,
  sessionId: string,
  row: { routing: Routing; inReplyTo: string | null; question: Question },
  now = Date.now(),
): void {
  recordQuestion(
    db,
    {
      questionId: row.question.questionId,
      sessionId,
      routing: row.routing,
      options: row.question.options,
      expiresAt: row.question.expiresAt,
      adminOnly: row.question.adminOnly === true,
      messageId: row.inReplyTo,
      shown: false,
    },
    now,
  );
}

const Options = z.array(z.string());
/** The columns an OpenQuestion is read from (fromRow). */
const OPEN_COLUMNS = 'question_id, session_id, channel_type, platform_id, options, expires_at, admin_only';

interface Row {
  question_id: string;
  session_id: string;
  channel_type: string;
  platform_id: string;
  options: string;
  expires_at: number;
  admin_only: number;
}

function fromRow(r: Row): OpenQuestion {
  return {
    questionId: r.question_id,
    sessionId: r.session_id,
    channelType: r.channel_type,
    platformId: r.platform_id,
    options: Options.parse(JSON.parse(r.options)),
    expiresAt: r.expires_at,
    adminOnly: r.admin_only === 1,
  };
}

/** The open, unexpired questions in this chat (thread-aware), oldest first. */
export function openQuestionsFor(db: Db, routing: Routing, now = Date.now()): OpenQuestion[] {
  prep(db, `UPDATE pending_questions SET status = 'expired' WHERE status = 'open' AND expires_at <= ?`).run(
    now,
  );
  const rows = prep(
    db,
    `SELECT ${OPEN_COLUMNS} FROM pending_questions
       WHERE status = 'open' AND shown = 1 AND channel_type = ? AND platform_id = ? AND thread_id IS ? ORDER BY created_at, rowid`,
  ).all(routing.channelType, routing.platformId, routing.threadId) as Row[];
  return rows.map(fromRow);
}

/** Is the session asking a person something right now (an open, unexpired question)? */
export function hasOpenQuestion(db: Db, sessionId: string, now = Date.now()): boolean {
  return !!prep(
    db,
    `SELECT 1 FROM pending_questions WHERE session_id = ? AND status = 'open' AND expires_at > ?`,
  ).get(sessionId, now);
}

export function getQuestion(db: Db, questionId: string, now = Date.now()): OpenQuestion | null {
  const r = prep(
    db,
    `SELECT ${OPEN_COLUMNS} FROM pending_questions WHERE question_id = ? AND status = 'open' AND expires_at > ?`,
  ).get(questionId, now) as Row | undefined;
  return r ? fromRow(r) : null;
}

/**
 * A reply naming an option by its text ("option two", case and a final dot aside, on both
 * sides) or by its number ("2", "2.") → the option; anything else → null. The text comes
 * first: options that are numbers ("5", "10", "15") are answered by writing them.
 */
export function matchOption(options: string[], text: string): string | null {
  const t = optionKey(text);
  const named = options.find((o) => optionKey(o) === t);
  if (named !== undefined) return named;
  if (/^\d{1,2}$/.test(t)) return options[Number(t) - 1] ?? null;
  return null;
}

/**
 * Mark answered, by the platform message `answerMessageId` when a reply in the chat answered
 * (null for a button press); false if someone else answered first (only one answer counts).
 */
export function markAnswered(
  db: Db,
  questionId: string,
  answer: string,
  answerMessageId: string | null = null,
): boolean {
  return (
    prep(
      db,
      `UPDATE pending_questions SET status = 'answered', answer = ?, answer_message_id = ?
         WHERE question_id = ? AND status = 'open'`,
    ).run(answer, answerMessageId, questionId).changes > 0
  );
}

/** The question this platform message of this chat answered, if it answered one. */
export function answeredBy(
  db: Db,
  routing: Routing,
  answerMessageId: string,
): { questionId: string; sessionId: string } | null {
  const r = prep(
    db,
    `SELECT question_id, session_id FROM pending_questions
       WHERE channel_type = ? AND platform_id = ? AND answer_message_id = ? AND thread_id IS ? AND status = 'answered'`,
  ).get(routing.channelType, routing.platformId, answerMessageId, routing.threadId) as
    { question_id: string; session_id: string } | undefined;
  return r ? { questionId: r.question_id, sessionId: r.session_id } : null;
}

/** This question can no longer be answered (it could not be shown). */
export function expireQuestion(db: Db, questionId: string): void {
  prep(db, `UPDATE pending_questions SET status = 'expired' WHERE status = 'open' AND question_id = ?`).run(
    questionId,
  );
}

/**
 * The turn of `messageId` is over (settled, or its attempt failed): its open questions can no
 * longer be answered — a retry asks anew, and a reply must reach the new question, not this one.
 */
export function expireQuestionsOf(db: Db, messageId: string): void {
  prep(db, `UPDATE pending_questions SET status = 'expired' WHERE status = 'open' AND message_id = ?`).run(
    messageId,
  );
}

/** Open questions per chat, and matching a person's reply to one of the options. */
import { z } from 'zod';
import type { Routing } from '../../shared/messages.js';
import type { Db } from '../db/open.js';

export interface OpenQuestion {
  questionId: string;
  sessionId: string;
  options: string[];
  expiresAt: number;
}

export function recordQuestion(
  db: Db,
  q: { questionId: string; sessionId: string; routing: Routing; options: string[]; expiresAt: number },
  now = Date.now(),
): void {
  db.prepare(
    `INSERT OR IGNORE INTO pending_questions (question_id, session_id, channel_type, platform_id, thread_id, options, expires_at, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    q.questionId,
    q.sessionId,
    q.routing.channelType,
    q.routing.platformId,
    q.routing.threadId,
    JSON.stringify(q.options),
    q.expiresAt,
    now,
  );
}

const Options = z.array(z.string());

/** The oldest open, unexpired question in this chat (thread-aware), or null. */
export function openQuestionFor(db: Db, routing: Routing, now = Date.now()): OpenQuestion | null {
  db.prepare(`UPDATE pending_questions SET status = 'expired' WHERE status = 'open' AND expires_at <= ?`).run(
    now,
  );
  const r = db
    .prepare(
      `SELECT question_id, session_id, options, expires_at FROM pending_questions
       WHERE status = 'open' AND channel_type = ? AND platform_id = ? AND thread_id IS ? ORDER BY created_at LIMIT 1`,
    )
    .get(routing.channelType, routing.platformId, routing.threadId) as
    { question_id: string; session_id: string; options: string; expires_at: number } | undefined;
  if (!r) return null;
  return {
    questionId: r.question_id,
    sessionId: r.session_id,
    options: Options.parse(JSON.parse(r.options)),
    expiresAt: r.expires_at,
  };
}

export function getQuestion(db: Db, questionId: string, now = Date.now()): OpenQuestion | null {
  const r = db
    .prepare(
      `SELECT question_id, session_id, options, expires_at FROM pending_questions WHERE question_id = ? AND status = 'open' AND expires_at > ?`,
    )
    .get(questionId, now) as
    { question_id: string; session_id: string; options: string; expires_at: number } | undefined;
  return r
    ? {
        questionId: r.question_id,
        sessionId: r.session_id,
        options: Options.parse(JSON.parse(r.options)),
        expiresAt: r.expires_at,
      }
    : null;
}

/** "2", "2.", "option two" (case-insensitive) → the option; anything else → null. */
export function matchOption(options: string[], text: string): string | null {
  const t = text.trim().replace(/\.$/, '');
  if (/^\d{1,2}$/.test(t)) return options[Number(t) - 1] ?? null;
  return options.find((o) => o.toLowerCase() === t.toLowerCase()) ?? null;
}

/** Mark answered; false if someone else answered first (only one answer counts). */
export function markAnswered(db: Db, questionId: string, answer: string): boolean {
  return (
    db
      .prepare(
        `UPDATE pending_questions SET status = 'answered', answer = ? WHERE question_id = ? AND status = 'open'`,
      )
      .run(answer, questionId).changes > 0
  );
}

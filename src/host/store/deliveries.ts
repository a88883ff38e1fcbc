/** The delivery ledger: what was sent where, so nothing is sent twice blindly after a restart. */
import { prep } from '../../shared/sql.js';
import type { Db } from '../db/open.js';

export type DeliveryStatus = 'sending' | 'retry' | 'sent' | 'failed' | 'skipped';

export interface DeliveryRow {
  sessionId: string;
  outId: string;
  seq: number | null;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  platformMessageId: string | null;
  error: string | null;
  /** A host notice's payload (JSON, see notices.ts); null for the agent's own rows. */
  notice: string | null;
}

export function getDelivery(db: Db, sessionId: string, outId: string): DeliveryRow | null {
  const r = prep(db, 'SELECT * FROM deliveries WHERE session_id = ? AND out_id = ?').get(sessionId, outId) as
    Record<string, unknown> | undefined;
  return r ? fromRow(r) : null;
}

function fromRow(r: Record<string, unknown>): DeliveryRow {
  return {
    sessionId: r.session_id as string,
    outId: r.out_id as string,
    seq: (r.seq as number | null) ?? null,
    status: r.status as DeliveryStatus,
    attempts: r.attempts as number,
    nextAttemptAt: (r.next_attempt_at as number | null) ?? null,
    platformMessageId: (r.platform_message_id as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    notice: (r.notice as string | null) ?? null,
  };
}

export function recordDelivery(
  db: Db,
  row: Pick<DeliveryRow, 'sessionId' | 'outId' | 'seq' | 'status'> &
    Partial<Pick<DeliveryRow, 'attempts' | 'nextAttemptAt' | 'platformMessageId' | 'error' | 'notice'>>,
  now = Date.now(),
): void {
  prep(
    db,
    `INSERT INTO deliveries (session_id, out_id, seq, status, attempts, next_attempt_at, platform_message_id, error, notice, updated_at)
     VALUES (@sessionId, @outId, @seq, @status, @attempts, @nextAttemptAt, @platformMessageId, @error, @notice, @now)
     ON CONFLICT(session_id, out_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
       next_attempt_at = excluded.next_attempt_at, platform_message_id = COALESCE(excluded.platform_message_id, deliveries.platform_message_id),
       error = excluded.error, notice = COALESCE(excluded.notice, deliveries.notice),
       updated_at = excluded.updated_at`,
  ).run({
    sessionId: row.sessionId,
    outId: row.outId,
    seq: row.seq,
    status: row.status,
    attempts: row.attempts ?? 0,
    nextAttemptAt: row.nextAttemptAt ?? null,
    platformMessageId: row.platformMessageId ?? null,
    error: row.error ?? null,
    notice: row.notice ?? null,
    now,
  });
}

export function platformIdForSeq(db: Db, sessionId: string, seq: number): string | null {
  const r = prep(
    db,
    `SELECT platform_message_id FROM deliveries WHERE session_id = ? AND seq = ? AND status = 'sent'`,
  ).get(sessionId, seq) as { platform_message_id: string | null } | undefined;
  return r?.platform_message_id ?? null;
}

/** Notices of a session not yet sent nor given up on ('retry', or 'sending' when a send was cut off). */
export function openNotices(db: Db, sessionId: string): DeliveryRow[] {
  const rows = prep(
    db,
    `SELECT * FROM deliveries WHERE session_id = ? AND notice IS NOT NULL AND status IN ('sending', 'retry')
     ORDER BY updated_at, out_id`,
  ).all(sessionId) as Array<Record<string, unknown>>;
  return rows.map(fromRow);
}

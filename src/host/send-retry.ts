/**
 * The one retry rule for sends to a channel (the agent's rows and host notices alike): a
 * transient failure is tried again after baseDelayMs × 2^(attempts−1), at most MAX_RETRY_DELAY_MS,
 * or when the platform said (retryAfterMs, at most MAX_RETRY_AFTER_MS), until maxAttempts; a
 * permanent one (DeliveryError with transient=false) is final at once. Errors that are not
 * DeliveryErrors count as transient: an adapter's unexpected throw is not proof the chat is gone.
 * With the defaults (14 attempts from 500 ms) a send rides out a platform outage of about 23 min.
 */
import { DeliveryError } from '../channels/adapter.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
}

/** How long to wait before the next try after `attempts` tries failed with `err`; null: give up. */
export const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** A send found 'sending' this many times (the host died during each) is given up. */
export const MAX_CRASHED_SENDS = 3;
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

/**
 * A send found 'sending' (the host died during it) this often is given up: tried again at
 * every start, a send that takes the process down would keep the host from ever coming up.
 */
export const crashedOut = (row: { status: string; attempts: number }, p: RetryPolicy) =>
  row.status === 'sending' && row.attempts >= Math.min(p.maxAttempts, MAX_CRASHED_SENDS);

export function retryDelay(err: unknown, attempts: number, p: RetryPolicy): number | null {
  const transient = err instanceof DeliveryError ? err.transient : true;
  if (!transient || attempts >= p.maxAttempts) return null;
  const after = err instanceof DeliveryError ? err.retryAfterMs : undefined;
  if (after !== undefined && Number.isFinite(after) && after >= 0) return Math.min(after, MAX_RETRY_AFTER_MS);
  return Math.min(p.baseDelayMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
}

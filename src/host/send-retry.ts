/**
 * The one retry rule for sends to a channel (the agent's rows and host notices alike): a
 * transient failure is tried again after baseDelayMs × 2^(attempts−1) until maxAttempts; a
 * permanent one (DeliveryError with transient=false) is final at once. Errors that are not
 * DeliveryErrors count as transient: an adapter's unexpected throw is not proof the chat is gone.
 */
import { DeliveryError } from '../channels/adapter.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
}

/** How long to wait before the next try after `attempts` tries failed with `err`; null: give up. */
export function retryDelay(err: unknown, attempts: number, p: RetryPolicy): number | null {
  const transient = err instanceof DeliveryError ? err.transient : true;
  return transient && attempts < p.maxAttempts ? p.baseDelayMs * 2 ** (attempts - 1) : null;
}

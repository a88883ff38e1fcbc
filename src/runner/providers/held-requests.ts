/**
 * Permission requests an agent CLI holds open while a person decides (the 'ask' approval
 * policy). Each provider keeps its own wire format; what they share lives here.
 * Invariants:
 *  - every held request is settled at most once: the first of decide(), settleAll() or the
 *    provider's own cancel wins, later calls are ignored (a late button press cannot answer a
 *    request twice);
 *  - forget() drops a request without settling it (the CLI settled it itself);
 *  - onCount hears the number still held after every change, so a turn can pause its timers
 *    while somebody is asked.
 */

/** A person's decision; a deny's reason is worded for the model. */
export interface Decision {
  allow: boolean;
  reason?: string;
}

export class HeldRequests {
  private readonly held = new Map<string, (d: Decision) => void>();

  constructor(private readonly onCount?: (n: number) => void) {}

  get size(): number {
    return this.held.size;
  }

  /** Hold a request until it is decided; `settle` sends the decision to the CLI. */
  hold(id: string, settle: (d: Decision) => void): void {
    this.held.set(id, settle);
    this.onCount?.(this.held.size);
  }

  /** Settle one request; false when it is unknown or already settled. */
  decide(id: string, d: Decision): boolean {
    const settle = this.take(id);
    if (!settle) return false;
    settle(d);
    return true;
  }

  /** Drop a request the CLI settled itself. */
  forget(id: string): void {
    this.take(id);
  }

  /** Deny every request still held (the turn or the query ended first); no reason = a bare deny. */
  denyAll(reason?: string): void {
    for (const id of [...this.held.keys()]) this.decide(id, { allow: false, reason });
  }

  private take(id: string): ((d: Decision) => void) | undefined {
    const h = this.held.get(id);
    if (!h) return undefined;
    this.held.delete(id);
    this.onCount?.(this.held.size);
    return h;
  }
}

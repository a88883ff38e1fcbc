/**
 * The 'ask' approval policy for one OpenCode query: a `permission.asked` request is kept here
 * while a person decides (the runner's ApprovalDesk), and answered on OpenCode's permission API
 * only when decide() is called.
 * Invariants:
 *  - every request gets exactly one reply from us: decide() (allow → 'once'; deny → 'reject'
 *    with the reason as feedback, so the model reads it and the turn goes on) or rejectAll()
 *    when the turn ends first (a bare 'reject': OpenCode stops the turn's loop). A request
 *    OpenCode reports settled (`permission.replied`) is forgotten without a reply;
 *  - `size` counts the requests still waiting: the turn's idle timer does not run meanwhile.
 * OpenCode keeps a pending request even after the session is aborted, so rejectAll() is what
 * keeps none behind.
 */
import type { OpencodeClient } from '@opencode-ai/sdk/v2/client';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { HeldRequests } from './held-requests.js';

interface Waiting {
  client: OpencodeClient;
  directory: string;
  permission: string;
}

export class OpencodeApprovals {
  private listeners = new Set<() => void>();
  private readonly held = new HeldRequests(() => {
    for (const fn of [...this.listeners]) fn();
  });
  private sending = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.held.size;
  }

  /** Called whenever the number of waiting requests changes. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Keep a request until decide() or rejectAll(). */
  hold(id: string, w: Waiting): void {
    this.held.hold(id, (d) => {
      // No reason = the turn is over: a bare reject, which ends OpenCode's loop.
      void this.send(id, w, d.allow ? 'once' : 'reject', d.allow ? undefined : d.reason);
    });
  }

  /** The person's decision (the runner calls it once per request; later calls are ignored). */
  decide(id: string, allow: boolean, reason?: string): void {
    this.held.decide(id, { allow, reason: allow ? undefined : (reason ?? 'The tool call was denied.') });
  }

  /** OpenCode settled it (another client, or the request died with its session). */
  replied(id: string): void {
    this.held.forget(id);
  }

  /** The turn is over: reject whatever still waits, and wait for every reply still on its way. */
  async rejectAll(): Promise<void> {
    this.held.denyAll();
    await Promise.all([...this.sending]);
  }

  private send(id: string, w: Waiting, reply: 'once' | 'reject', message?: string): Promise<void> {
    const p = this.reply(id, w, reply, message).finally(() => this.sending.delete(p));
    this.sending.add(p);
    return p;
  }

  private async reply(id: string, w: Waiting, reply: 'once' | 'reject', message?: string): Promise<void> {
    this.log.info('answering an OpenCode permission request', { permission: w.permission, reply });
    try {
      const r = await w.client.permission.reply({
        requestID: id,
        directory: w.directory,
        reply,
        ...(message ? { message } : {}),
      });
      if (r.error) this.log.warn('permission reply refused', { err: JSON.stringify(r.error).slice(0, 300) });
    } catch (err) {
      // The server may be gone (crash, reset): its pending requests went with it.
      this.log.debug('permission reply failed', { err: errorMessage(err) });
    }
  }
}

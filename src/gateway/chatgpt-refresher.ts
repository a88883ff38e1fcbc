/**
 * The single refresher of ChatGPT-subscription tokens. Invariants: at most one refresh per
 * secret is in flight (concurrent requests join it); the rotated auth.json is stored in the
 * vault before any request uses the new access token; a refresh failure fails the request
 * with a clear status instead of sending a stale token. The sandbox never refreshes: its
 * placeholder never expires, and its own refresh attempts get placeholders back.
 *
 * A 401 forces a refresh only when it answered the token in use now (401s still arriving for
 * requests sent with the old token change nothing), and at most once a minute per secret: the
 * sandbox chooses what it asks the upstream, so it must not be able to drive refresh-token
 * rotation at the token endpoint at will.
 */
import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { accountId, needsRefresh, parseAuthJson, refreshAuth, type AuthJson } from './chatgpt-auth.js';
import type { OpenedSecret, SecretSource } from './contract.js';

export interface RefresherDeps {
  secrets: SecretSource;
  tokenUrl: string;
  fetch: typeof fetch;
  now: () => number;
  log: Logger;
}

/** Least time between two refreshes a 401 forces for one secret. */
export const FORCED_REFRESH_MS = 60_000;

export class ChatgptRefresher {
  private inflight = new Map<string, Promise<AuthJson>>();
  /** Secrets whose access token (the value) the upstream rejected: refresh before the next use. */
  private rejected = new Map<string, string>();
  /** When a 401 last forced a refresh, per secret. */
  private forcedAt = new Map<string, number>();
  /**
   * Refreshed tokens the vault failed to store (busy, disk full), by secret, with the stored
   * value they replace. The refresh token may have been rotated: thrown away, the owner would
   * have to log in again. Used, and stored again, until the vault takes them or its value changes.
   */
  private unstored = new Map<string, { from: string; auth: AuthJson }>();

  constructor(private readonly d: RefresherDeps) {}

  async credential(secret: OpenedSecret): Promise<{ accessToken: string; accountId: string | null }> {
    let auth = parseAuthJson(secret.value);
    const kept = this.unstored.get(secret.id);
    if (kept?.from === secret.value) {
      auth = kept.auth;
      this.store(secret.id, secret.value, auth);
    } else if (kept) this.unstored.delete(secret.id); // a new login replaced it
    if (this.inflight.has(secret.id) || needsRefresh(auth, this.d.now()) || this.forced(secret.id, auth))
      auth = await this.refresh(secret.id, secret.value, auth);
    return { accessToken: auth.tokens.access_token, accountId: accountId(auth) };
  }

  /** The upstream answered 401 to a request sent with `accessToken` of this secret. */
  markRejected(secretId: string, accessToken: string): void {
    this.rejected.set(secretId, accessToken);
  }

  /** Whether a 401 to the token in use now calls for a refresh (see the header). */
  private forced(secretId: string, auth: AuthJson): boolean {
    if (this.rejected.get(secretId) !== auth.tokens.access_token) return false;
    const now = this.d.now();
    if (now - (this.forcedAt.get(secretId) ?? -Infinity) < FORCED_REFRESH_MS) return false;
    this.forcedAt.set(secretId, now);
    return true;
  }

  accountOf(secret: OpenedSecret): string | null {
    return accountId(parseAuthJson(secret.value));
  }

  private store(secretId: string, from: string, auth: AuthJson): void {
    try {
      this.d.secrets.replaceValue(secretId, JSON.stringify(auth));
      this.unstored.delete(secretId);
    } catch (err) {
      this.unstored.set(secretId, { from, auth });
      this.d.log.error('could not store the refreshed ChatGPT token; kept in memory and tried again', {
        secret: secretId,
        err: errorMessage(err),
      });
    }
  }

  private refresh(secretId: string, from: string, auth: AuthJson): Promise<AuthJson> {
    const running = this.inflight.get(secretId);
    if (running) return running;
    const p = (async () => {
      try {
        const next = await refreshAuth(auth, this.d.tokenUrl, this.d.fetch, this.d.now());
        this.store(secretId, from, next);
        this.rejected.delete(secretId);
        this.d.log.info('refreshed ChatGPT access token', { secret: secretId });
        return next;
      } finally {
        this.inflight.delete(secretId);
      }
    })();
    this.inflight.set(secretId, p);
    return p;
  }
}

/**
 * The single refresher of ChatGPT-subscription tokens. Invariants: at most one refresh per
 * secret is in flight (concurrent requests join it); the rotated auth.json is stored in the
 * vault before any request uses the new access token; a refresh failure fails the request
 * with a clear status instead of sending a stale token. The sandbox never refreshes: its
 * placeholder never expires, and its own refresh attempts get placeholders back.
 */
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

export class ChatgptRefresher {
  private inflight = new Map<string, Promise<AuthJson>>();
  /** Secrets whose access token the upstream rejected: refresh before the next use. */
  private rejected = new Set<string>();

  constructor(private readonly d: RefresherDeps) {}

  async credential(secret: OpenedSecret): Promise<{ accessToken: string; accountId: string | null }> {
    let auth = parseAuthJson(secret.value);
    if (this.inflight.has(secret.id) || this.rejected.has(secret.id) || needsRefresh(auth, this.d.now()))
      auth = await this.refresh(secret.id, auth);
    return { accessToken: auth.tokens.access_token, accountId: accountId(auth) };
  }

  /** The upstream answered 401 with this secret's token. */
  markRejected(secretId: string): void {
    this.rejected.add(secretId);
  }

  accountOf(secret: OpenedSecret): string | null {
    return accountId(parseAuthJson(secret.value));
  }

  private refresh(secretId: string, auth: AuthJson): Promise<AuthJson> {
    const running = this.inflight.get(secretId);
    if (running) return running;
    const p = (async () => {
      try {
        const next = await refreshAuth(auth, this.d.tokenUrl, this.d.fetch, this.d.now());
        this.d.secrets.replaceValue(secretId, JSON.stringify(next));
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

/**
 * Maps OpenCode's event stream for one turn of one session onto ProviderEvents. Pure: no I/O,
 * so it is tested on the recorded stream (shared/reference/agent-clis/opencode-1.18.33-events.json).
 *  - `message.part.delta` on a text part → `delta`;
 *  - tool parts → `activity`, and `progress` when a tool starts running;
 *  - `session.status` retry → counted; `maxRetries` in a row fail the turn;
 *  - `session.error` → remembered; the turn ends on `session.idle` with that error or with the
 *    text of the last assistant message that had text (earlier steps' text is interim);
 *  - `permission.asked` → a decision the caller answers per policy.
 * Events of other sessions are ignored (the title generator and subagents have their own).
 */
import type { ErrorClassification, ProviderEvent } from '../../shared/provider.js';

export interface OcEvent {
  type: string;
  properties?: Record<string, unknown>;
}

export type TurnStep =
  | { kind: 'event'; event: ProviderEvent }
  | { kind: 'permission'; requestID: string; permission: string }
  | { kind: 'retry-exhausted'; message: string }
  | { kind: 'done'; event: Extract<ProviderEvent, { type: 'result' | 'error' }> };

interface Part {
  messageID: string;
  text: string;
}

interface OcError {
  name?: string;
  data?: { message?: string; statusCode?: number; isRetryable?: boolean };
}

export function classifyError(e: OcError): {
  message: string;
  retryable: boolean;
  classification?: ErrorClassification;
} {
  const message = e.data?.message || e.name || 'OpenCode reported an error';
  if (e.name === 'ProviderAuthError' || e.data?.statusCode === 401 || e.data?.statusCode === 403)
    return {
      message: `model endpoint refused the credentials: ${message}`,
      retryable: false,
      classification: 'auth',
    };
  if (e.data?.statusCode === 429)
    return {
      message: `model endpoint quota or rate limit: ${message}`,
      retryable: true,
      classification: 'quota',
    };
  if (e.name === 'MessageAbortedError') return { message: 'the turn was aborted', retryable: true };
  return { message, retryable: e.data?.isRetryable ?? true };
}

export class TurnTracker {
  private parts = new Map<string, Part>();
  private partOrder: string[] = [];
  private assistantIds = new Set<string>();
  private lastTextMessage: string | null = null;
  private error: OcError | null = null;
  private retries = 0;
  private runningTools = new Set<string>();
  private busy = false;

  constructor(
    private readonly sessionID: string,
    private readonly maxRetries: number,
  ) {}

  /** The text of the last assistant message that produced text (the turn's answer). */
  resultText(): string | null {
    if (!this.lastTextMessage) return null;
    const text = this.partOrder
      .map((id) => this.parts.get(id)!)
      .filter((p) => p.messageID === this.lastTextMessage)
      .map((p) => p.text)
      .join('');
    return text.trim() ? text : null;
  }

  feed(ev: OcEvent): TurnStep[] {
    const p = ev.properties ?? {};
    if (p.sessionID !== undefined && p.sessionID !== this.sessionID) return [];
    switch (ev.type) {
      case 'message.updated': {
        const info = p.info as { id?: string; role?: string; error?: OcError } | undefined;
        if (info?.role === 'assistant' && info.id) this.assistantIds.add(info.id);
        if (info?.role === 'assistant' && info.error && info.error.name !== 'MessageAbortedError')
          this.error = info.error;
        return [{ kind: 'event', event: { type: 'activity' } }];
      }
      case 'message.part.updated':
        return this.part(p.part as Record<string, unknown> | undefined);
      case 'message.part.delta': {
        if (p.field !== 'text' || typeof p.delta !== 'string') return [];
        const part = this.parts.get(p.partID as string);
        if (!part) return [];
        part.text += p.delta;
        this.lastTextMessage = part.messageID;
        return [{ kind: 'event', event: { type: 'delta', text: p.delta } }];
      }
      case 'session.status': {
        const st = p.status as { type?: string; attempt?: number; message?: string } | undefined;
        if (st?.type === 'busy') this.busy = true;
        if (st?.type !== 'retry') return [{ kind: 'event', event: { type: 'activity' } }];
        this.retries += 1;
        const msg = st.message ?? 'the model endpoint failed';
        if (this.retries >= this.maxRetries) return [{ kind: 'retry-exhausted', message: msg }];
        return [
          {
            kind: 'event',
            event: {
              type: 'progress',
              message: `model endpoint retry ${st.attempt ?? this.retries}: ${msg}`,
            },
          },
        ];
      }
      case 'session.error': {
        const e = (p.error as OcError | undefined) ?? { name: 'UnknownError' };
        // Aborts are ours (abort(), idle timeout, retries): they end nothing a caller still waits on.
        if (e.name !== 'MessageAbortedError') this.error = e;
        return [];
      }
      case 'permission.asked':
        return [{ kind: 'permission', requestID: String(p.id), permission: String(p.permission ?? 'tool') }];
      case 'session.idle':
        // An idle before our prompt made the session busy belongs to an earlier turn.
        if (!this.busy && !this.error) return [];
        if (this.error) {
          const c = classifyError(this.error);
          return [{ kind: 'done', event: { type: 'error', ...c } }];
        }
        return [{ kind: 'done', event: { type: 'result', text: this.resultText() } }];
      default:
        return [];
    }
  }

  private part(part: Record<string, unknown> | undefined): TurnStep[] {
    if (!part || typeof part.id !== 'string') return [];
    const messageID = String(part.messageID ?? '');
    if (part.type === 'text') {
      // User prompt parts arrive too; only assistant messages carry the answer.
      if (!this.assistantIds.has(messageID)) return [];
      if (!this.parts.has(part.id)) this.partOrder.push(part.id);
      const text = typeof part.text === 'string' ? part.text : '';
      this.parts.set(part.id, { messageID, text });
      if (text) this.lastTextMessage = messageID;
      return [];
    }
    if (part.type === 'tool') {
      const state = part.state as { status?: string; input?: Record<string, unknown> } | undefined;
      const tool = String(part.tool ?? 'tool');
      if (state?.status === 'running' && !this.runningTools.has(part.id)) {
        this.runningTools.add(part.id);
        return [{ kind: 'event', event: { type: 'progress', message: `tool: ${tool}` } }];
      }
      return [{ kind: 'event', event: { type: 'activity' } }];
    }
    return [{ kind: 'event', event: { type: 'activity' } }];
  }
}

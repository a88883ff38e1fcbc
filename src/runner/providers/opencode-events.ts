/**
 * Maps OpenCode's event stream for one turn of one session onto ProviderEvents. Pure: no I/O,
 * so it is tested on the recorded stream (shared/reference/agent-clis/opencode-1.18.33-events.json).
 *  - `message.part.delta` on a text part → `delta`;
 *  - tool parts → `activity`, and `progress` when a tool starts running;
 *  - `session.status` retry → counted; `maxRetries` in a row fail the turn;
 *  - `session.error` → remembered; the turn ends on `session.idle` with that error or with the
 *    text of the last assistant message that had text (earlier steps' text is interim);
 *  - a step that finishes with reason `stop` → `reply` with its message's text, before the idle;
 *  - a compaction's summary (an assistant message marked `summary`, mode or agent `compaction`)
 *    is neither streamed, nor a reply, nor the result;
 *  - errors without `isRetryable` that fail the same way every time (context overflow, content
 *    filter, output length) are not retryable;
 *  - `permission.asked` → a request the caller answers per policy (with what it is about, for a
 *    person to decide), `permission.replied` → that request is settled.
 * Events of other sessions are ignored (the title generator has its own), except that the
 * permission requests of the turn's subagents (sessions whose parent chain leads to the turn's
 * session) are the turn's too: nobody else would answer them.
 */
import type { ErrorClassification, ProviderEvent } from '../../shared/provider.js';

const MAX_SUMMARY = 500;

export interface PermissionAsk {
  id: string;
  /** OpenCode's permission name: the tool (bash, edit, webfetch, `<mcp server>_<tool>`) or a check (external_directory, doom_loop). */
  permission: string;
  /** What it would do: the command, the file, the URL, or the call's input in short. */
  summary: string;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** OpenCode writes a compaction's summary as an assistant message marked so (mode/agent "compaction"). */
const isCompaction = (info: { summary?: unknown; mode?: unknown; agent?: unknown }) =>
  info.summary === true || info.mode === 'compaction' || info.agent === 'compaction';

/** What a person is asked about, from a `permission.asked` event (and the tool call's input). */
export function summarizePermission(
  p: { permission?: unknown; patterns?: unknown; metadata?: unknown },
  input?: Record<string, unknown>,
): string {
  const m = (p.metadata && typeof p.metadata === 'object' ? p.metadata : {}) as Record<string, unknown>;
  const patterns = Array.isArray(p.patterns) ? p.patterns.map(str).filter((x) => x && x !== '*') : [];
  let text = str(m.command) || str(m.filepath) || str(m.url) || str(m.query);
  if (!text && p.permission === 'doom_loop' && str(m.tool))
    text = `${str(m.tool)} ${JSON.stringify(m.input ?? {})}`;
  if (!text) text = patterns.join(', ');
  if (!text && input && Object.keys(input).length) text = JSON.stringify(input);
  return text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY)}…` : text;
}

export interface OcEvent {
  type: string;
  properties?: Record<string, unknown>;
}

export type TurnStep =
  | { kind: 'event'; event: ProviderEvent }
  | { kind: 'permission'; request: PermissionAsk }
  | { kind: 'permission-replied'; requestID: string }
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

/** Errors that carry no isRetryable and fail the same way on another try of the same turn. */
const SAME_EVERY_TIME = new Set([
  'ContextOverflowError',
  'ContentFilterError',
  'MessageOutputLengthError',
  'StructuredOutputError',
]);

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
  if (e.name && SAME_EVERY_TIME.has(e.name)) return { message, retryable: false };
  return { message, retryable: e.data?.isRetryable ?? true };
}

/**
 * The error that ends a turn whose model call kept failing: a rate limit (429, "rate limit",
 * "quota", "too many requests" in OpenCode's retry message) is classified 'quota', as a
 * session error with status 429 is (classifyError).
 */
export function retriesExhausted(
  message: string,
  maxRetries: number,
): { type: 'error'; message: string; retryable: true; classification?: ErrorClassification } {
  const quota = /\b429\b|rate.?limit|too many requests|quota/i.test(message);
  return {
    type: 'error',
    message: quota
      ? `model endpoint quota or rate limit (${maxRetries} retries): ${message}`
      : `the model endpoint kept failing (${maxRetries} retries): ${message}`,
    retryable: true,
    ...(quota ? { classification: 'quota' as const } : {}),
  };
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
  /** The turn's session and its subagents' sessions. */
  private family: Set<string>;
  /** Tool-call inputs by call id (the summary of a permission whose event says nothing). */
  private inputs = new Map<string, Record<string, unknown>>();

  constructor(
    private readonly sessionID: string,
    private readonly maxRetries: number,
  ) {
    this.family = new Set([sessionID]);
  }

  /** True when `id` is the turn's session or one of its subagents'. */
  ofTurn(id: unknown): boolean {
    return typeof id === 'string' && this.family.has(id);
  }

  /** The text of the last assistant message that produced text (the turn's answer). */
  resultText(): string | null {
    return this.lastTextMessage ? this.textOf(this.lastTextMessage) : null;
  }

  /** A compaction's summary message: never the answer, nor streamed (its text may have come first). */
  private forget(messageID: string): void {
    this.assistantIds.delete(messageID);
    this.partOrder = this.partOrder.filter((id) => {
      const keep = this.parts.get(id)?.messageID !== messageID;
      if (!keep) this.parts.delete(id);
      return keep;
    });
    if (this.lastTextMessage === messageID) {
      const last = this.partOrder.findLast((id) => this.parts.get(id)!.text);
      this.lastTextMessage = last ? this.parts.get(last)!.messageID : null;
    }
  }

  private textOf(messageID: string): string | null {
    const text = this.partOrder
      .map((id) => this.parts.get(id)!)
      .filter((p) => p.messageID === messageID)
      .map((p) => p.text)
      .join('');
    return text.trim() ? text : null;
  }

  feed(ev: OcEvent): TurnStep[] {
    const p = ev.properties ?? {};
    const family = this.familyStep(ev.type, p);
    if (family) return family;
    if (p.sessionID !== undefined && p.sessionID !== this.sessionID) return [];
    switch (ev.type) {
      case 'message.updated': {
        const info = p.info as
          | {
              id?: string;
              role?: string;
              error?: OcError;
              summary?: unknown;
              mode?: unknown;
              agent?: unknown;
            }
          | undefined;
        if (info?.role === 'assistant' && info.id) {
          if (isCompaction(info)) this.forget(info.id);
          else this.assistantIds.add(info.id);
        }
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
        // Consecutive retries of one model call: OpenCode numbers them, and starts again at 1
        // for the next call (three calls that each came through after one retry are fine).
        this.retries = typeof st.attempt === 'number' ? st.attempt : this.retries + 1;
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

  /** Subagent sessions, tool inputs and permission events of the whole family; null = not handled here. */
  private familyStep(type: string, p: Record<string, unknown>): TurnStep[] | null {
    const info = p.info as { id?: unknown; parentID?: unknown } | undefined;
    if ((type === 'session.created' || type === 'session.updated') && this.ofTurn(info?.parentID))
      this.family.add(String(info!.id));
    if (!this.ofTurn(p.sessionID)) return null;
    if (type === 'message.part.updated') {
      const part = p.part as { type?: string; callID?: unknown; state?: { input?: unknown } } | undefined;
      const input = part?.state?.input;
      if (part?.type === 'tool' && typeof part.callID === 'string' && input && typeof input === 'object')
        if (Object.keys(input).length) this.inputs.set(part.callID, input as Record<string, unknown>);
    }
    if (type === 'permission.asked') {
      const tool = p.tool as { callID?: unknown } | undefined;
      const input = typeof tool?.callID === 'string' ? this.inputs.get(tool.callID) : undefined;
      const permission = str(p.permission) || 'tool';
      return [
        {
          kind: 'permission',
          request: { id: String(p.id), permission, summary: summarizePermission(p, input) },
        },
      ];
    }
    if (type === 'permission.replied')
      return [{ kind: 'permission-replied', requestID: String(p.requestID) }];
    return p.sessionID === this.sessionID ? null : [];
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
    if (part.type === 'step-finish' && part.reason === 'stop' && !this.error) {
      // The model ended its final step: its text is the answer, known before OpenCode's own
      // end-of-turn work (summaries, snapshots) finishes and the session goes idle.
      const text = this.textOf(messageID);
      return text ? [{ kind: 'event', event: { type: 'reply', text } }] : [];
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

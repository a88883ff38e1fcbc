/**
 * SDK message → ProviderEvent mapping for one live Claude query. Invariants:
 *  - exactly one `result` or `error` per SDK result message (one per prompt: the query gives the
 *    CLI one prompt at a time, see claude-query.ts);
 *  - text streams as `delta` only from the main thread (subagents' text is not the reply);
 *  - when a main-thread message's stop reason arrives as end_turn (message_delta, after its
 *    last content block), its text goes out as `reply` (the CLI emits its result only after
 *    its end-of-turn bookkeeping, ~4 ms later);
 *  - a result without text (the final message had none) answers with the turn's last text;
 *  - a compaction reports `progress` and its summary is never streamed nor delivered: a
 *    requested one (/compact) is the whole turn and its result carries no text; after an
 *    automatic one (compact_boundary trigger 'auto') the turn goes on and its answer is the reply;
 *  - an unknown stored session (no init, "No conversation found") is thrown as
 *    ClaudeSessionInvalid so the runner starts a fresh session with the message kept;
 *  - an API retry ends the turn as an `error` (the host's retry policy owns retries): retryable
 *    for limits, overload and server faults (a rate limit is classified `quota`), not for a
 *    rejected credential (`auth`) or a request the API refuses; the caller then closes the query.
 */
import type { SDKMessage } from '@anthropic-ai/claude-agent-sdk';
import type { ErrorClassification, ProviderEvent } from '../../shared/provider.js';

export class ClaudeSessionInvalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaudeSessionInvalid';
  }
}

const NO_SESSION = /No conversation found with session ID/i;

export function isSessionInvalidError(err: unknown): boolean {
  if (err instanceof ClaudeSessionInvalid) return true;
  return err instanceof Error && NO_SESSION.test(err.message);
}

/**
 * The SDK's error kinds. Retrying helps only where the upstream may answer differently later
 * (limits, overload, server faults); a rejected credential, a wrong model or a request the API
 * refuses fails the same way every time, so the user hears about it at once.
 */
const CLASS: Record<string, { classification?: ErrorClassification; retryable: boolean }> = {
  authentication_failed: { classification: 'auth', retryable: false },
  oauth_org_not_allowed: { classification: 'auth', retryable: false },
  account_on_hold: { classification: 'auth', retryable: false },
  verification_required: { classification: 'auth', retryable: false },
  cloud_credential_error: { classification: 'auth', retryable: false },
  billing_error: { classification: 'quota', retryable: false },
  rate_limit: { classification: 'quota', retryable: true },
  overloaded: { retryable: true },
  server_error: { retryable: true },
  unknown: { retryable: true },
  invalid_request: { retryable: false },
  model_not_found: { retryable: false },
  max_output_tokens: { retryable: false },
};

/**
 * A subscription past its limit whose extra usage is allowed: the request goes ahead, paid as
 * overage, so the turn is not stopped.
 */
function servedByOverage(i: { isUsingOverage?: boolean; overageInUse?: boolean; overageStatus?: string }) {
  return (
    i.isUsingOverage === true ||
    i.overageInUse === true ||
    i.overageStatus === 'allowed' ||
    i.overageStatus === 'allowed_warning'
  );
}

const errorKind = (e: string | null | undefined) => (e && Object.hasOwn(CLASS, e) ? CLASS[e] : undefined);

/**
 * What every other SDK message maps to: a sign of life. The runner's heartbeat must keep going
 * through a subagent's work or a long tool, or the host would take the turn for stuck and kill it.
 */
const alive: Mapped = { events: [{ type: 'activity' }], fatal: false };

export interface Mapped {
  events: ProviderEvent[];
  /** The turn failed in a way that ends this query (the caller closes it). */
  fatal: boolean;
}

export class ClaudeEventMapper {
  private sawInit = false;
  /** A compaction is under way: the message streamed now is its summary, not a reply. */
  private compacting = false;
  /** The turn was a requested compaction (/compact): its result is no reply either. */
  private compacted = false;
  private lastError: string | null = null;
  /** Text and stop reason of the main-thread message streaming now. */
  private msgText = '';
  /**
   * The turn's last main-thread text. The CLI's result carries only the final message's text,
   * which is empty when the model wrote its answer, ran one more tool and ended without words:
   * the answer is then this (as Codex and OpenCode answer with their turn's last text).
   */
  private turnText = '';
  private stopReason: string | null = null;

  get initialized(): boolean {
    return this.sawInit;
  }

  map(m: SDKMessage): Mapped {
    switch (m.type) {
      case 'system':
        return this.system(m);
      case 'stream_event': {
        if (m.parent_tool_use_id) return alive;
        const e = m.event;
        switch (e.type) {
          case 'message_start':
            this.msgText = '';
            this.stopReason = null;
            return alive;
          case 'content_block_delta':
            // A compaction's summary is neither streamed nor kept as the turn's text.
            if (e.delta.type !== 'text_delta' || this.compacting) return alive;
            this.msgText += e.delta.text;
            return { events: [{ type: 'delta', text: e.delta.text }], fatal: false };
          case 'message_delta': {
            // The stop reason comes after the last content block: the text is complete here,
            // one event before message_stop.
            this.stopReason = e.delta.stop_reason;
            const text = this.msgText;
            if (text.trim() !== '') this.turnText = text;
            const final =
              this.stopReason === 'end_turn' && text.trim() !== '' && !this.compacting && !this.compacted;
            this.msgText = '';
            return final ? { events: [{ type: 'reply', text }], fatal: false } : alive;
          }
          case 'message_stop':
            this.msgText = '';
            this.stopReason = null;
            return alive;
          default:
            return alive;
        }
      }
      case 'assistant': {
        if (m.error) this.lastError = m.error;
        const tools = m.message.content.filter((b) => b.type === 'tool_use');
        const events: ProviderEvent[] = [{ type: 'activity' }];
        for (const t of tools) events.push({ type: 'progress', message: `tool: ${t.name}` });
        return { events, fatal: false };
      }
      case 'user':
        return alive;
      case 'rate_limit_event':
        if (m.rate_limit_info.status === 'rejected' && !servedByOverage(m.rate_limit_info))
          return {
            events: [
              {
                type: 'error',
                message: 'the model rate limit was reached',
                retryable: true,
                classification: 'quota',
              },
            ],
            fatal: true,
          };
        return alive;
      case 'result':
        return this.result(m);
      default:
        return alive;
    }
  }

  private system(m: Extract<SDKMessage, { type: 'system' }>): Mapped {
    switch (m.subtype) {
      case 'init':
        if (this.sawInit) return alive;
        this.sawInit = true;
        return { events: [{ type: 'init', continuation: m.session_id }], fatal: false };
      case 'status':
        if (m.status === 'compacting') {
          this.compacting = true;
          return { events: [{ type: 'progress', message: 'compacting the conversation' }], fatal: false };
        }
        // A failed compaction sends no boundary: what follows is the turn's answer again.
        if (m.compact_result === 'failed' && this.compacting) {
          this.compacting = false;
          return {
            events: [{ type: 'progress', message: 'compacting the conversation failed' }],
            fatal: false,
          };
        }
        return alive;
      case 'compact_boundary':
        // An automatic compaction happens inside a turn that goes on: what the model says
        // after it is the answer. A requested one (/compact) is the whole turn.
        this.compacting = false;
        if (m.compact_metadata?.trigger !== 'auto') this.compacted = true;
        return { events: [{ type: 'progress', message: 'conversation compacted' }], fatal: false };
      case 'api_retry': {
        const c = errorKind(m.error) ?? { retryable: true };
        const status = m.error_status ?? 'no response';
        const message =
          c.classification === 'auth'
            ? `the model API rejected the credential (${status}: ${m.error}); check the group's vault entry (polyclaw secrets test NAME)`
            : `the model API failed (${status}: ${m.error})`;
        return {
          events: [
            {
              type: 'error',
              message,
              retryable: c.retryable,
              ...(c.classification ? { classification: c.classification } : {}),
            },
          ],
          fatal: true,
        };
      }
      default:
        return alive;
    }
  }

  private result(m: Extract<SDKMessage, { type: 'result' }>): Mapped {
    // Still compacting at the result (no boundary came): the turn was the compaction.
    const compacted = this.compacted || this.compacting;
    this.compacted = false;
    this.compacting = false;
    const lastError = this.lastError;
    this.lastError = null;
    const turnText = this.turnText;
    this.turnText = '';
    if (m.subtype === 'success' && !m.is_error) {
      const text = compacted ? null : m.result.trim() !== '' ? m.result : turnText;
      return { events: [{ type: 'result', text }], fatal: false };
    }
    const detail = m.subtype === 'success' ? m.result : (m.errors ?? []).join('; ') || m.subtype;
    if (!this.sawInit && NO_SESSION.test(detail)) throw new ClaudeSessionInvalid(detail);
    const c = errorKind(lastError) ?? { retryable: m.subtype !== 'error_max_turns' };
    return {
      events: [
        {
          type: 'error',
          message: `Claude: ${detail}`.slice(0, 500),
          retryable: c.retryable,
          ...(c.classification ? { classification: c.classification } : {}),
        },
      ],
      fatal: false,
    };
  }
}

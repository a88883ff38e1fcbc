/**
 * One prompt of one OpenCode session, from promptAsync to its `result` or `error`.
 * Invariants:
 *  - the listener is attached before the prompt is sent (the runtime's stream is already
 *    connected), so no event of this turn is lost;
 *  - exactly one final event (`result` or `error`) per call, unless aborted (then none);
 *  - the idle timer restarts on every event of the session (or of its subagents) and on every
 *    byte the model endpoint streams through the tap; when it fires the turn fails with a
 *    `timeout` error and the caller resets the server. It does not run while a permission
 *    request waits for a person: that wait is bounded by the runner's approval timeout;
 *  - a server that can no longer be heard ends the turn at once with a retryable `crash` error
 *    (the caller then resets it): it exited, or its event stream closed (before the prompt is
 *    sent, checked with runtime.usable(); during the turn, by the runtime's synthetic events),
 *    instead of waiting out the idle timer while OpenCode's answer goes unheard;
 *  - permission requests (the session's and its subagents') are never left pending: under
 *    'ask' each becomes an `approval` event answered through `approvals` (answerApproval), and
 *    whatever still waits when the turn ends for any reason (done, abort, timeout, crash, the
 *    consumer leaving) is rejected; under the other policies OpenCode's rules decide without
 *    asking, and a request that comes anyway is answered at once (bypass: once; deny: reject).
 */
import type { OpencodeClient } from '@opencode-ai/sdk/v2/client';
import type { ApprovalPolicy } from '../../shared/messages.js';
import type { ProviderEvent } from '../../shared/provider.js';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import type { OpencodeApprovals } from './opencode-approvals.js';
import { PROVIDER_ID } from './opencode-config.js';
import {
  retriesExhausted,
  TurnTracker,
  type OcEvent,
  type PermissionAsk,
  type TurnStep,
} from './opencode-events.js';
import { SERVER_EXIT, STREAM_CLOSED, type OpencodeRuntime } from './opencode-runtime.js';

export type TurnOutcome = 'done' | 'aborted' | 'timeout' | 'crashed';

export interface TurnDeps {
  runtime: OpencodeRuntime;
  client: OpencodeClient;
  sessionID: string;
  model: string;
  directory: string;
  idleTimeoutMs: number;
  maxRetries: number;
  approval: ApprovalPolicy;
  /** The query's requests waiting for a person (the 'ask' policy). */
  approvals: OpencodeApprovals;
  /** True while one of our tools waits for a person: not idleness (ProviderContext). */
  personWaiting?: () => boolean;
  signal: AbortSignal;
  log: Logger;
  setTimer?: (fn: () => void, ms: number) => { clear(): void };
}

type Item = TurnStep | { kind: 'timeout' } | { kind: 'exit' } | { kind: 'closed' } | { kind: 'abort' };

const streamClosed: ProviderEvent = {
  type: 'error',
  message: 'the OpenCode event stream closed, so the turn could not be followed',
  retryable: true,
  classification: 'crash',
};

const defaultTimer = (fn: () => void, ms: number) => {
  const t = setTimeout(fn, ms);
  return { clear: () => clearTimeout(t) };
};

export async function* runTurn(d: TurnDeps, text: string): AsyncGenerator<ProviderEvent, TurnOutcome> {
  if (d.signal.aborted) return 'aborted';
  const tracker = new TurnTracker(d.sessionID, d.maxRetries);
  const items: Item[] = [];
  let wake: (() => void) | null = null;
  const push = (it: Item) => {
    items.push(it);
    wake?.();
    wake = null;
  };
  const setTimer = d.setTimer ?? defaultTimer;
  const idle = { clear: () => undefined };
  let timer: { clear(): void } = idle;
  /** (Re)start the idle timer, unless a person is being asked. */
  const bump = () => {
    timer.clear();
    timer = d.approvals.size ? idle : setTimer(() => push({ kind: 'timeout' }), d.idleTimeoutMs);
  };
  bump();
  const onEvent = (ev: OcEvent) => {
    if (ev.type === SERVER_EXIT) return push({ kind: 'exit' });
    if (ev.type === STREAM_CLOSED) return push({ kind: 'closed' });
    const steps = tracker.feed(ev);
    if (tracker.ofTurn(ev.properties?.sessionID)) bump();
    for (const s of steps) push(s);
  };
  const onAbort = () => push({ kind: 'abort' });
  const offEvents = d.runtime.listen(onEvent);
  const offActivity = d.runtime.onModelActivity(bump);
  const offHeld = d.approvals.onChange(bump);
  d.signal.addEventListener('abort', onAbort);
  try {
    // Its stream closed while no turn listened (between the caller's ensure() and now).
    if (!d.runtime.usable(d.client)) {
      yield streamClosed;
      return 'crashed';
    }
    const sent = await d.client.session.promptAsync({
      sessionID: d.sessionID,
      directory: d.directory,
      model: { providerID: PROVIDER_ID, modelID: d.model },
      parts: [{ type: 'text', text }],
    });
    if (sent.error) {
      yield {
        type: 'error',
        message: `OpenCode refused the prompt: ${JSON.stringify(sent.error).slice(0, 300)}`,
        retryable: true,
        classification: 'crash',
      };
      return 'done';
    }
    for (;;) {
      const it = items.shift();
      if (!it) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      switch (it.kind) {
        case 'event':
          yield it.event;
          break;
        case 'permission':
          if (d.approval === 'ask') {
            d.approvals.hold(it.request.id, {
              client: d.client,
              directory: d.directory,
              permission: it.request.permission,
            });
            const { id, permission: tool, summary } = it.request;
            yield { type: 'approval', request: { id, tool, summary } };
          } else await answerByPolicy(d, it.request);
          break;
        case 'permission-replied':
          d.approvals.replied(it.requestID);
          break;
        case 'retry-exhausted':
          await abortSession(d);
          yield retriesExhausted(it.message, d.maxRetries);
          return 'done';
        case 'done':
          yield it.event;
          return 'done';
        case 'timeout':
          // A timer that fired just before a request arrived: the wait for a person is not idleness.
          if (d.approvals.size) break;
          // Nor is a question of ours (ask_user_question) waiting for its answer: wait on.
          if (d.personWaiting?.()) {
            bump();
            break;
          }
          await abortSession(d);
          yield {
            type: 'error',
            message: `OpenCode went quiet: no event and no model output for ${Math.round(d.idleTimeoutMs / 1000)} s, so the turn was stopped (raise OPENCODE_IDLE_TIMEOUT_MS or idleTimeoutMs in .polyclaw-opencode.json for slow models)`,
            retryable: false,
            classification: 'timeout',
          };
          return 'timeout';
        case 'exit':
          yield {
            type: 'error',
            message: 'the OpenCode server exited during the turn',
            retryable: true,
            classification: 'crash',
          };
          return 'crashed';
        case 'closed':
          yield streamClosed;
          return 'crashed';
        case 'abort':
          await abortSession(d);
          return 'aborted';
      }
    }
  } finally {
    offHeld();
    timer.clear();
    offEvents();
    offActivity();
    d.signal.removeEventListener('abort', onAbort);
    // Last, after the session's abort (if any). A bare reject also makes OpenCode end its loop.
    await d.approvals.rejectAll();
  }
}

/** A request under a policy that does not ask (OpenCode's rules should have decided it). */
async function answerByPolicy(d: TurnDeps, req: PermissionAsk): Promise<void> {
  const allow = d.approval === 'bypass';
  d.log.info('answering an OpenCode permission request', { permission: req.permission, allow });
  try {
    const r = await d.client.permission.reply({
      requestID: req.id,
      directory: d.directory,
      reply: allow ? 'once' : 'reject',
      ...(allow ? {} : { message: "The group's approval policy refuses tool calls that need permission." }),
    });
    if (r.error) d.log.warn('permission reply refused', { err: JSON.stringify(r.error).slice(0, 300) });
  } catch (err) {
    d.log.debug('permission reply failed', { err: errorMessage(err) });
  }
}

async function abortSession(d: TurnDeps): Promise<void> {
  try {
    const r = await d.client.session.abort({ sessionID: d.sessionID, directory: d.directory });
    if (r.error) d.log.warn('session abort refused', { err: JSON.stringify(r.error).slice(0, 300) });
  } catch (err) {
    // The server may already be gone (crash, reset): nothing left to abort.
    d.log.debug('session abort failed', { err: errorMessage(err) });
  }
}

/**
 * One prompt of one OpenCode session, from promptAsync to its `result` or `error`.
 * Invariants:
 *  - the listener is attached before the prompt is sent (the runtime's stream is already
 *    connected), so no event of this turn is lost;
 *  - exactly one final event (`result` or `error`) per call, unless aborted (then none);
 *  - the idle timer restarts on every event of the session and on every byte the model endpoint
 *    streams through the tap; when it fires the turn fails with a `timeout` error and the caller
 *    resets the server;
 *  - permission requests are answered at once per the approval policy, never left pending.
 */
import type { OpencodeClient } from '@opencode-ai/sdk/v2/client';
import type { ProviderEvent } from '../../shared/provider.js';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { PROVIDER_ID } from './opencode-config.js';
import { TurnTracker, type OcEvent, type TurnStep } from './opencode-events.js';
import { SERVER_EXIT, type OpencodeRuntime } from './opencode-runtime.js';

export type TurnOutcome = 'done' | 'aborted' | 'timeout' | 'crashed';

export interface TurnDeps {
  runtime: OpencodeRuntime;
  client: OpencodeClient;
  sessionID: string;
  model: string;
  directory: string;
  idleTimeoutMs: number;
  maxRetries: number;
  approval: 'allow' | 'deny';
  signal: AbortSignal;
  log: Logger;
  setTimer?: (fn: () => void, ms: number) => { clear(): void };
}

type Item = TurnStep | { kind: 'timeout' } | { kind: 'exit' } | { kind: 'abort' };

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
  let timer = setTimer(() => push({ kind: 'timeout' }), d.idleTimeoutMs);
  const bump = () => {
    timer.clear();
    timer = setTimer(() => push({ kind: 'timeout' }), d.idleTimeoutMs);
  };
  const onEvent = (ev: OcEvent) => {
    if (ev.type === SERVER_EXIT) return push({ kind: 'exit' });
    const steps = tracker.feed(ev);
    if (ev.properties?.sessionID === d.sessionID) bump();
    for (const s of steps) push(s);
  };
  const onAbort = () => push({ kind: 'abort' });
  const offEvents = d.runtime.listen(onEvent);
  const offActivity = d.runtime.onModelActivity(bump);
  d.signal.addEventListener('abort', onAbort);
  try {
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
          await answerPermission(d, it.requestID, it.permission);
          break;
        case 'retry-exhausted':
          await abortSession(d);
          yield {
            type: 'error',
            message: `the model endpoint kept failing (${d.maxRetries} retries): ${it.message}`,
            retryable: true,
          };
          return 'done';
        case 'done':
          yield it.event;
          return 'done';
        case 'timeout':
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
        case 'abort':
          await abortSession(d);
          return 'aborted';
      }
    }
  } finally {
    timer.clear();
    offEvents();
    offActivity();
    d.signal.removeEventListener('abort', onAbort);
  }
}

async function answerPermission(d: TurnDeps, requestID: string, permission: string): Promise<void> {
  const reply = d.approval === 'allow' ? 'once' : 'reject';
  d.log.info('answering an OpenCode permission request', { permission, reply });
  const r = await d.client.permission.reply({ requestID, directory: d.directory, reply });
  if (r.error) d.log.warn('permission reply refused', { err: JSON.stringify(r.error).slice(0, 300) });
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

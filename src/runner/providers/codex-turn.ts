/**
 * One codex turn's state, and what each app-server notification does to it.
 * Invariants:
 *  - a turn finishes once (the first finish() wins) and clears the conversation's active marker
 *    in the same synchronous step, so a follow-up racing turn/completed starts a new turn;
 *  - the turn id is learned from turn/start's reply or turn/started, whichever comes first;
 *    idKnown resolves with it (or null once the turn is over without one);
 *  - notifications of another turn (a late one of the previous turn) change nothing here, also
 *    while this turn's id is unknown: the id of a turn that is over is never taken as its own
 *    (after a timeout codex sends the old turn's turn/completed before the new turn/start reply).
 */
import type { ProviderEvent } from '../../shared/provider.js';
import {
  DeltaNotification,
  ErrorNotification,
  ItemNotification,
  progressFor,
  TurnNotification,
  type Item,
} from './codex-events.js';

export type TurnEnd =
  | { kind: 'completed' | 'interrupted' }
  | { kind: 'failed'; message: string; info?: unknown }
  | { kind: 'closed'; message: string }
  | { kind: 'timeout' }
  | { kind: 'aborted' };

export interface ActiveTurn {
  id: string | null;
  /** Prompts this turn answers: the one it started with, then those steered into it. */
  prompts: string[];
  lastText: string | null;
  files: string[];
  error: { message: string; info?: unknown } | null;
  finished: boolean;
  finish(end: TurnEnd): void;
  idKnown: Promise<string | null>;
  setId(id: string | null): void;
  done: Promise<TurnEnd>;
  /** Stop (true) or restart (false) the turn timer: it does not run while a person is asked. */
  holdTimer?(held: boolean): void;
  /** The turn made progress (a notification of codex's): its idle timer starts again. */
  activity?(): void;
}

/** A new turn; `onFinish` runs synchronously inside the first finish(). */
export function createTurn(prompt: string, onFinish: (turn: ActiveTurn) => void): ActiveTurn {
  let resolveDone!: (e: TurnEnd) => void;
  let resolveId!: (id: string | null) => void;
  const turn: ActiveTurn = {
    id: null,
    prompts: [prompt],
    lastText: null,
    files: [],
    error: null,
    finished: false,
    idKnown: new Promise<string | null>((r) => (resolveId = r)),
    done: new Promise<TurnEnd>((r) => (resolveDone = r)),
    setId: (id) => {
      if (turn.id === null && id !== null) turn.id = id;
      resolveId(turn.id);
    },
    finish: (e) => {
      if (turn.finished) return;
      turn.finished = true;
      onFinish(turn);
      turn.setId(null);
      resolveDone(e);
    },
  };
  return turn;
}

export interface NotificationSink {
  emit(ev: ProviderEvent): void;
  /** A fileChange item started (what it changes) or completed. */
  noteItem(item: Item, started: boolean): void;
  /** Ids of the conversation's turns that are over. */
  overTurns: ReadonlySet<string>;
}

/** Apply one notification to the active turn (if any) and emit what the user should see. */
export function applyNotification(
  t: ActiveTurn | null,
  method: string,
  params: unknown,
  out: NotificationSink,
): void {
  const ofTurn = (turn: ActiveTurn, turnId: string) =>
    turn.id === turnId || (turn.id === null && !out.overTurns.has(turnId));
  switch (method) {
    case 'item/agentMessage/delta': {
      const p = DeltaNotification.safeParse(params);
      if (p.success && t && ofTurn(t, p.data.turnId)) out.emit({ type: 'delta', text: p.data.delta });
      return;
    }
    case 'turn/started': {
      const p = TurnNotification.safeParse(params);
      if (p.success && t && t.id === null && ofTurn(t, p.data.turn.id)) t.setId(p.data.turn.id);
      break;
    }
    case 'item/started': {
      const p = ItemNotification.safeParse(params);
      const msg = p.success ? progressFor(p.data.item) : null;
      if (msg) out.emit({ type: 'progress', message: msg });
      if (p.success) out.noteItem(p.data.item, true);
      break;
    }
    case 'item/completed': {
      const p = ItemNotification.safeParse(params);
      if (p.success) out.noteItem(p.data.item, false);
      if (!p.success || !t || !ofTurn(t, p.data.turnId)) break;
      const item = p.data.item;
      if (item.type === 'agentMessage' && item.text) t.lastText = item.text;
      if (item.type === 'imageGeneration' && item.savedPath) t.files.push(item.savedPath);
      break;
    }
    case 'error': {
      const p = ErrorNotification.safeParse(params);
      if (p.success && !p.data.willRetry && t)
        t.error = { message: p.data.error.message, info: p.data.error.codexErrorInfo };
      break;
    }
    case 'thread/status/changed': {
      const type = (params as { status?: { type?: unknown } } | null)?.status?.type;
      if (typeof type === 'string') out.emit({ type: 'progress', message: `codex: ${type}` });
      return;
    }
    case 'turn/completed': {
      const p = TurnNotification.safeParse(params);
      if (!p.success || !t || !ofTurn(t, p.data.turn.id)) break;
      const status = p.data.turn.status;
      const err = p.data.turn.error;
      if (err) t.error = { message: err.message, info: err.codexErrorInfo };
      if (status === 'completed') t.finish({ kind: 'completed' });
      else if (status === 'interrupted') t.finish({ kind: 'interrupted' });
      else t.finish({ kind: 'failed', message: t.error?.message ?? `codex turn ended: ${status}` });
      break;
    }
    default:
      break;
  }
  out.emit({ type: 'activity' });
}

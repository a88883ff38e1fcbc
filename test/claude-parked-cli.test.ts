/**
 * A parked (kept warm) Claude CLI that starts a turn of its own is never reused: its output
 * would be taken for the answer to the next message. The real Claude Code cannot be made to
 * do that here (Polyclaw turns its background tasks off), so the SDK's query() is replaced by a
 * scripted one at the provider's injection point; everything else is the real provider.
 */
import type { Query, SDKMessage, SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClaudeProvider } from '../src/runner/providers/claude.js';
import type { ProviderEvent } from '../src/shared/provider.js';

const SESSION = '11111111-2222-3333-4444-555555555555';
const base = { uuid: 'u', session_id: SESSION, parent_tool_use_id: null };

/** The messages of one answered turn, as the CLI streams them. */
function turn(text: string): SDKMessage[] {
  const ev = (event: object) => ({ ...base, type: 'stream_event', event }) as unknown as SDKMessage;
  return [
    { ...base, type: 'system', subtype: 'init' } as unknown as SDKMessage,
    ev({ type: 'message_start', message: {} }),
    ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
    ev({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: {} }),
    ev({ type: 'message_stop' }),
    { ...base, type: 'result', subtype: 'success', is_error: false, result: text } as unknown as SDKMessage,
  ];
}

/** A scripted CLI: answers each prompt with "echo: <prompt>"; `speak()` makes it start a turn unasked. */
function scriptedCli() {
  const queue: SDKMessage[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  const emit = (ms: SDKMessage[]) => {
    queue.push(...ms);
    wake?.();
  };
  const start = (prompt: AsyncIterable<SDKUserMessage>): Query => {
    void (async () => {
      for await (const m of prompt) emit(turn(`echo: ${String(m.message.content)}`));
    })();
    const it = (async function* () {
      for (;;) {
        if (queue.length) yield queue.shift()!;
        else if (closed) return;
        else await new Promise<void>((r) => (wake = r));
      }
    })();
    return Object.assign(it, {
      close: () => {
        closed = true;
        wake?.();
      },
    }) as unknown as Query;
  };
  return {
    start,
    speak: (text: string) => emit(turn(text).slice(1)),
    /** A message of no turn (a status update), as the CLI sends now and then. */
    status: () =>
      emit([{ ...base, type: 'system', subtype: 'status', status: null } as unknown as SDKMessage]),
    /** The CLI process ends (its stream is done). */
    exit: () => {
      closed = true;
      wake?.();
    },
  };
}

async function answer(p: ClaudeProvider, text: string, continuation?: string): Promise<ProviderEvent[]> {
  const q = p.query({ prompt: text, cwd: '/tmp', systemContext: 'ctx', continuation });
  const out: ProviderEvent[] = [];
  for await (const e of q.events) {
    out.push(e);
    if (e.type === 'result' || e.type === 'error') q.end();
  }
  return out;
}

describe('claude provider: a parked CLI', () => {
  const ctx = {
    sessionDir: path.join('/tmp', 'session'),
    agentDir: path.join('/tmp', 'agent'),
    env: { POLYCLAW_GATEWAY_URL: 'http://127.0.0.1:1', POLYCLAW_GATEWAY_TOKEN: 'pcgw_test' },
  };

  it('that stays silent takes the next batch; one that speaks on its own is replaced', async () => {
    const clis: Array<ReturnType<typeof scriptedCli>> = [];
    const p = new ClaudeProvider(ctx, {
      keepWarmMs: 60_000,
      query: (params) => {
        const c = scriptedCli();
        clis.push(c);
        return c.start(params.prompt);
      },
    });
    try {
      const results = (evs: ProviderEvent[]) => evs.filter((e) => e.type === 'result');
      expect(results(await answer(p, 'one'))).toEqual([{ type: 'result', text: 'echo: one' }]);
      expect(results(await answer(p, 'two', SESSION))).toEqual([{ type: 'result', text: 'echo: two' }]);
      expect(clis).toHaveLength(1); // the warm CLI took the second batch

      clis[0]!.speak('a turn nobody asked for');
      await new Promise((r) => setTimeout(r, 20));
      expect(results(await answer(p, 'three', SESSION))).toEqual([{ type: 'result', text: 'echo: three' }]);
      expect(clis).toHaveLength(2); // a new CLI (resuming the session) answered

      // A status message while parked, then the CLI exits: still noticed, not reused.
      clis[1]!.status();
      await new Promise((r) => setTimeout(r, 20));
      clis[1]!.exit();
      await new Promise((r) => setTimeout(r, 20));
      expect(results(await answer(p, 'four', SESSION))).toEqual([{ type: 'result', text: 'echo: four' }]);
      expect(clis).toHaveLength(3);
    } finally {
      p.close();
    }
  });
});

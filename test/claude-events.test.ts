/** The Claude SDK message → provider event mapping, on SDK messages shaped as the CLI sends them. */
import type { SDKMessage } from '@anthropic-ai/claude-agent-sdk';
import { describe, expect, it } from 'vitest';
import { ClaudeEventMapper } from '../src/runner/providers/claude-events.js';
import type { ProviderEvent } from '../src/shared/provider.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const ev = (event: any, parent: string | null = null) =>
  ({
    type: 'stream_event',
    event,
    parent_tool_use_id: parent,
    uuid: 'u',
    session_id: 's',
  }) as unknown as SDKMessage;
const start = () => ev({ type: 'message_start', message: {} });
const text = (t: string) =>
  ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } });
const stopReason = (r: string) =>
  ev({ type: 'message_delta', delta: { stop_reason: r, stop_sequence: null }, usage: {} });
const stop = () => ev({ type: 'message_stop' });
const compacting = { type: 'system', subtype: 'status', status: 'compacting' } as unknown as SDKMessage;

function run(messages: SDKMessage[]): ProviderEvent[] {
  const m = new ClaudeEventMapper();
  return messages.flatMap((x) => m.map(x).events).filter((e) => e.type !== 'activity');
}

describe('claude event mapping: the early reply', () => {
  it('a main-thread message that ends its turn goes out as a reply, with its whole text', () => {
    expect(run([start(), text('Hello, '), text('world'), stopReason('end_turn'), stop()])).toEqual([
      { type: 'delta', text: 'Hello, ' },
      { type: 'delta', text: 'world' },
      { type: 'reply', text: 'Hello, world' },
    ]);
  });

  it('the reply goes out with the stop reason, before message_stop arrives', () => {
    const m = new ClaudeEventMapper();
    for (const x of [start(), text('Hi')]) m.map(x);
    expect(m.map(stopReason('end_turn')).events).toEqual([{ type: 'reply', text: 'Hi' }]);
    expect(m.map(stop()).events).toEqual([{ type: 'activity' }]);
  });

  it('no reply for a message that calls a tool, an empty one, a subagent’s, or during compaction', () => {
    const none = (ms: SDKMessage[]) => run(ms).filter((e) => e.type === 'reply');
    expect(none([start(), text('let me look'), stopReason('tool_use'), stop()])).toEqual([]);
    expect(none([start(), text('  '), stopReason('end_turn'), stop()])).toEqual([]);
    const sub = 'toolu_1';
    const subMsg = [
      ev({ type: 'message_start', message: {} }, sub),
      ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } }, sub),
      ev({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null } }, sub),
      ev({ type: 'message_stop' }, sub),
    ];
    expect(none(subMsg)).toEqual([]);
    expect(none([compacting, start(), text('summary'), stopReason('end_turn'), stop()])).toEqual([]);
  });

  it('after an automatic compaction inside a turn, the answer that follows is the reply and the result', () => {
    const boundary = (trigger: string) =>
      ({
        type: 'system',
        subtype: 'compact_boundary',
        compact_metadata: { trigger, pre_tokens: 180_000 },
      }) as unknown as SDKMessage;
    const result = (r: string) =>
      ({ type: 'result', subtype: 'success', is_error: false, result: r }) as unknown as SDKMessage;
    const m = new ClaudeEventMapper();
    const out = [
      start(),
      text("I'll check the logs."),
      stopReason('tool_use'),
      stop(),
      compacting,
      start(),
      text('summary of it all'),
      stopReason('end_turn'),
      stop(),
      boundary('auto'),
      start(),
      text('It restarted at 3am.'),
      stopReason('end_turn'),
      stop(),
      result('It restarted at 3am.'),
    ].flatMap((x) => m.map(x).events);
    expect(out.filter((e) => e.type === 'reply' || e.type === 'result')).toEqual([
      { type: 'reply', text: 'It restarted at 3am.' },
      { type: 'result', text: 'It restarted at 3am.' },
    ]);
    // A requested compaction is the whole turn: no reply, no result text, with or without a boundary.
    for (const tail of [[boundary('manual')], []]) {
      const manual = [
        compacting,
        start(),
        text('summary'),
        stopReason('end_turn'),
        stop(),
        ...tail,
        result('Compacted'),
      ];
      const evs = manual.flatMap((x) => m.map(x).events);
      expect(evs.filter((e) => e.type === 'reply' || e.type === 'result')).toEqual([
        { type: 'result', text: null },
      ]);
    }
  });

  const result = (r: string) =>
    ({ type: 'result', subtype: 'success', is_error: false, result: r }) as unknown as SDKMessage;

  it('a turn whose final message has no text answers with its last text', () => {
    const out = run([
      start(),
      text('The answer is 42.'),
      stopReason('tool_use'),
      stop(),
      start(),
      stopReason('end_turn'),
      stop(),
      result(''),
    ]);
    expect(out.filter((e) => e.type === 'reply' || e.type === 'result')).toEqual([
      { type: 'result', text: 'The answer is 42.' },
    ]);
    // The next turn starts afresh: its empty result does not repeat the last turn's text.
    const m = new ClaudeEventMapper();
    for (const x of [start(), text('one'), stopReason('end_turn'), stop(), result('one')]) m.map(x);
    expect(m.map(result('')).events).toEqual([{ type: 'result', text: '' }]);
  });

  it('a compaction’s summary is not streamed; after a failed compaction the answer is', () => {
    const summary = run([compacting, start(), text('summary'), stopReason('end_turn'), stop()]);
    expect(summary.filter((e) => e.type === 'delta')).toEqual([]);
    const failed = { type: 'system', subtype: 'status', status: null, compact_result: 'failed' };
    const out = run([
      compacting,
      failed as unknown as SDKMessage,
      start(),
      text('It restarted at 3am.'),
      stopReason('end_turn'),
      stop(),
      result('It restarted at 3am.'),
    ]);
    expect(out.filter((e) => e.type !== 'progress')).toEqual([
      { type: 'delta', text: 'It restarted at 3am.' },
      { type: 'reply', text: 'It restarted at 3am.' },
      { type: 'result', text: 'It restarted at 3am.' },
    ]);
  });

  it('each message starts its text afresh: only the final message’s text is the reply', () => {
    const out = run([
      start(),
      text('checking'),
      stopReason('tool_use'),
      stop(),
      start(),
      text('done'),
      stopReason('end_turn'),
      stop(),
    ]);
    expect(out.filter((e) => e.type === 'reply')).toEqual([{ type: 'reply', text: 'done' }]);
  });
});

describe('claude event mapping: errors', () => {
  const apiRetry = (error: string, status: number) =>
    ({
      type: 'system',
      subtype: 'api_retry',
      error,
      error_status: status,
      attempt: 1,
      max_retries: 10,
      retry_delay_ms: 500,
      uuid: 'u',
      session_id: 's',
    }) as unknown as SDKMessage;
  const errorOf = (ms: SDKMessage[]) => {
    const m = new ClaudeEventMapper();
    const out = ms.map((x) => m.map(x));
    return { event: out.flatMap((o) => o.events).find((e) => e.type === 'error'), fatal: out.at(-1)!.fatal };
  };

  it('a rejected credential is not retried: the user hears at once what to check', () => {
    const { event, fatal } = errorOf([apiRetry('authentication_failed', 401)]);
    expect(fatal).toBe(true);
    expect(event).toMatchObject({ retryable: false, classification: 'auth' });
    expect((event as { message: string }).message).toMatch(
      /rejected the credential \(401.*polyclaw secrets test/,
    );
  });

  it('limits, overload and server faults are retried; a rate limit is quota', () => {
    expect(errorOf([apiRetry('rate_limit', 429)]).event).toMatchObject({
      retryable: true,
      classification: 'quota',
    });
    expect(errorOf([apiRetry('overloaded', 529)]).event).toMatchObject({ retryable: true });
    expect(errorOf([apiRetry('server_error', 500)]).event).toMatchObject({ retryable: true });
    expect(errorOf([apiRetry('something_new', 500)]).event).toMatchObject({ retryable: true });
    expect(errorOf([apiRetry('constructor', 500)]).event).toMatchObject({ retryable: true });
  });

  it('a rejected rate limit stops the turn as quota, unless extra usage serves it', () => {
    const limit = (info: object) =>
      ({
        type: 'rate_limit_event',
        rate_limit_info: { status: 'rejected', ...info },
      }) as unknown as SDKMessage;
    expect(errorOf([limit({})])).toMatchObject({
      event: { retryable: true, classification: 'quota' },
      fatal: true,
    });
    for (const overage of [{ isUsingOverage: true }, { overageStatus: 'allowed' }])
      expect(errorOf([limit(overage)])).toEqual({ event: undefined, fatal: false });
  });

  it('a request the API refuses or an unknown model fails without retries', () => {
    const failed = (error: string) =>
      errorOf([
        {
          type: 'assistant',
          error,
          message: { content: [] },
          parent_tool_use_id: null,
        } as unknown as SDKMessage,
        {
          type: 'result',
          subtype: 'success',
          is_error: true,
          result: 'API Error: 400',
          uuid: 'u',
          session_id: 's',
        } as unknown as SDKMessage,
      ]).event;
    expect(failed('invalid_request')).toMatchObject({ retryable: false });
    expect(failed('model_not_found')).toMatchObject({ retryable: false });
    expect(failed('server_error')).toMatchObject({ retryable: true });
  });
});

describe('claude event mapping: liveness', () => {
  it('a subagent at work, a long tool or a background task keeps the turn alive (activity)', () => {
    const m = new ClaudeEventMapper();
    const kinds = (x: SDKMessage) => m.map(x).events.map((e) => e.type);
    const sub = 'toolu_sub';
    expect(kinds(ev({ type: 'message_start', message: {} }, sub))).toEqual(['activity']);
    expect(
      kinds(ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } }, sub)),
    ).toEqual(['activity']);
    const other = (o: object) => ({ uuid: 'u', session_id: 's', ...o }) as unknown as SDKMessage;
    expect(
      kinds(other({ type: 'tool_progress', tool_use_id: 't', tool_name: 'Bash', elapsed_time_seconds: 30 })),
    ).toEqual(['activity']);
    expect(kinds(other({ type: 'system', subtype: 'task_started', task_id: 't' }))).toEqual(['activity']);
  });
});

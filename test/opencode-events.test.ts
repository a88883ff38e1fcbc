/** The OpenCode event mapping on a real recorded stream (opencode 1.18.33: a text turn, then a bash turn). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  retriesExhausted,
  classifyError,
  summarizePermission,
  TurnTracker,
  type OcEvent,
} from '../src/runner/providers/opencode-events.js';

import { ROOT } from './support/cli.js';

/** The shared reference folder sits beside the repository (as in CI). */
const FILE = path.join(ROOT, '..', 'shared', 'reference', 'agent-clis', 'opencode-1.18.33-events.json');

describe.skipIf(!fs.existsSync(FILE))('opencode event mapping (recorded stream)', () => {
  it('maps deltas, tool progress, the final step to a reply and session.idle to one result per turn', () => {
    const events = JSON.parse(fs.readFileSync(FILE, 'utf8')) as OcEvent[];
    const sid = 'ses_defc1ba57ffetG3Pfgw7mfr14A';
    let t = new TurnTracker(sid, 3);
    const out: unknown[] = [];
    for (const ev of events)
      for (const s of t.feed(ev)) {
        if (s.kind === 'event' && s.event.type !== 'activity') out.push(s.event);
        if (s.kind === 'done') {
          out.push(s.event);
          t = new TurnTracker(sid, 3);
        }
      }
    expect(out).toEqual([
      { type: 'delta', text: 'Hello from ' },
      { type: 'delta', text: 'the fake ' },
      { type: 'delta', text: 'model!' },
      { type: 'reply', text: 'Hello from the fake model!' },
      { type: 'result', text: 'Hello from the fake model!' },
      { type: 'progress', message: 'tool: bash' },
      { type: 'delta', text: 'TOOL RESULT ' },
      { type: 'delta', text: 'SEEN: hello-from-tool\n' },
      { type: 'reply', text: 'TOOL RESULT SEEN: hello-from-tool\n' },
      { type: 'result', text: 'TOOL RESULT SEEN: hello-from-tool\n' },
    ]);
  });

  it('fails the turn after repeated retries and reports session errors with a classification', () => {
    const t = new TurnTracker('s', 2);
    const retry = (attempt: number) => ({
      type: 'session.status',
      properties: { sessionID: 's', status: { type: 'retry', attempt, message: 'HTTP 500' } },
    });
    const busy = { type: 'session.status', properties: { sessionID: 's', status: { type: 'busy' } } };
    // Calls that each came through after one retry: not a model endpoint that keeps failing.
    for (let i = 0; i < 3; i++) {
      expect(t.feed(busy)).toEqual([{ kind: 'event', event: { type: 'activity' } }]);
      expect(t.feed(retry(1))[0]).toMatchObject({ kind: 'event', event: { type: 'progress' } });
    }
    expect(t.feed(retry(2))).toEqual([{ kind: 'retry-exhausted', message: 'HTTP 500' }]);
    expect(retriesExhausted('HTTP 500', 2)).toEqual({
      type: 'error',
      message: 'the model endpoint kept failing (2 retries): HTTP 500',
      retryable: true,
    });
    expect(retriesExhausted('Rate limit exceeded (429)', 2)).toMatchObject({
      retryable: true,
      classification: 'quota',
    });
    const u = new TurnTracker('s', 3);
    u.feed({
      type: 'session.error',
      properties: { sessionID: 's', error: { name: 'APIError', data: { message: 'no', statusCode: 401 } } },
    });
    expect(u.feed({ type: 'session.idle', properties: { sessionID: 's' } })).toEqual([
      {
        kind: 'done',
        event: {
          type: 'error',
          message: 'model endpoint refused the credentials: no',
          retryable: false,
          classification: 'auth',
        },
      },
    ]);
  });
});

describe('opencode permission events (shapes as opencode 1.18.33 emits them)', () => {
  const asked = (sessionID: string, extra: Record<string, unknown>): OcEvent => ({
    type: 'permission.asked',
    properties: { id: 'per_1', sessionID, always: [], ...extra },
  });

  it("maps the turn's requests, its subagents' too, and ignores other sessions'", () => {
    const t = new TurnTracker('s', 3);
    const bash = {
      permission: 'bash',
      patterns: ['echo hi > x.txt', 'cat x.txt'],
      metadata: { command: 'echo hi > x.txt && cat x.txt' },
      tool: { messageID: 'm', callID: 'c1' },
    };
    expect(t.feed(asked('s', bash))).toEqual([
      {
        kind: 'permission',
        request: { id: 'per_1', permission: 'bash', summary: 'echo hi > x.txt && cat x.txt' },
      },
    ]);
    expect(t.feed(asked('other', bash))).toEqual([]);
    // A subagent's session: created with the turn's session as parent (and its child in turn).
    t.feed({ type: 'session.created', properties: { sessionID: 'sub', info: { id: 'sub', parentID: 's' } } });
    t.feed({
      type: 'session.created',
      properties: { sessionID: 'sub2', info: { id: 'sub2', parentID: 'sub' } },
    });
    expect(t.ofTurn('sub2')).toBe(true);
    expect(t.ofTurn('other')).toBe(false);
    expect(t.feed(asked('sub2', bash))).toMatchObject([
      { kind: 'permission', request: { permission: 'bash' } },
    ]);
    // A subagent's other events are not the turn's answer.
    expect(
      t.feed({ type: 'session.idle', properties: { sessionID: 'sub' } }).filter((x) => x.kind === 'done'),
    ).toEqual([]);
    expect(
      t.feed({
        type: 'permission.replied',
        properties: { sessionID: 'sub', requestID: 'per_1', reply: 'once' },
      }),
    ).toEqual([{ kind: 'permission-replied', requestID: 'per_1' }]);
  });

  it('summarizes an MCP tool request (no metadata) from the tool call input', () => {
    const t = new TurnTracker('s', 3);
    t.feed({
      type: 'message.part.updated',
      properties: {
        sessionID: 's',
        part: {
          id: 'p',
          messageID: 'm',
          type: 'tool',
          tool: 'docs_search',
          callID: 'c9',
          state: { status: 'running', input: { q: 'polyclaw' } },
        },
      },
    });
    const steps = t.feed(
      asked('s', {
        permission: 'docs_search',
        patterns: ['*'],
        metadata: {},
        tool: { messageID: 'm', callID: 'c9' },
      }),
    );
    expect(steps).toEqual([
      {
        kind: 'permission',
        request: { id: 'per_1', permission: 'docs_search', summary: '{"q":"polyclaw"}' },
      },
    ]);
  });

  it('summarizes edits, fetches, loops and patterns, cut at 500 characters', () => {
    expect(
      summarizePermission({
        permission: 'edit',
        patterns: ['a.ts'],
        metadata: { filepath: '/g/a.ts', diff: 'x' },
      }),
    ).toBe('/g/a.ts');
    expect(summarizePermission({ permission: 'webfetch', metadata: { url: 'https://x.test/' } })).toBe(
      'https://x.test/',
    );
    expect(
      summarizePermission({
        permission: 'doom_loop',
        patterns: ['read'],
        metadata: { tool: 'read', input: { a: 1 } },
      }),
    ).toBe('read {"a":1}');
    expect(
      summarizePermission({ permission: 'external_directory', patterns: ['/etc/*'], metadata: {} }),
    ).toBe('/etc/*');
    expect(summarizePermission({ permission: 'x', patterns: ['*'], metadata: {} })).toBe('');
    const long = summarizePermission({ permission: 'bash', metadata: { command: 'y'.repeat(600) } });
    expect(long).toBe(`${'y'.repeat(500)}…`);
  });
});

describe('opencode compaction and errors (shapes as the SDK types describe them)', () => {
  const assistant = (id: string, extra: Record<string, unknown> = {}) => ({
    type: 'message.updated',
    properties: { sessionID: 's', info: { id, sessionID: 's', role: 'assistant', ...extra } },
  });
  const textPart = (id: string, messageID: string, text: string) => ({
    type: 'message.part.updated',
    properties: { sessionID: 's', part: { id, messageID, sessionID: 's', type: 'text', text } },
  });
  const delta = (partID: string, d: string) => ({
    type: 'message.part.delta',
    properties: { sessionID: 's', partID, field: 'text', delta: d },
  });
  const finish = (messageID: string) => ({
    type: 'message.part.updated',
    properties: {
      sessionID: 's',
      part: { id: `f-${messageID}`, messageID, type: 'step-finish', reason: 'stop' },
    },
  });
  const busy = { type: 'session.status', properties: { sessionID: 's', status: { type: 'busy' } } };
  const idle = { type: 'session.idle', properties: { sessionID: 's' } };
  const events = (t: TurnTracker, evs: OcEvent[]) =>
    evs.flatMap((e) => t.feed(e)).flatMap((s) => (s.kind === 'event' || s.kind === 'done' ? [s.event] : []));

  it("an automatic compaction's summary is neither streamed, nor a reply, nor the result", () => {
    for (const mark of [{ summary: true }, { mode: 'compaction', agent: 'compaction' }]) {
      const out = events(new TurnTracker('s', 3), [
        busy,
        assistant('m1'),
        textPart('p1', 'm1', ''),
        delta('p1', 'Let me look.'),
        assistant('m2', mark),
        textPart('p2', 'm2', ''),
        delta('p2', 'Summary of the conversation'),
        finish('m2'),
        assistant('m3'),
        textPart('p3', 'm3', ''),
        delta('p3', 'It restarted at 3am.'),
        finish('m3'),
        idle,
      ]).filter((e) => e.type !== 'activity');
      expect(out).toEqual([
        { type: 'delta', text: 'Let me look.' },
        { type: 'delta', text: 'It restarted at 3am.' },
        { type: 'reply', text: 'It restarted at 3am.' },
        { type: 'result', text: 'It restarted at 3am.' },
      ]);
    }
    // Marked only once its text came: its text is dropped, the answer is the text before it.
    const late = events(new TurnTracker('s', 3), [
      busy,
      assistant('m1'),
      textPart('p1', 'm1', 'Before.'),
      assistant('m2'),
      textPart('p2', 'm2', 'Summary'),
      assistant('m2', { summary: true }),
      idle,
    ]);
    expect(late.at(-1)).toEqual({ type: 'result', text: 'Before.' });
  });

  it('errors that fail the same way every time are not retried', () => {
    for (const name of ['ContextOverflowError', 'ContentFilterError', 'MessageOutputLengthError'])
      expect(classifyError({ name, data: { message: 'no' } }).retryable).toBe(false);
    expect(classifyError({ name: 'UnknownError', data: { message: 'hm' } }).retryable).toBe(true);
  });
});

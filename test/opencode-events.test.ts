/** The OpenCode event mapping on a real recorded stream (opencode 1.18.33: a text turn, then a bash turn). */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TurnTracker, type OcEvent } from '../src/runner/providers/opencode-events.js';

const FILE = '/work/shared/reference/agent-clis/opencode-1.18.33-events.json';

describe.skipIf(!fs.existsSync(FILE))('opencode event mapping (recorded stream)', () => {
  it('maps deltas, tool progress and session.idle to one result per turn', () => {
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
      { type: 'result', text: 'Hello from the fake model!' },
      { type: 'progress', message: 'tool: bash' },
      { type: 'delta', text: 'TOOL RESULT ' },
      { type: 'delta', text: 'SEEN: hello-from-tool\n' },
      { type: 'result', text: 'TOOL RESULT SEEN: hello-from-tool\n' },
    ]);
  });

  it('fails the turn after repeated retries and reports session errors with a classification', () => {
    const t = new TurnTracker('s', 2);
    const retry = {
      type: 'session.status',
      properties: { sessionID: 's', status: { type: 'retry', attempt: 1, message: 'HTTP 500' } },
    };
    expect(t.feed(retry)[0]).toMatchObject({ kind: 'event', event: { type: 'progress' } });
    expect(t.feed(retry)).toEqual([{ kind: 'retry-exhausted', message: 'HTTP 500' }]);
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

/**
 * Early start (src/shared/runner-hint.ts): the host tells a running runner of a chat message
 * before its commit; the runner starts on it while idle, never twice, and a failed commit
 * stops the runner. Real queue files, the real runner loop and the real mock provider.
 */
import { RunnerFixture } from './support/runner-fixture.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionQueue, type RunnerLine } from '../src/host/session-queue.js';
import { RunnerLoop } from '../src/runner/loop.js';
import { MockProvider } from '../src/runner/providers/mock.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { hintReader, MAX_HINT_BYTES, RunnerHintSchema, type RunnerHint } from '../src/shared/runner-hint.js';
import { INBOUND_FILE } from '../src/shared/session-db.js';
import { mock, sessionMeta, TERMINAL as routing } from './support/meta.js';
import { waitFor } from './support/cli.js';

let f: RunnerFixture;
let dir: string;
let host: SessionQueue;
let queue: RunnerQueue;

beforeEach(() => {
  f = new RunnerFixture('polyclaw-early-', sessionMeta({ defaultRouting: routing }));
  ({ dir, host, queue } = f);
});
afterEach(() => f.close());

function start(): RunnerLoop {
  queue.context(); // what the runner reads at start
  return f.start({
    provider: new MockProvider({ agentDir: dir, sessionDir: host.dir }),
    cwd: dir,
    safetyPollMs: 60_000,
  });
}

const content = (text: string) => ({ text, sender: { id: 'ann', name: 'Ann' }, attachments: [] });
const send = (
  text: string,
  over: { trigger?: boolean; processAfter?: number; kind?: 'chat' | 'task' } = {},
) =>
  host.enqueue({
    kind: over.kind ?? 'chat',
    trigger: over.trigger ?? true,
    routing,
    content: content(text),
    ...over,
  });
const replies = () => host.outboundSince(0).map((r) => r.content.text);

/** A line that records what it was told, and whether the row was already committed then. */
function recordingLine() {
  const told: Array<{ hint: RunnerHint; committedThen: boolean }> = [];
  let stopped = 0;
  const line: RunnerLine = {
    tell: (text) => {
      const hint = RunnerHintSchema.parse(JSON.parse(text)).hint;
      told.push({ hint, committedThen: host.get(hint.message.id) !== null });
      return true;
    },
    stop: () => void stopped++,
  };
  return { line, told, stopped: () => stopped };
}

/** The generation the host published last, read apart from the runner's cached context. */
function hostGen(): string {
  const db = new Database(path.join(host.dir, INBOUND_FILE), { readonly: true });
  try {
    return (db.prepare(`SELECT value FROM meta WHERE key = 'gen'`).get() as { value: string }).value;
  } finally {
    db.close();
  }
}

const hintFor = (id: string, text: string, gen: string): RunnerHint => ({
  gen,
  message: {
    id,
    seq: 1000,
    kind: 'chat',
    timestamp: Date.now(),
    tries: 0,
    trigger: true,
    processAfter: Date.now(),
    routing,
    content: content(text),
  },
});

describe('early start: the host side', () => {
  it('tells an attached runner of a chat message before committing it, with the current metadata generation', () => {
    const r = recordingLine();
    host.attachRunner(r.line);
    const m = send('hello');
    expect(r.told).toHaveLength(1);
    const { hint, committedThen } = r.told[0]!;
    expect(committedThen).toBe(false);
    expect(hint.message).toMatchObject({ id: m.id, seq: m.seq, tries: 0, content: { text: 'hello' } });
    expect(hint.gen).toBe(queue.context().gen);
    expect(host.get(m.id)?.status).toBe('pending');
  });

  it('tells nothing of what the normal path must carry, nor after detach', () => {
    const r = recordingLine();
    const detach = host.attachRunner(r.line);
    send('context only', { trigger: false });
    host.markDone(host.pending()[0]!.id, 'completed');
    send('/clear');
    host.markDone(host.pending()[0]!.id, 'completed');
    send('later', { processAfter: Date.now() + 60_000 });
    host.markDone(host.pending()[0]!.id, 'completed');
    send('a task', { kind: 'task' });
    host.markDone(host.pending()[0]!.id, 'completed');
    send('x'.repeat(MAX_HINT_BYTES));
    host.markDone(host.pending()[0]!.id, 'completed');
    expect(r.told).toHaveLength(0);
    // Another unsettled message: this one is not the whole batch.
    send('first');
    send('second');
    expect(r.told.map((t) => t.hint.message.content.text)).toEqual(['first']);
    for (const m of host.pending()) host.markDone(m.id, 'completed');
    detach();
    send('after detach');
    expect(r.told).toHaveLength(1);
  });

  it('a failed commit of a told message stops the runner, and the caller hears the error', () => {
    const r = recordingLine();
    host.attachRunner(r.line);
    const other = new Database(path.join(host.dir, INBOUND_FILE));
    other.exec(
      `CREATE TRIGGER refuse BEFORE INSERT ON messages_in BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;`,
    );
    expect(() => send('doomed')).toThrow(/disk trouble/);
    expect(r.told).toHaveLength(1);
    expect(r.stopped()).toBe(1);
    // A message nobody was told of fails alone.
    expect(() => send('quiet', { trigger: false })).toThrow(/disk trouble/);
    expect(r.stopped()).toBe(1);
    other.exec('DROP TRIGGER refuse');
    other.close();
    expect(host.pending()).toHaveLength(0);
  });
});

describe('early start: the runner side', () => {
  it('answers a hinted message without reading it from inbound.db, and never runs it twice', async () => {
    const l = start();
    const gen = queue.context().gen!;
    l.hint(hintFor('early-1', 'early', gen)); // not in inbound.db at all
    await waitFor(() => replies().includes('echo: early'), 5000, 'early reply');
    expect(host.outboundSince(0)[0]!.inReplyTo).toBe('early-1');
    await waitFor(() => host.acksFor(['early-1'])[0]?.status === 'completed', 5000, 'ack');
    // The same hint again (a late duplicate) is dropped: the message has an ack.
    l.hint(hintFor('early-1', 'early', gen));
    send('next');
    await waitFor(() => replies().includes('echo: next'), 5000, 'next reply');
    expect(replies()).toEqual(['echo: early', 'echo: next']);
  });

  it('drops a hint under stale metadata and one that arrives mid-turn; the committed path answers', async () => {
    const l = start();
    // The host publishes new metadata; the runner has not read it yet.
    host.setMeta(sessionMeta({ defaultRouting: routing, assistantName: 'Renamed' }), []);
    l.hint(hintFor('stale-1', 'stale', hostGen()));
    const slow = send(mock({ delayMs: 400, reply: 'slow done' }));
    await waitFor(() => host.acksFor([slow.id])[0]?.status === 'processing', 5000, 'turn started');
    l.hint(hintFor('busy-1', 'busy', hostGen()));
    await waitFor(() => replies().includes('slow done'), 5000, 'slow reply');
    send('next');
    await waitFor(() => replies().includes('echo: next'), 5000, 'next reply');
    expect(replies()).toEqual(['slow done', 'echo: next']);
    expect(host.acksFor(['stale-1', 'busy-1'])).toEqual([]);
  });

  it('through the real line: every message answered exactly once', async () => {
    const l = start();
    let taken = 0;
    const read = hintReader(
      (h) => {
        taken++;
        l.hint(h);
      },
      (why) => {
        throw new Error(why);
      },
    );
    host.attachRunner({ tell: (line) => (read(line), true), stop: () => undefined });
    for (const text of ['one', 'two', 'three']) {
      const m = send(text);
      await waitFor(() => host.acksFor([m.id])[0]?.status === 'completed', 5000, `${text} answered`);
      host.markDone(m.id, 'completed'); // the host's settlement
    }
    expect(taken).toBe(3);
    expect(replies()).toEqual(['echo: one', 'echo: two', 'echo: three']);
    expect(host.acksFor(host.outboundSince(0).map((r) => r.inReplyTo!)).map((a) => a.tryNo)).toEqual([
      0, 0, 0,
    ]);
  });
});

describe('the hint line reader', () => {
  it('passes valid hints on and reports anything else without stopping', () => {
    const got: string[] = [];
    const bad: string[] = [];
    const read = hintReader(
      (h) => got.push(h.message.id),
      (why) => bad.push(why),
    );
    const line = JSON.stringify({ hint: hintFor('a', 'x', 'g') }) + '\n';
    read(line.slice(0, 10));
    read(line.slice(10) + 'not json\n{"hint":{}}\n');
    read(JSON.stringify({ hint: hintFor('b', 'y', 'g') }) + '\n');
    expect(got).toEqual(['a', 'b']);
    expect(bad).toHaveLength(2);
    expect(bad[0]).toMatch(/not JSON/);
  });
});

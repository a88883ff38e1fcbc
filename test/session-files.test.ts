/** Session queue files: sequence numbering and attachment folders that refuse tricks. */
import fs from 'node:fs';
import path from 'node:path';
import { sessionMeta } from './support/meta.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { nextEven, nextOdd } from '../src/shared/messages.js';
import { writeAttachment } from '../src/shared/safe-files.js';
import { bellsDir } from '../src/shared/session-db.js';
import { tempHome } from './support/cli.js';

let dir: string;
beforeEach(() => (dir = tempHome('polyclaw-files-')));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const routing = { channelType: 'terminal', platformId: 'main', threadId: null };

describe('session queues', () => {
  it('number host messages even and sandbox messages odd', () => {
    expect([nextEven(null), nextEven(2), nextEven(7)]).toEqual([2, 4, 8]);
    expect([nextOdd(null), nextOdd(1), nextOdd(4)]).toEqual([1, 3, 5]);
    const host = new SessionQueue(dir);
    host.setMeta(sessionMeta({ assistantName: 'A' }), []);
    const a = host.enqueue({ kind: 'chat', trigger: true, routing, content: { text: 'a', attachments: [] } });
    const b = host.enqueue({ kind: 'chat', trigger: true, routing, content: { text: 'b', attachments: [] } });
    expect([a.seq, b.seq]).toEqual([2, 4]);
    const runner = new RunnerQueue(dir);
    const seqs = runner.commit(
      [
        { kind: 'message', inReplyTo: a.id, routing, content: { text: 'x' } },
        { kind: 'message', inReplyTo: b.id, routing, content: { text: 'y' } },
      ],
      [],
    );
    expect(seqs).toEqual([1, 3]);
    expect(host.outboundSince(0).map((r) => [r.seq, r.inReplyTo])).toEqual([
      [1, a.id],
      [3, b.id],
    ]);
    runner.close();
    host.close();
  });

  it('keep the inbound journal on disk so it can be mounted read-only beside the DB', () => {
    const host = new SessionQueue(dir);
    host.enqueue({ kind: 'chat', trigger: true, routing, content: { text: 'a', attachments: [] } });
    expect(fs.existsSync(path.join(dir, 'inbound.db-journal'))).toBe(true);
    host.close();
  });

  it('treat an outbound.db whose schema is not committed yet as empty, not as an error', async () => {
    const host = new SessionQueue(dir);
    const Database = (await import('better-sqlite3')).default;
    const half = new Database(path.join(dir, 'outbound.db'));
    half.pragma('journal_mode = WAL');
    expect(host.outboundSince(0)).toEqual([]);
    expect(host.acksFor(['x'])).toEqual([]);
    half.close();
    const runner = new RunnerQueue(dir);
    runner.commit([{ kind: 'message', inReplyTo: null, routing, content: { text: 'now ready' } }], []);
    expect(host.outboundSince(0).map((r) => r.content.text)).toEqual(['now ready']);
    runner.close();
    host.close();
  });

  it('ring the outbound bell only after a commit is readable by the host', async () => {
    const host = new SessionQueue(dir);
    const runner = new RunnerQueue(dir);
    const seen: number[] = [];
    const watcher = fs.watch(bellsDir(dir), (_e, name) => {
      if (name === 'outbound.bell') seen.push(host.outboundSince(0).length);
    });
    for (let i = 0; i < 20; i++) {
      runner.commit([{ kind: 'message', inReplyTo: null, routing, content: { text: `m${i}` } }], []);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 50));
    watcher.close();
    expect(seen.length).toBeGreaterThan(0);
    // A ring is never early: the first one already shows a row, and the last one shows them all.
    expect(seen[0]).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)).toBe(20);
    runner.close();
    host.close();
  });

  it('ring the inbound bell after the host commit, when a reader can see the row without waiting', async () => {
    const host = new SessionQueue(dir);
    host.setMeta(sessionMeta(), []);
    const runner = new RunnerQueue(dir);
    const seen: number[] = [];
    const watcher = fs.watch(bellsDir(dir), (_e, name) => {
      if (name === 'inbound.bell') seen.push(runner.pending().due.length);
    });
    for (let i = 0; i < 10; i++) {
      host.enqueue({ kind: 'chat', trigger: true, routing, content: { text: `m${i}`, attachments: [] } });
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 50));
    watcher.close();
    expect(seen[0]).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)).toBe(10);
    runner.close();
    host.close();
  });

  it('the bells directory hears the bells only, never the commits of either database', async () => {
    const host = new SessionQueue(dir);
    host.setMeta(sessionMeta(), []);
    const runner = new RunnerQueue(dir);
    const names: string[] = [];
    const watcher = fs.watch(bellsDir(dir), (_e, name) => names.push(String(name)));
    const { id } = host.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'a', attachments: [] },
    });
    runner.setTurn({ messageId: id, routing });
    runner.ack([{ id, tries: 0 }], 'processing');
    runner.commit([{ kind: 'message', inReplyTo: id, routing, content: { text: 'b' } }], [{ id, tries: 0 }]);
    host.markDone(id, 'completed');
    await new Promise((r) => setTimeout(r, 50));
    watcher.close();
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names)).toEqual(new Set(['inbound.bell', 'outbound.bell']));
    runner.close();
    host.close();
  });

  it('a turn starts with a fresh heartbeat: the beat before a long idle spell is not its silence', () => {
    const host = new SessionQueue(dir);
    host.setMeta(sessionMeta(), []);
    let now = 1_000_000;
    const runner = new RunnerQueue(dir, () => now);
    try {
      runner.heartbeat(true);
      now += 20 * 60_000; // idle for longer than the host's stuck-turn limit
      const m = host.enqueue({
        kind: 'chat',
        trigger: true,
        routing,
        content: { text: 'a', attachments: [] },
      });
      runner.ack([{ id: m.id, tries: 0 }], 'processing');
      expect(host.state('heartbeat')?.value).toBe(String(now));
    } finally {
      runner.close();
      host.close();
    }
  });

  it('mark a sandbox row that does not parse as invalid instead of delivering it', () => {
    const host = new SessionQueue(dir);
    const runner = new RunnerQueue(dir);
    runner.outbound
      .prepare(
        `INSERT INTO messages_out (id, seq, in_reply_to, kind, timestamp, routing, content) VALUES ('x', 1, NULL, 'message', 0, '{"nope":1}', 'not json')`,
      )
      .run();
    expect(host.outboundSince(0)[0]?.invalid).toMatch(/unparsable/);
    runner.close();
    host.close();
  });
});

describe('attachment folders', () => {
  const inbox = () => path.join(dir, 'inbox');

  it('write a plain file inside the folder', () => {
    const p = writeAttachment(inbox(), 'm1', 'photo.jpg', Buffer.from('jpeg'));
    expect(p).toBe(path.join(inbox(), 'm1', 'photo.jpg'));
    expect(fs.readFileSync(p, 'utf8')).toBe('jpeg');
  });

  it('refuse path traversal in folder or file name', () => {
    for (const [folder, name] of [
      ['m1', '../../etc/passwd'],
      ['..', 'x'],
      ['m1', '..'],
      ['a/b', 'x'],
      ['m1', 'sub/x'],
      ['m1', ''],
    ]) {
      expect(() => writeAttachment(inbox(), folder!, name!, 'x'), `${folder}/${name}`).toThrow(
        /plain file name|escapes/,
      );
    }
    expect(fs.existsSync(path.join(dir, 'etc'))).toBe(false);
  });

  it('refuse a symlinked folder or file', () => {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.mkdirSync(inbox(), { recursive: true });
    fs.symlinkSync(outside, path.join(inbox(), 'linked'));
    expect(() => writeAttachment(inbox(), 'linked', 'x.txt', 'x')).toThrow(/symlink/);
    fs.mkdirSync(path.join(inbox(), 'm2'));
    fs.symlinkSync(path.join(outside, 'target.txt'), path.join(inbox(), 'm2', 'x.txt'));
    expect(() => writeAttachment(inbox(), 'm2', 'x.txt', 'x')).toThrow(/symlink|exists/);
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('refuse to overwrite an existing file', () => {
    writeAttachment(inbox(), 'm1', 'a.txt', 'first');
    expect(() => writeAttachment(inbox(), 'm1', 'a.txt', 'second')).toThrow(/already exists/);
    expect(fs.readFileSync(path.join(inbox(), 'm1', 'a.txt'), 'utf8')).toBe('first');
  });
});

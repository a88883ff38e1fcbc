/**
 * `polyclaw chat` against a scripted host on the admin socket: what a person is shown, and
 * exit statuses that tell the truth when the host goes away or a message fails.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cliAsync, tempHome } from './support/cli.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Req = { id: number; op: string; args: Record<string, unknown> };
/** A host on `<home>/admin.sock` whose answers `script` writes, per request. */
async function fakeHost(script: (req: Req, c: net.Socket) => void): Promise<{ home: string; ops: string[] }> {
  const home = tempHome('polyclaw-chat-cli-');
  const ops: string[] = [];
  const server = net.createServer((c) => {
    c.on('error', () => {});
    let buf = '';
    c.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const req = JSON.parse(buf.slice(0, i)) as Req;
        buf = buf.slice(i + 1);
        ops.push(req.op);
        script(req, c);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path.join(home, 'admin.sock'), r));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { home, ops };
}
const line = (c: net.Socket, msg: unknown) => c.write(JSON.stringify(msg) + '\n');
const ok = (c: net.Socket, req: Req, result: unknown) => line(c, { id: req.id, ok: true, result });
const kept = {
  event: 'message',
  platformId: 'main',
  id: 't-1',
  key: 'S:1',
  seq: 1,
  text: '',
  files: ['/data/outbox/f/report\u001b]0;pwn\u0007.pdf'],
  replyTo: null,
  kind: 'message',
  backlog: true,
};

describe('polyclaw chat', () => {
  it('-m: a file kept for the chat is named (without escape sequences); the host going away exits 1', async () => {
    const { home } = await fakeHost((req, c) => {
      if (req.op === 'chat.attach') {
        ok(c, req, {});
        line(c, kept);
      } else if (req.op === 'chat.send') {
        ok(c, req, { accepted: [{ group: 'main', sessionId: 's', messageId: 'm', seq: 2, engaged: true }] });
        c.destroy(); // the host goes away before the answer
      }
    });
    const r = await cliAsync(home, ['chat', '-m', 'hi']);
    expect(r.stdout).toBe('(earlier) [files: /data/outbox/f/report.pdf]\n');
    expect(r.stderr).toContain('the host went away before the answer');
    expect(r.code).toBe(1);
  }, 20_000);

  it('piped input: a message that failed makes the exit status 1; a file is named', async () => {
    const { home, ops } = await fakeHost((req, c) => {
      if (req.op === 'chat.attach') {
        ok(c, req, {});
        line(c, kept);
      } else if (req.op === 'chat.send') {
        ok(c, req, { accepted: [{ group: 'main', sessionId: 's', messageId: 'm', seq: 2, engaged: true }] });
        line(c, {
          event: 'settled',
          platformId: 'main',
          messageId: req.args.platformMessageId,
          status: 'failed',
        });
      } else ok(c, req, {});
    });
    const r = await cliAsync(home, ['chat'], {}, 'hello\n');
    expect(r.stdout).toContain('main> (earlier) [files: /data/outbox/f/report.pdf]\n');
    expect(ops).toContain('chat.ack');
    expect(r.code).toBe(1);
  }, 20_000);

  it('piped input: a message the host refused makes the exit status 1, as with -m', async () => {
    const { home } = await fakeHost((req, c) => {
      if (req.op === 'chat.send')
        ok(c, req, {
          accepted: [{ group: 'main', sessionId: 's', messageId: '', seq: 0, engaged: false, refused: true }],
        });
      else ok(c, req, {});
    });
    const r = await cliAsync(home, ['chat'], {}, '/compact\n');
    expect(r.code).toBe(1);
  }, 20_000);

  it('-m confirms a backlog longer than the host takes in one request, in batches: nothing is shown twice', async () => {
    const acked: string[] = [];
    const { home } = await fakeHost((req, c) => {
      if (req.op === 'chat.attach') {
        ok(c, req, {});
        for (let i = 0; i < 10_001; i++) line(c, { ...kept, key: `S:${i}`, text: `old ${i}`, files: [] });
      } else if (req.op === 'chat.send') {
        ok(c, req, { accepted: [{ group: 'main', sessionId: 's', messageId: 'm', seq: 2, engaged: false }] });
      } else if (req.op === 'chat.ack') {
        const keys = req.args.keys as string[];
        // As the host does: at most 10,000 keys per request.
        if (keys.length > 10_000)
          line(c, { id: req.id, ok: false, error: { code: 'bad_request', message: 'too many' } });
        else {
          acked.push(...keys);
          ok(c, req, { acked: keys.length });
        }
      }
    });
    const r = await cliAsync(home, ['chat', '-m', 'hi']);
    expect(r.code).toBe(0);
    expect(new Set(acked).size).toBe(10_001);
  }, 30_000);
});

/**
 * What reaches a person's terminal: agent text without the escape sequences a terminal obeys,
 * edits shown (kept for a client that is away), and a reader that goes away mid-output.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TerminalChannel } from '../src/channels/terminal.js';
import { openCentralDb } from '../src/host/db/open.js';
import { sqliteMailbox } from '../src/host/store/mailbox.js';
import { forTerminal } from '../src/cli/terminal-text.js';
import { createLogger } from '../src/shared/log.js';
import { mock } from './support/meta.js';
import { cli, cliAsync, MAIN, startHostProc, tempHome, type HostProc } from './support/cli.js';

const HOSTILE = 'A\u001b]0;PWNED\u0007B\u001b[2J\u001b[31mRED\r\u001b[Kover\u009b1m\u0000!';

describe('text for a terminal', () => {
  it('drops escape sequences and control characters, keeps newlines, tabs and any script', () => {
    expect(forTerminal(HOSTILE)).toBe('ABREDover!');
    expect(forTerminal('\u001b]52;c;cGF5bG9hZA==\u001b\\copied?')).toBe('copied?');
    expect(forTerminal('a\tb\nc — 日本語 👍')).toBe('a\tb\nc — 日本語 👍');
  });

  it('an edit made while no client is attached is kept, once, and handed over as an edit', async () => {
    const db = openCentralDb(':memory:');
    try {
      const ch = new TerminalChannel({ log: createLogger({ level: 'error' }), mailbox: sqliteMailbox(db) });
      const target = { platformId: 'main', threadId: null };
      await ch.edit(target, 't-k1', 'the new text');
      await ch.edit(target, 't-k1', 'the new text'); // sent again after a crash
      const got: Array<Record<string, unknown>> = [];
      ch.attach('main', { send: (e) => void got.push(e) });
      expect(got).toMatchObject([
        { event: 'message', kind: 'edit', id: 't-k1', text: 'the new text', backlog: true },
      ]);
    } finally {
      db.close();
    }
  });
});

describe('terminal edits', () => {
  it('an edit back to an earlier text is shown last, to a client away and to one attached', async () => {
    const db = openCentralDb(':memory:');
    try {
      const ch = new TerminalChannel({ log: createLogger({ level: 'error' }), mailbox: sqliteMailbox(db) });
      const target = { platformId: 'main', threadId: null };
      const edits: Array<[string, string]> = [
        ['X', 's:1'],
        ['Y', 's:2'],
        ['X', 's:3'],
      ];
      for (const [text, key] of edits) await ch.edit(target, 't-k1', text, key);
      await ch.edit(target, 't-k1', 'X', 's:3'); // the last one sent again after a crash
      const got: Array<Record<string, unknown>> = [];
      ch.attach('main', { send: (e) => void got.push(e) });
      expect(got.map((e) => e.text)).toEqual(['X', 'Y', 'X']);
    } finally {
      db.close();
    }
  });
});

describe('terminal replies are kept until shown', () => {
  it('a reply written to a client that died before reading it is handed to the next one, until one has shown it', async () => {
    const db = openCentralDb(':memory:');
    try {
      const ch = new TerminalChannel({ log: createLogger({ level: 'error' }), mailbox: sqliteMailbox(db) });
      const events = () => {
        const got: Array<Record<string, unknown>> = [];
        return { got, sink: { send: (e: Record<string, unknown>) => void got.push(e) } };
      };
      const a = events();
      const detachA = ch.attach('main', a.sink);
      const msg = { text: 'the answer', files: [], idempotencyKey: 'k1', seq: 1, replyTo: 'pm-1' };
      await ch.deliver({ platformId: 'main', threadId: null }, msg);
      expect(a.got).toMatchObject([{ event: 'message', key: 'k1', text: 'the answer' }]);
      detachA(); // stopped, then killed: it never showed it
      const b = events();
      const detachB = ch.attach('main', b.sink);
      expect(b.got).toMatchObject([{ event: 'message', key: 'k1', backlog: true }]);
      ch.shown('main', ['k1']);
      detachB();
      const c = events();
      ch.attach('main', c.sink);
      expect(c.got).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe('polyclaw chat output', () => {
  let home: string;
  let host: HostProc;
  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("prints an agent's reply without the escape sequences in it; --json keeps the text as it came", () => {
    const r = cli(home, ['chat', '-m', mock({ reply: HOSTILE })]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('ABREDover!\n');
    const json = cli(home, ['chat', '-m', mock({ reply: HOSTILE }), '--json']).json.result;
    expect(json.replies[0].text).toBe(HOSTILE);
    // What a chat has shown is not handed to the next one again.
    expect(json.backlog).toEqual([]);
  });

  it("chat -m shows only its own replies and what was kept for it, not another client's live ones", async () => {
    const first = cliAsync(home, ['chat', '-m', mock({ delayMs: 800, reply: 'first answer' }), '--json']);
    await new Promise((r) => setTimeout(r, 300));
    const second = await cliAsync(home, [
      'chat',
      '-m',
      mock({ delayMs: 1500, reply: 'second answer' }),
      '--json',
    ]);
    const a = JSON.parse((await first).stdout).result;
    const b = JSON.parse(second.stdout).result;
    expect(a.replies.map((r: { text: string }) => r.text)).toEqual(['first answer']);
    expect(b.replies.map((r: { text: string }) => r.text)).toEqual(['second answer']);
    expect(b.backlog).toEqual([]);
    expect(cli(home, ['chat', '-m', 'after', '--json']).json.result.backlog).toEqual([]);
  });

  it('a reader that goes away mid-output ends chat quietly, without a stack trace', () => {
    const err = path.join(home, 'chat.err');
    const code = path.join(home, 'chat.code');
    execFileSync('sh', ['-c', `( node "${MAIN}" chat -m "$MSG" 2>"$ERR"; echo $? >"$CODE" ) | true`], {
      env: {
        ...process.env,
        POLYCLAW_HOME: home,
        MSG: mock({ delayMs: 300, reply: 'x\n'.repeat(20_000) }),
        ERR: err,
        CODE: code,
      },
    });
    expect(fs.readFileSync(err, 'utf8')).toBe('');
    expect(fs.readFileSync(code, 'utf8').trim()).toBe('0');
  });
});

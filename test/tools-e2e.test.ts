/**
 * Every agent tool end to end: the mock provider calls the real MCP tool server (stdio) inside
 * a real bwrap sandbox; what it writes reaches the terminal through a real host process.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, startHostProc, tempHome, waitFor, type HostProc } from './support/cli.js';

const FENCE = '```';
const call = (tools: Array<{ name: string; args?: object }>, reply = '{{tool}}') =>
  `tool test\n${FENCE}mock\n${JSON.stringify({ tools: tools.map((t) => ({ args: {}, ...t })), reply })}\n${FENCE}`;

describe('agent tools through the terminal', () => {
  let home: string;
  let host: HostProc;
  let workspace: string;
  const texts = (r: { json: { result: { replies: Array<{ text: string }> } } }) =>
    r.json.result.replies.map((x) => x.text);
  const chat = (text: string) => cli(home, ['chat', '-m', text, '--json']);

  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn' });
    workspace = path.join(home, 'groups', 'main');
    expect(texts(chat('warm up'))).toEqual(['echo: warm up']);
  });
  afterAll(async () => {
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('send_message reaches the chat and the final text is then not sent too', () => {
    const r = chat(call([{ name: 'send_message', args: { text: 'sent by the tool' } }], 'final text'));
    expect(texts(r)).toEqual(['sent by the tool']);
  });

  it('send_message to a destination by name; an unknown name lists the known ones', () => {
    expect(
      texts(
        chat(call([{ name: 'send_message', args: { text: 'to myself', to: 'terminal:main' } }], 'final')),
      ),
    ).toEqual(['to myself']);
    expect(texts(chat(call([{ name: 'send_message', args: { text: 'x', to: 'slack:general' } }])))).toEqual([
      'tool error: Unknown destination "slack:general". Use one of: origin, terminal:main.',
    ]);
    expect(texts(chat(call([{ name: 'list_destinations' }])))[0]).toContain('terminal:main');
  });

  it('send_file copies a workspace file into the outbox and delivers it', () => {
    fs.writeFileSync(path.join(workspace, 'report.txt'), 'quarterly numbers');
    const r = chat(
      call(
        [{ name: 'send_file', args: { path: 'report.txt', text: 'here it is', filename: 'q3.txt' } }],
        'done',
      ),
    );
    const [reply] = r.json.result.replies;
    expect(reply.text).toBe('here it is');
    expect(reply.files).toHaveLength(1);
    expect(path.basename(reply.files[0])).toBe('q3.txt');
    expect(fs.readFileSync(reply.files[0], 'utf8')).toBe('quarterly numbers');
    expect(reply.files[0]).toContain(`${path.sep}outbox${path.sep}`);
  });

  it('send_file refuses paths outside the workspace, escaping symlinks, missing, oversized and non-regular files, bad names and destinations, leaving no copy', () => {
    fs.symlinkSync('/app/package.json', path.join(workspace, 'sneaky.txt')); // exists inside the sandbox
    const big = path.join(workspace, 'big.bin');
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, 26 * 1024 * 1024);
    const err = (p: string) => texts(chat(call([{ name: 'send_file', args: { path: p } }])))[0];
    expect(err('/app/package.json')).toMatch(/tool error: .*outside your workspace/);
    expect(err('sneaky.txt')).toMatch(/tool error: .*outside your workspace/);
    expect(err('../../polyclaw.db')).toMatch(/tool error: /);
    expect(err('nope.txt')).toMatch(/tool error: No file at "nope.txt"/);
    expect(err('big.bin')).toMatch(
      /tool error: big\.bin is 26\.0 MB; the limit is 25 MB\. Compress or split it/,
    );
    fs.mkdirSync(path.join(workspace, 'adir'));
    expect(err('adir')).toMatch(/tool error: "adir" is not a regular file/);
    fs.writeFileSync(path.join(workspace, 'ok.txt'), 'fine');
    const errArgs = (args: Record<string, string>) =>
      texts(chat(call([{ name: 'send_file', args: { path: 'ok.txt', ...args } }])))[0];
    expect(errArgs({ filename: 'a/b.txt' })).toMatch(
      /tool error: file name "a\/b\.txt" is not a plain file name \(one name of at most 200 bytes, no slashes/,
    );
    // 155 characters, 304 bytes: more than a file system takes for one name.
    expect(errArgs({ filename: `${'é'.repeat(150)}.txt` })).toMatch(
      /tool error: file name "é+\.txt" is not a plain file name \(one name of at most 200 bytes/,
    );
    expect(errArgs({ filename: '..' })).toMatch(/tool error: file name "\.\." is not a plain file name/);
    expect(errArgs({ to: 'nowhere' })).toMatch(/tool error: Unknown destination "nowhere"/);
    const outbox = fs
      .readdirSync(path.join(home, 'sessions', 'main'))
      .map((s) => path.join(home, 'sessions', 'main', s, 'outbox'))
      .flatMap((d) => fs.readdirSync(d));
    expect(outbox).toHaveLength(1); // only the one good file above
  });

  it('a file sent without a caption is not the answer: the final text still comes', () => {
    fs.writeFileSync(path.join(workspace, 'chart.txt'), 'up and to the right');
    const r = chat(call([{ name: 'send_file', args: { path: 'chart.txt' } }], 'Revenue is up 12%.'));
    const replies = r.json.result.replies as Array<{ text: string; files?: string[] }>;
    expect(replies.map((x) => [x.text, (x.files ?? []).map((f) => path.basename(f))])).toEqual([
      ['', ['chart.txt']],
      ['Revenue is up 12%.', []],
    ]);
  });

  it('edit_message and add_reaction check the seq; cards fall back to text on the terminal', () => {
    expect(texts(chat(call([{ name: 'edit_message', args: { seq: 2, text: 'x' } }])))[0]).toMatch(
      /you can only edit your own messages/,
    );
    expect(texts(chat(call([{ name: 'edit_message', args: { seq: 9999, text: 'x' } }])))[0]).toMatch(
      /You sent no message with seq 9999/,
    );
    expect(texts(chat(call([{ name: 'add_reaction', args: { seq: 9998, emoji: '👍' } }])))[0]).toMatch(
      /no message with seq 9998/,
    );
    // The terminal has no reactions: the reaction is dropped, the turn still completes.
    const ok = chat(call([{ name: 'add_reaction', args: { seq: 2, emoji: '👍' } }], 'reacted'));
    expect(texts(ok)).toEqual(['reacted']);
    const card = chat(
      call(
        [
          {
            name: 'send_card',
            args: { card: { title: 'Weather', fields: [{ label: 'Paris', value: '12°C' }] } },
          },
        ],
        'carded',
      ),
    );
    expect(texts(card)).toEqual(['**Weather**\nParis: 12°C', 'carded']);
  });

  it('ask_user_question waits for the person; a numbered reply answers it', async () => {
    const asking = cliAsync(home, [
      'chat',
      '-m',
      call([
        {
          name: 'ask_user_question',
          args: { question: 'Tea or coffee?', options: ['tea', 'coffee'], timeout: 30 },
        },
      ]),
      '--json',
    ]);
    await waitFor(
      () => {
        const s = cli(home, ['sessions', 'list', '--json']).json.result[0];
        const db = path.join(home, 'polyclaw.db');
        return (
          s && fs.existsSync(db) && cli(home, ['sessions', 'show', s.id, '--json']).json.result.pending > 0
        );
      },
      10_000,
      'question asked',
    );
    await new Promise((r) => setTimeout(r, 500));
    // While it waits, the runner (and so the provider's own timers) can see that a person is asked.
    const sid = cli(home, ['sessions', 'list', '--json']).json.result[0].id;
    const outbound = path.join(cli(home, ['sessions', 'show', sid, '--json']).json.result.dir, 'outbound.db');
    const waitMarks = () => {
      const db = new Database(outbound, { readonly: true });
      try {
        return db.prepare(`SELECT key FROM state WHERE key LIKE 'waiting:%'`).all().length;
      } finally {
        db.close();
      }
    };
    expect(waitMarks()).toBe(1);
    const answer = chat('2');
    expect(answer.json.result.status).toBe('answered');
    const r = await asking;
    expect(waitMarks()).toBe(0);
    expect(texts(r)).toEqual([
      'Tea or coffee?\n1. tea\n2. coffee\nReply with the number or the option.',
      'The person chose: coffee',
    ]);
  });

  it('ask_user_question times out with a message the model can act on', () => {
    const r = chat(
      call([{ name: 'ask_user_question', args: { question: 'Anyone?', options: ['yes'], timeout: 1 } }]),
    );
    expect(texts(r).at(-1)).toBe('No answer within 1 seconds. Decide without it or ask again later.');
  });

  it('task tools refuse an invalid cron, a time in the past and an unknown task id', () => {
    expect(
      texts(chat(call([{ name: 'schedule_task', args: { prompt: 'p', cron: '61 * * * *' } }])))[0],
    ).toMatch(/tool error: `cron`: invalid cron/);
    expect(
      texts(chat(call([{ name: 'schedule_task', args: { prompt: 'p', at: '2020-01-01T10:00:00Z' } }])))[0],
    ).toMatch(/tool error: `at`: .*past/);
    expect(texts(chat(call([{ name: 'schedule_task', args: { prompt: 'p' } }])))[0]).toMatch(
      /tool error: Pass `at`/,
    );
    expect(texts(chat(call([{ name: 'cancel_task', args: { taskId: 'task-nope' } }])))[0]).toMatch(
      /tool error: No task "task-nope"/,
    );
    const ok = texts(
      chat(
        call([
          { name: 'schedule_task', args: { prompt: 'standup', cron: '0 9 * * 1-5' } },
          { name: 'list_tasks' },
        ]),
      ),
    )[0];
    expect(ok).toMatch(/task-[0-9a-f]{8} \[(requested|active)\] cron "0 9 \* \* 1-5"/);
  });
});

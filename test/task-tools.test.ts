/**
 * The task tools as the agent calls them (the real tool context over real session queues),
 * against the host's real Delivery and Scheduler: what a tool says was scheduled must be what
 * the host keeps, and list_tasks must show what is true.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCentralDb, type Db } from '../src/host/db/open.js';
import { Delivery } from '../src/host/delivery.js';
import { Scheduler } from '../src/host/scheduler.js';
import { SessionQueue } from '../src/host/session-queue.js';
import { createGroup, updateGroup } from '../src/host/store/groups.js';
import { createWiring, ensureMessagingGroup } from '../src/host/store/messaging.js';
import { resolveSession, type Session } from '../src/host/store/sessions.js';
import { listGroupTasks, pruneFinishedTasks, updateTask } from '../src/host/store/tasks.js';
import { queueContext } from '../src/runner/tools/context.js';
import { toolRegistry } from '../src/runner/tools/index.js';
import { createLogger } from '../src/shared/log.js';
import { sessionMeta } from './support/meta.js';
import { tempHome } from './support/cli.js';

const log = createLogger({ level: 'error' });
const room = { channelType: 'fake', platformId: 'room', threadId: null };

let dir: string;
let db: Db;
let session: Session;
let queue: SessionQueue;
let scheduler: Scheduler;
let delivery: Delivery;
let ctx: ReturnType<typeof queueContext>;

beforeEach(() => {
  dir = tempHome('polyclaw-tasktools-');
  db = openCentralDb(':memory:');
  const g = createGroup(db, 'g', { provider: 'mock' });
  const mg = ensureMessagingGroup(db, 'fake', 'room');
  createWiring(db, mg.id, g.id, { engageMode: 'mention' });
  session = resolveSession(db, g.id, 'shared', mg.id, null).session;
  queue = new SessionQueue(path.join(dir, 'session'));
  queue.setMeta(sessionMeta({ defaultRouting: room }), []);
  const sessions = { queueFor: () => queue, openQueue: () => queue, wake: () => {} };
  scheduler = new Scheduler({ db, log, sessions, defaultTimezone: 'UTC' });
  scheduler.start();
  delivery = new Delivery({
    db,
    log,
    channels: new Map(),
    maxAttempts: 3,
    baseDelayMs: 100,
    later: () => {},
    onAction: (s, q, row) => scheduler.handleAction(s, q, row),
  });
  ctx = queueContext({ sessionDir: queue.dir, agentDir: dir, log });
});
afterEach(() => {
  scheduler.stop();
  ctx.close();
  queue.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The tool's answer, or its error as the model sees it. */
async function call(name: string, args: Record<string, unknown>): Promise<string> {
  try {
    return String(await toolRegistry.get(name).run(args as never, ctx));
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}
const idIn = (answer: string) => /(task-[0-9a-f]{8})/.exec(answer)![1]!;
const hostHandles = () => delivery.process(session, queue);

describe('task tools against the host', () => {
  it('a blank script means none: the task is stored, not refused behind "Scheduled"', async () => {
    const answer = await call('schedule_task', { prompt: 'call mum', at: '2099-01-05 09:00', script: '' });
    expect(answer).toMatch(/^Scheduled task-/);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId).map((t) => [t.id, t.script])).toEqual([
      [idIn(answer), null],
    ]);
    expect(queue.pending().filter((m) => m.kind === 'system')).toEqual([]);
    // In update_task a blank script removes it.
    expect(await call('update_task', { taskId: idIn(answer), script: 'echo hi' })).toMatch(/requested/);
    await hostHandles();
    expect(await call('update_task', { taskId: idIn(answer), script: '   ' })).toMatch(/requested/);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId)[0]!.script).toBeNull();
  });

  it('blank optional fields are not given: a cron with at "" is scheduled; cancelling twice says so', async () => {
    const answer = await call('schedule_task', { prompt: 'digest', at: '', cron: '0 9 * * *' });
    expect(answer).toMatch(/^Scheduled task-/);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId).map((t) => t.cron)).toEqual(['0 9 * * *']);
    // A prompt change with the time fields left blank keeps the time.
    const before = listGroupTasks(db, session.agentGroupId)[0]!;
    expect(
      await call('update_task', { taskId: idIn(answer), prompt: 'weekly digest', at: '', cron: ' ' }),
    ).toMatch(/requested/);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId)[0]).toMatchObject({
      prompt: 'weekly digest',
      cron: '0 9 * * *',
      nextRunAt: before.nextRunAt,
    });
    // …and a time change with the prompt left blank keeps the prompt.
    expect(
      await call('update_task', { taskId: idIn(answer), prompt: ' ', at: '', cron: '0 10 * * *' }),
    ).toMatch(/requested/);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId)[0]).toMatchObject({
      prompt: 'weekly digest',
      cron: '0 10 * * *',
    });
    expect(await call('cancel_task', { taskId: idIn(answer) })).toMatch(/requested/);
    await hostHandles();
    expect(await call('cancel_task', { taskId: idIn(answer) })).toMatch(/is cancelled already\.$/);
  });

  it('lists every live task and only the newest finished ones: a history of one-shots does not flood the model', async () => {
    const finished = Array.from({ length: 30 }, (_, i) => ({
      id: `old-${i}`,
      prompt: `check ${i}`,
      cron: null,
      at: '2026-01-01T00:00:00.000Z',
      script: null,
      status: i % 2 ? ('done' as const) : ('cancelled' as const),
      nextRunAt: null,
      timezone: 'UTC',
    }));
    const live = {
      ...finished[0]!,
      id: 'live',
      prompt: 'digest',
      cron: '0 9 * * *',
      at: null,
      status: 'active' as const,
    };
    queue.setTasks([finished[0]!, live, ...finished.slice(1)]);
    const lines = (await call('list_tasks', {})).split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual([
      'live',
      ...finished.slice(20).map((t) => t.id),
      '(and',
    ]);
    expect(lines.at(-1)).toBe('(and 20 older finished tasks, done or cancelled)');
    expect(await call('pause_task', { taskId: 'nope' })).toBe(
      `error: No task "nope" in this group. Known ids: live, ${finished
        .slice(20)
        .map((t) => t.id)
        .join(', ')} and 20 older finished. Use list_tasks.`,
    );
  });

  it('a task the host pruned after it finished is gone from list_tasks, not listed again as "requested"', async () => {
    const id = idIn(await call('schedule_task', { prompt: 'remind me', at: '2099-01-05 09:00' }));
    expect(await call('list_tasks', {})).toMatch(/\[requested\]/);
    await hostHandles();
    updateTask(db, session.agentGroupId, id, { status: 'done', nextRunAt: null }, Date.now());
    expect(pruneFinishedTasks(db, session.agentGroupId, Date.now() + 2 * 86_400_000, 0)).toBe(1);
    scheduler.mirror(session.agentGroupId);
    expect(await call('list_tasks', {})).toBe('No scheduled tasks.');
    expect(ctx.tasks()).toEqual([]);
  });

  it('a request the host refused is no longer listed as "requested" nor taken as a known id', async () => {
    // The session's chat is one this group may not post to: only the host can know.
    queue.setMeta(sessionMeta({ defaultRouting: { ...room, platformId: 'not-wired' } }), []);
    const answer = await call('schedule_task', { prompt: 'digest', cron: '0 9 * * *' });
    expect(await call('list_tasks', {})).toMatch(/\[requested\] cron "0 9 \* \* \*" in UTC /);
    await hostHandles();
    expect(queue.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(
        /^Your schedule_task request \(seq \d+\) was refused: this agent group may not post/,
      ),
    ]);
    expect(await call('list_tasks', {})).toBe('No scheduled tasks.');
    expect(await call('pause_task', { taskId: idIn(answer) })).toMatch(/^error: No task "task-/);
  });

  it("under the 'deny' approval policy no script is scheduled: the tool refuses it, and so does the host", async () => {
    const plain = idIn(await call('schedule_task', { prompt: 'digest', cron: '0 9 * * *' }));
    await hostHandles();
    updateGroup(db, 'g', { approval: 'deny' });
    queue.setMeta(sessionMeta({ defaultRouting: room, approval: 'deny' }), []);
    const refused =
      "error: This agent group's approval policy refuses commands, and a task script is one; schedule the task without a script.";
    expect(await call('schedule_task', { prompt: 'x', cron: '0 9 * * *', script: 'curl example' })).toBe(
      refused,
    );
    expect(await call('update_task', { taskId: plain, script: 'curl example' })).toBe(refused);
    // Other changes stay possible, and a script can be removed.
    expect(await call('update_task', { taskId: plain, prompt: 'weekly digest', script: '' })).toMatch(
      /requested/,
    );
    // A sandbox that skips the tool is refused by the host.
    ctx.write([
      {
        kind: 'system',
        inReplyTo: null,
        routing: room,
        content: {
          text: '',
          action: {
            type: 'schedule_task',
            task: { id: 'sneaky', prompt: 'x', at: null, cron: '0 9 * * *', script: 'curl example' },
          },
        },
      },
      {
        kind: 'system',
        inReplyTo: null,
        routing: room,
        content: {
          text: '',
          action: { type: 'update_task', taskId: plain, patch: { script: 'curl example' } },
        },
      },
    ]);
    await hostHandles();
    expect(listGroupTasks(db, session.agentGroupId).map((t) => [t.id, t.prompt, t.script])).toEqual([
      [plain, 'weekly digest', null],
    ]);
    expect(queue.pending().map((m) => m.content.text)).toEqual([
      expect.stringMatching(
        /^Your schedule_task request \(seq \d+\) was refused: this agent group's approval policy refuses commands/,
      ),
      expect.stringMatching(
        /^Your update_task request \(seq \d+\) was refused: this agent group's approval policy refuses commands/,
      ),
    ]);
  });

  it('refuses at once what the host would refuse: over-long text, and verbs on tasks that are over', async () => {
    expect(
      await call('schedule_task', { prompt: 'x', at: '2099-01-05 09:00', script: 'y'.repeat(20_001) }),
    ).toBe('error: Script is longer than 20000 characters; put it in a file and run that.');
    expect(await call('schedule_task', { prompt: 'x'.repeat(100_001), at: '2099-01-05 09:00' })).toBe(
      'error: Prompt is longer than 100000 characters.',
    );
    const done = idIn(await call('schedule_task', { prompt: 'once', at: '2099-01-05 09:00' }));
    const gone = idIn(await call('schedule_task', { prompt: 'later', at: '2099-01-06 09:00' }));
    await hostHandles();
    updateTask(db, session.agentGroupId, done, { status: 'done', nextRunAt: null }, Date.now());
    updateTask(db, session.agentGroupId, gone, { status: 'cancelled', nextRunAt: null }, Date.now());
    scheduler.mirror(session.agentGroupId);
    expect(await call('cancel_task', { taskId: done })).toBe(
      `error: Task "${done}" already ran and is done.`,
    );
    expect(await call('resume_task', { taskId: gone })).toBe(
      `error: Task "${gone}" is cancelled; schedule a new task instead.`,
    );
    expect(await call('update_task', { taskId: done, prompt: 'again' })).toMatch(
      /is done; schedule a new task/,
    );
    expect(await call('cancel_task', { taskId: gone })).toBe(`Task ${gone} is cancelled already.`); // harmless
  });
});

describe('blank optional fields of the message tools', () => {
  it('a card with fallbackText "" and to "" goes to this chat with its own rendering', async () => {
    const answer = await call('send_card', {
      card: { title: 'Weekly', text: 'all good' },
      fallbackText: '',
      to: '',
    });
    expect(answer).not.toMatch(/^error/);
    const [row] = queue.outboundSince(0);
    expect(row!.routing).toEqual(room);
    expect(row!.content.text).toContain('Weekly');
  });
});

describe('text limits of the message tools', () => {
  it('refuses what no chat could carry, in words the model can act on, and writes nothing', async () => {
    const huge = 'x'.repeat(32_001);
    expect(await call('send_card', { card: { title: 'T' }, fallbackText: huge })).toBe(
      'error: `fallbackText` is 32001 characters; the limit is 32000.',
    );
    fs.writeFileSync(path.join(dir, 'report.txt'), 'numbers');
    expect(await call('send_file', { path: 'report.txt', text: huge })).toBe(
      'error: The caption is 32001 characters; the limit is 32000.',
    );
    const ask = (args: Record<string, unknown>) =>
      call('ask_user_question', { question: 'Which?', options: ['a', 'b'], timeout: 1, ...args });
    expect(await ask({ question: huge })).toBe('error: `question` is 32001 characters; the limit is 32000.');
    expect(await ask({ title: 't'.repeat(201) })).toBe('error: `title` is 201 characters; the limit is 200.');
    expect(await ask({ options: ['fine', 'o'.repeat(101)] })).toBe(
      `error: Option "${'o'.repeat(40)}…" is 101 characters; the limit is 100 (a button's label).`,
    );
    // Options differ as replies are matched: "Yes." would answer "Yes".
    expect(await ask({ options: ['Yes', 'yes.'] })).toBe('error: `options` must be distinct.');
    expect(queue.outboundSince(0)).toEqual([]);
  });
});

describe('edit_message on what is not a plain message', () => {
  it('says what the seq is, so the model knows to send a new one', async () => {
    await call('send_card', { card: { title: 'Weekly' } });
    const [card] = queue.outboundSince(0);
    expect(await call('edit_message', { seq: card!.seq, text: 'new' })).toBe(
      `error: seq ${card!.seq} is a card, not a plain message; only plain messages can be edited. Send a new card instead.`,
    );
    expect(await call('edit_message', { seq: 99, text: 'new' })).toBe(
      'error: You sent no message with seq 99. Check the seq ids in the conversation.',
    );
  });
});

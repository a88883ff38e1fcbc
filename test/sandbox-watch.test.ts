/**
 * Sandboxes that die or run away. One that dies before its runner takes the message (bwrap
 * cannot build it, the runner crashes at start) must not be restarted at once for ever: each
 * such death is an attempt, tries back off, and the message finally fails with the user told.
 * A turn that runs past maxTurnMs is ended whatever heartbeats the sandbox writes. At start-up,
 * no sandbox starts for a session before its own recovery has run. Real session
 * manager, queues, settlement and delivery; the sandbox is a real process (the `process`
 * runtime) running a stand-in script; the test plays the runner's part in the queue.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeliveryError, type DeliveryTarget, type OutgoingMessage } from '../src/channels/adapter.js';
import { ops } from '../src/host/admin-ops.js';
import { loadConfig } from '../src/host/config.js';
import { openCentralDb } from '../src/host/db/open.js';
import { sessionDir } from '../src/host/sandbox-spec.js';
import { SessionManager } from '../src/host/session-manager.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { markAnswered, recordQuestion } from '../src/host/store/questions.js';
import { findMessagingGroup } from '../src/host/store/messaging.js';
import { resolveSession, touchSession } from '../src/host/store/sessions.js';
import { getGroupByName } from '../src/host/store/groups.js';
import '../src/sandbox/index.js';
import { runtimeRegistry } from '../src/sandbox/registry.js';
import type { SandboxRuntime, SandboxSpec } from '../src/sandbox/runtime.js';
import { createLogger, memoryLogger } from '../src/shared/log.js';
import { tempHome, waitFor } from './support/cli.js';
import { FullChannel } from './support/fake-channel.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The real `process` runtime, whose sandboxes run `script` instead of the runner. */
function runtimeRunning(script: string, home: string, starts: number[]): SandboxRuntime {
  const log = createLogger({ level: 'error' });
  const real = runtimeRegistry.get('process')({ log, runDir: `${home}/run` });
  return {
    name: 'crashing',
    isolating: false,
    available: () => real.available(),
    start: (spec: SandboxSpec) => {
      starts.push(Date.now());
      return real.start({ ...spec, command: [process.execPath, '-e', script] });
    },
    exec: (spec, opts) => real.exec(spec, opts),
    cleanupOrphans: (id) => real.cleanupOrphans(id),
  };
}

/** A sandbox that lives until its stdin ends, as the runner does. */
const LIVE = "process.stdin.on('end', () => process.exit(0)).resume()";

/** Time for the session's chain to run what a sweep queued on it. */
const settled = () => new Promise((r) => setTimeout(r, 250));

let offset = 0; // added to the session manager's clock
afterEach(() => {
  offset = 0;
});

async function setup(
  script: string,
  env: Record<string, string> = {},
  opts: { ch?: FullChannel; wake?: boolean; watch?: typeof fs.watch } = {},
) {
  const home = tempHome();
  fs.mkdirSync(`${home}/run`, { recursive: true });
  const config = loadConfig({
    POLYCLAW_HOME: home,
    POLYCLAW_RETRY_BASE_MS: '50',
    POLYCLAW_MAX_TRIES: '3',
    ...env,
  });
  const db = openCentralDb(':memory:');
  const ctx = { db, config, host: null };
  ops['groups.create']!(ctx, { name: 'main', provider: 'mock' });
  ops['wirings.add']!(ctx, { group: 'main', channel: 'fullchat', platformId: 'room', engage: 'mention' });
  const ch = opts.ch ?? new FullChannel();
  const starts: number[] = [];
  const log = memoryLogger();
  const sessions = new SessionManager({
    db,
    config,
    runtime: runtimeRunning(script, home, starts),
    installId: 'crash-loop-test',
    channels: new Map([[ch.channelType, ch]]),
    log,
    now: () => Date.now() + offset,
    watch: opts.watch,
  });
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  cleanups.push(() => void db.close());
  cleanups.push(() => sessions.close());
  const group = getGroupByName(db, 'main')!;
  const mg = findMessagingGroup(db, 'fullchat', 'room')!;
  const { session } = resolveSession(db, group.id, 'shared', mg.id, null);
  const q = sessions.queueFor(session);
  const { id } = q.enqueue({
    kind: 'chat',
    trigger: true,
    routing: { channelType: 'fullchat', platformId: 'room', threadId: null },
    content: { text: 'hello', sender: { id: 'u1' }, attachments: [], platformMessageId: 'pm-1' },
  });
  if (opts.wake !== false) sessions.wake(session.id);
  return { ch, starts, q, id, sessions, db, ctx, group, session, log };
}

/** A second chat ("other") wired to the group, and its session. */
function otherChat(t: Pick<Awaited<ReturnType<typeof setup>>, 'ctx' | 'db' | 'group'>) {
  ops['wirings.add']!(t.ctx, { group: 'main', channel: 'fullchat', platformId: 'other', engage: 'mention' });
  const mg = findMessagingGroup(t.db, 'fullchat', 'other')!;
  const { session } = resolveSession(t.db, t.group.id, 'shared', mg.id, null);
  return { session, to: { channelType: 'fullchat', platformId: 'other', threadId: null } };
}

describe('a sandbox that dies before its runner takes the message', () => {
  it('is tried maxTries times with backoff, then the message fails and the user is told', async () => {
    const { ch, starts, q, id } = await setup('process.exit(3)');
    await waitFor(() => q.get(id)?.status === 'failed', 10_000, 'message failed');
    // No restart after the last try: the loop has ended.
    await new Promise((r) => setTimeout(r, 400));
    expect(starts).toHaveLength(3);
    // Backoff of retryBaseMs × 2^tries between the starts (50 ms, then 100 ms).
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(45);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(95);
    const told = ch.log.filter((e) => e.op === 'deliver');
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toContain('the sandbox stopped before the agent took the message (exit code 3)');
    expect(told[0]!.replyTo).toBe('pm-1');
    expect(ch.settled).toEqual([['pm-1', 'failed']]);
  }, 20_000);

  it('a session whose outbound watch cannot start still runs, and the user is still told', async () => {
    const watch = (() => {
      throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), {
        code: 'ENOSPC',
      });
    }) as unknown as typeof fs.watch;
    const { ch, q, id, log } = await setup('process.exit(3)', {}, { watch });
    await waitFor(() => q.get(id)?.status === 'failed', 10_000, 'message failed');
    expect(log.lines.some((l) => l.msg === 'outbound watch could not start; safety sweep covers it')).toBe(
      true,
    );
    await waitFor(() => ch.settled.length === 1, 5000, 'the user told');
    expect(ch.log.filter((e) => e.op === 'deliver')).toHaveLength(1);
  }, 20_000);

  it('the user is told only once the message is failed; a notice whose send failed is sent later, once', async () => {
    /** Fails its first send; notes the message's state at each send. */
    class Flaky extends FullChannel {
      seen: Array<string | undefined> = [];
      status: () => string | undefined = () => 'unknown';
      private fails = 1;
      override async deliver(t: DeliveryTarget, m: OutgoingMessage) {
        this.seen.push(this.status());
        if (this.fails-- > 0) throw new DeliveryError('platform busy', true);
        return super.deliver(t, m);
      }
    }
    const ch = new Flaky();
    const { q, id } = await setup('process.exit(3)', {}, { ch });
    ch.status = () => q.get(id)?.status;
    await waitFor(() => ch.log.some((e) => e.op === 'deliver'), 10_000, 'notice delivered');
    await new Promise((r) => setTimeout(r, 300));
    expect(ch.seen).toEqual(['failed', 'failed']);
    const told = ch.log.filter((e) => e.op === 'deliver');
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toContain('the sandbox stopped before the agent took the message');
  }, 20_000);
});

/** A live sandbox whose turn the test has taken, as the runner would: acked and beating. */
async function turnInFlight(env: Record<string, string>, script = LIVE) {
  const t = await setup(script, env);
  await waitFor(() => t.sessions.sandboxes().length === 1, 10_000, 'sandbox running');
  const runner = new RunnerQueue(t.q.dir, () => Date.now() + offset);
  cleanups.push(() => runner.close());
  runner.ack([{ id: t.id, tries: 0 }], 'processing');
  runner.heartbeat(true);
  t.sessions.sweep(); // the host's clock for this turn starts here
  return { ...t, runner };
}

describe('a turn that runs past maxTurnMs', () => {
  it('is failed and its sandbox stopped although its heartbeat is fresh; not retried', async () => {
    const { ch, starts, q, id, sessions, runner } = await turnInFlight({ POLYCLAW_MAX_TURN_MS: '60000' });
    offset = 30_000;
    runner.heartbeat(true);
    sessions.sweep();
    await settled();
    expect(q.get(id)?.status).toBe('pending');
    offset = 61_000;
    runner.heartbeat(true);
    sessions.sweep();
    await waitFor(() => q.get(id)?.status === 'failed', 10_000, 'message failed');
    await waitFor(() => sessions.sandboxes().length === 0, 10_000, 'sandbox stopped');
    const told = ch.log.filter((e) => e.op === 'deliver');
    expect(told.map((e) => e.text)).toEqual([
      expect.stringContaining('the turn ran longer than the 1 min limit (maxTurnMs)'),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect(starts).toHaveLength(1);
  }, 20_000);

  it('a follow-up joining the turn does not restart its clock; the follow-up is retried, not failed', async () => {
    const t = await turnInFlight({ POLYCLAW_MAX_TURN_MS: '60000' });
    const follow = t.q.enqueue({
      kind: 'chat',
      trigger: true,
      routing: { channelType: 'fullchat', platformId: 'room', threadId: null },
      content: { text: 'and also', sender: { id: 'u1' }, attachments: [] },
    });
    offset = 30_000;
    t.runner.ack([{ id: follow.id, tries: 0 }], 'processing'); // pushed into the live query
    t.runner.ack([{ id: t.id, tries: 7 }], 'processing'); // an ack of no current try: ignored
    t.sessions.sweep();
    offset = 61_000;
    t.sessions.sweep();
    await waitFor(() => t.q.get(t.id)?.status === 'failed', 10_000, 'first message failed');
    await waitFor(() => t.q.get(follow.id)?.tries === 1, 10_000, 'follow-up retried');
    expect(t.q.get(follow.id)?.status).toBe('pending');
  }, 20_000);

  it('is not ended while it waits for a person; its clock starts again when the question closes', async () => {
    const t = await turnInFlight({ POLYCLAW_MAX_TURN_MS: '60000' });
    const at = Date.now();
    recordQuestion(
      t.db,
      {
        questionId: 'deploy?',
        sessionId: t.session.id,
        routing: { channelType: 'fullchat', platformId: 'room', threadId: null },
        options: ['yes', 'no'],
        expiresAt: at + 3 * 3_600_000,
      },
      at,
    );
    // Two hours waiting for the answer, the runner beating as it does while it waits.
    const after = async (ms: number) => {
      offset += ms;
      t.runner.heartbeat(true);
      t.sessions.sweep();
      await settled();
    };
    await after(2 * 3_600_000);
    expect(t.q.get(t.id)?.status).toBe('pending');
    markAnswered(t.db, 'deploy?', 'yes');
    await after(30_000);
    expect(t.q.get(t.id)?.status).toBe('pending');
    await after(31_000);
    await waitFor(() => t.q.get(t.id)?.status === 'failed', 10_000, 'message failed');
  }, 20_000);
});

describe('a turn whose heartbeat stopped for stuckTimeoutMs', () => {
  it('has its sandbox killed and the message retried in a new one', async () => {
    const { starts, q, id, sessions } = await turnInFlight({ POLYCLAW_STUCK_TIMEOUT_MS: '1000' });
    expect(starts).toHaveLength(1);
    offset = 5_000; // five seconds without a beat
    sessions.sweep();
    await waitFor(() => starts.length === 2, 10_000, 'second sandbox');
    expect(q.get(id)).toMatchObject({ status: 'pending', tries: 1 });
  }, 20_000);
});

describe('a sandbox asked to stop', () => {
  it('still owns its turn until it has exited: a delivery pass meanwhile does not charge the turn, and its reply is the answer', async () => {
    // A runner slow to stop (it finishes its turn first): the stop's grace runs 3 s + 1 s.
    const SLOW_TO_STOP = "process.on('SIGTERM', () => {}); process.stdin.resume(); setInterval(() => {}, 1000)";
    const t = await turnInFlight({}, SLOW_TO_STOP);
    const stopping = t.sessions.stopSandbox(t.session.id);
    t.sessions.kick(t.session.id);
    await settled();
    expect(t.q.get(t.id)).toMatchObject({ status: 'pending', tries: 0 });
    // The turn's answer, written before the runner is gone, is delivered once and settles it.
    const routing = { channelType: 'fullchat', platformId: 'room', threadId: null };
    t.runner.commit(
      [{ kind: 'message', inReplyTo: t.id, routing, content: { text: 'done' } }],
      [{ id: t.id, tries: 0 }],
    );
    await stopping;
    await waitFor(() => t.q.get(t.id)?.status === 'completed', 10_000, 'the turn settled');
    expect(t.ch.log.filter((e) => e.op === 'deliver').map((e) => e.text)).toEqual(['done']);
  }, 20_000);
});

describe('a turn waiting for a person (a question or an approval)', () => {
  it('is not taken for stuck though its runner beats only now and then while it waits', async () => {
    const t = await turnInFlight({ POLYCLAW_STUCK_TIMEOUT_MS: '1000' });
    recordQuestion(
      t.db,
      {
        questionId: 'allow?',
        sessionId: t.session.id,
        routing: { channelType: 'fullchat', platformId: 'room', threadId: null },
        options: ['Allow', 'Deny'],
        expiresAt: Date.now() + 3_600_000,
        adminOnly: true,
      },
      Date.now(),
    );
    offset = 5_000; // five seconds without a beat: the runner beats every 30 s while it waits
    t.sessions.sweep();
    await settled();
    expect(t.starts).toHaveLength(1);
    expect(t.q.get(t.id)).toMatchObject({ status: 'pending', tries: 0 });
  }, 20_000);
});

describe('start-up recovery', () => {
  it("holds back a session's sandbox until its own recovery has run, then starts it", async () => {
    /** A channel whose delivery wakes another session, as an agent chat's delivery does. */
    class WakingChannel extends FullChannel {
      onDeliver = () => {};
      override async deliver(...args: Parameters<FullChannel['deliver']>) {
        this.onDeliver();
        return super.deliver(...args);
      }
    }
    const ch = new WakingChannel();
    const { starts, sessions, db, ctx, group, session } = await setup(LIVE, {}, { ch, wake: false });
    // Another session of the group, recovered first, with a reply the last host never delivered.
    const { session: other, to } = otherChat({ ctx, db, group });
    touchSession(db, other.id, Date.now() + 60_000);
    const runner = new RunnerQueue(sessions.queueFor(other).dir);
    cleanups.push(() => runner.close());
    runner.commit([{ kind: 'message', inReplyTo: null, routing: to, content: { text: 'late reply' } }], []);
    let startedAtDelivery = -1;
    ch.onDeliver = () => {
      sessions.wake(session.id);
      startedAtDelivery = starts.length;
    };
    await sessions.recover();
    expect(startedAtDelivery).toBe(0);
    expect(starts).toHaveLength(1);
  }, 20_000);
});

describe('a notice in backoff', () => {
  it('keeps one wake timer for its session however often the session is woken meanwhile', async () => {
    class Down extends FullChannel {
      override async deliver(): Promise<string> {
        throw new DeliveryError('platform busy', true);
      }
    }
    const { q, id, sessions, session } = await setup('process.exit(3)', {}, { ch: new Down() });
    await waitFor(() => q.get(id)?.status === 'failed', 10_000, 'message failed');
    await settled();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      for (let i = 0; i < 20; i++) {
        sessions.kick(session.id);
        await new Promise((r) => setTimeout(r, 5));
      }
      // Backoff waits are deliveryBaseMs (500) × 2^n: count the timers asked for in that range.
      const backoff = spy.mock.calls.filter(([, ms]) => typeof ms === 'number' && ms > 5 && ms <= 8_000);
      expect(backoff.length).toBeLessThanOrEqual(1);
    } finally {
      spy.mockRestore();
    }
  }, 20_000);
});

describe('start-up recovery of notices', () => {
  it('sends a notice the last host kept but never sent, also for a session with no files yet', async () => {
    const { ch, sessions, db, ctx, group } = await setup(LIVE, {}, { wake: false });
    const { session: other, to } = otherChat({ ctx, db, group });
    // The last host kept a refusal and died before sending it; this session never had a message.
    sessions.delivery.notices.keep(other, 'refused:pm-9', { routing: to, text: 'refused', hops: 0 });
    expect(fs.existsSync(sessionDir(ctx.config.home, 'main', other.id))).toBe(false);
    await sessions.recover();
    await waitFor(() => ch.log.some((e) => e.op === 'deliver'), 5_000, 'notice sent');
    expect(
      ch.log
        .filter((e) => e.op === 'deliver')
        .map((e) => [e.text, (e.target as { platformId: string }).platformId]),
    ).toEqual([['refused', 'other']]);
  }, 20_000);
});

describe('a sandbox that exits while its session is busy delivering', () => {
  it("charges only its own turns: a new sandbox's turn taken before the exit is settled runs on", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    class GatedChannel extends FullChannel {
      override async deliver(target: DeliveryTarget, m: OutgoingMessage) {
        await gate;
        return super.deliver(target, m);
      }
    }
    const ch = new GatedChannel();
    const { starts, q, id, sessions, session } = await setup(LIVE, {}, { ch });
    await waitFor(() => starts.length === 1, 5000, 'the first sandbox');
    const runner = new RunnerQueue(q.dir);
    cleanups.push(() => runner.close());
    const routing = { channelType: 'fullchat', platformId: 'room', threadId: null };
    // The first turn is answered; its delivery hangs, so the session's chain is busy.
    runner.commit(
      [{ kind: 'message', inReplyTo: id, routing, content: { text: 'answer 1' } }],
      [{ id, tries: 0 }],
    );
    sessions.kick(session.id);
    // The sandbox is stopped, and a new message arrives meanwhile: a new sandbox starts at the exit.
    const stopping = sessions.stopSandbox(session.id);
    const m1 = q.enqueue({
      kind: 'chat',
      trigger: true,
      routing,
      content: { text: 'second', sender: { id: 'u1' }, attachments: [], platformMessageId: 'pm-2' },
    });
    sessions.wake(session.id);
    await stopping;
    await waitFor(() => starts.length === 2, 5000, 'the second sandbox');
    runner.ack([{ id: m1.id, tries: 0 }], 'processing'); // the new sandbox's runner takes it
    open();
    await waitFor(() => ch.log.some((e) => e.text === 'answer 1'), 5000, 'the first answer');
    await settled();
    expect(q.get(m1.id)!.tries).toBe(0);
    expect(ch.log.filter((e) => String(e.text).includes('could not'))).toEqual([]);
  });
});

describe('quiet sessions', () => {
  /** This process's open files under `dir`. */
  const filesUnder = (dir: string) =>
    fs.readdirSync('/proc/self/fd').filter((f) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${f}`).startsWith(dir);
      } catch {
        return false; // closed meanwhile
      }
    });

  it('have their queue closed (its files and watch) once nothing is pending for a while; the next use opens it again', async () => {
    const { q, id, sessions, session } = await setup(LIVE, {}, { wake: false });
    expect(filesUnder(q.dir).length).toBeGreaterThan(0);
    offset += 11 * 60_000;
    sessions.sweep();
    expect(sessions.openQueue(session.id)).toBe(q); // a message is pending
    q.markDone(id, 'completed');
    // Kept context waits for no turn: it does not keep the queue open (it is durable).
    const context = q.enqueue({
      kind: 'chat',
      trigger: false,
      routing: { channelType: 'fullchat', platformId: 'room', threadId: null },
      content: { text: 'by the way', sender: { id: 'u2' }, attachments: [] },
    });
    sessions.queueFor(session); // asked for just now
    sessions.sweep();
    expect(sessions.openQueue(session.id)).toBe(q);
    offset += 11 * 60_000;
    sessions.sweep();
    expect(sessions.openQueue(session.id)).toBeUndefined();
    expect(filesUnder(q.dir)).toEqual([]);
    const again = sessions.queueFor(session);
    expect(again.get(id)?.status).toBe('completed');
    expect(again.get(context.id)?.status).toBe('pending');
    expect(sessions.openQueue(session.id)).toBe(again);
  });
});

describe('start-up recovery of many sessions', () => {
  it('leaves open only the queues of sessions with work: each open queue holds files, and a host with thousands ran out', async () => {
    const { q, id, sessions, session, ctx, db, group, starts } = await setup(LIVE, {}, { wake: false });
    q.markDone(id, 'completed');
    const { session: busy, to } = otherChat({ ctx, db, group });
    sessions.queueFor(busy).enqueue({
      kind: 'chat',
      trigger: true,
      routing: to,
      content: { text: 'still to answer', sender: { id: 'u1' }, attachments: [] },
    });
    await sessions.recover();
    expect(sessions.openQueue(session.id)).toBeUndefined();
    expect(sessions.openQueue(busy.id)).toBeDefined();
    await waitFor(() => starts.length === 1, 5000, 'the busy session started');
    // The quiet one opens again when asked for.
    expect(sessions.queueFor(session).get(id)?.status).toBe('completed');
  });
});

describe("a change of a group's provider", () => {
  it('stops its sandboxes at once, and no sandbox of the new provider starts while one of the old is alive', async () => {
    // A sandbox that outlives its stdin's end for a while (the pool's grace, then SIGTERM).
    const SLOW =
      "process.stdin.resume(); process.on('SIGTERM', () => setTimeout(() => process.exit(0), 300)); setInterval(() => {}, 1000)";
    const t = await setup(SLOW);
    await waitFor(() => t.starts.length === 1, 5000, 'the first sandbox');
    const other = otherChat(t);
    ops['groups.update']!(t.ctx, { name: 'main', provider: 'codex' });
    t.sessions.groupChanged(t.group.id);
    const q2 = t.sessions.queueFor(other.session);
    q2.enqueue({
      kind: 'chat',
      trigger: true,
      routing: other.to,
      content: { text: 'hi', sender: { id: 'u1' }, attachments: [], platformMessageId: 'pm-o' },
    });
    t.sessions.wake(other.session.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(t.starts).toHaveLength(1); // the old sandbox is still stopping
    expect(t.sessions.sandboxes().map((s) => s.sessionId)).toEqual([t.session.id]);
    // Gone, its turn is tried again: both sessions get sandboxes of the new provider.
    await waitFor(
      () => t.starts.length === 3,
      10_000,
      'the new provider sandboxes after the old one is gone',
    );
    expect(
      t.sessions
        .sandboxes()
        .map((s) => s.sessionId)
        .sort(),
    ).toEqual([t.session.id, other.session.id].sort());
  });
});

describe('an answered message whose reply waits for a delivery retry', () => {
  it('neither keeps its sandbox running nor starts a new one', async () => {
    class DownChannel extends FullChannel {
      override async deliver(): Promise<string> {
        throw new DeliveryError('the platform is down', true);
      }
    }
    const { starts, q, id, sessions, session } = await setup(
      LIVE,
      { POLYCLAW_IDLE_TIMEOUT_MS: '1000' },
      { ch: new DownChannel() },
    );
    await waitFor(() => starts.length === 1, 5000, 'the sandbox');
    const runner = new RunnerQueue(q.dir);
    cleanups.push(() => runner.close());
    const routing = { channelType: 'fullchat', platformId: 'room', threadId: null };
    runner.commit(
      [{ kind: 'message', inReplyTo: id, routing, content: { text: 'the answer' } }],
      [{ id, tries: 0 }],
    );
    sessions.kick(session.id);
    await waitFor(() => sessions.sandboxes().length === 0, 5000, 'the idle sandbox to stop');
    await new Promise((r) => setTimeout(r, 1500));
    expect(starts).toHaveLength(1);
    expect(q.get(id)?.status).toBe('pending'); // still waiting for its reply's delivery
  });
});

describe('a message waiting out a retry backoff', () => {
  it('does not hold its sandbox slot meanwhile: another session waiting for one gets it', async () => {
    const t = await setup(LIVE, { POLYCLAW_MAX_SANDBOXES: '1' });
    await waitFor(() => t.starts.length === 1, 5000, 'the first sandbox');
    // Its attempt failed, retryable; the retry is a minute away (as after a few backoffs).
    t.q.retry(t.id, Date.now() + 60_000);
    const other = otherChat(t);
    t.sessions.queueFor(other.session).enqueue({
      kind: 'chat',
      trigger: true,
      routing: other.to,
      content: { text: 'me too', sender: { id: 'u2' }, attachments: [] },
    });
    t.sessions.wake(other.session.id);
    await waitFor(() => t.starts.length === 2, 5000, "the other session's sandbox");
    expect(t.sessions.sandboxes().map((s) => s.sessionId)).toEqual([other.session.id]);
  });
});

describe("a sandbox's outbound.db it damaged", () => {
  it('does not end the host when the idle timer asks whether the session is busy', async () => {
    const t = await setup(LIVE, { POLYCLAW_IDLE_TIMEOUT_MS: '1000' });
    await waitFor(() => t.starts.length === 1, 5000, 'the sandbox');
    t.q.retry(t.id, Date.now() + 60_000); // waiting out a backoff: busy only if a turn is in flight
    fs.writeFileSync(`${t.q.dir}/outbound.db`, 'not a database'.repeat(400));
    await new Promise((r) => setTimeout(r, 2500)); // two idle checks
    // Unreadable counts as busy: the sandbox is kept, and nothing threw out of the timer.
    expect(t.sessions.sandboxes().map((s) => s.sessionId)).toEqual([t.session.id]);
  });
});

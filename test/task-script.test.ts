/** Task pre-script gating with the real RunnerLoop, real queue files and the mock provider. */
import fs from 'node:fs';
import path from 'node:path';
import { answerQuestion, askedQuestion, sessionMeta } from './support/meta.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { RunnerLoop } from '../src/runner/loop.js';
import { MockProvider } from '../src/runner/providers/mock.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import { runShellScript, wakeAgentFalse } from '../src/runner/task-script.js';
import { Doorbell } from '../src/shared/doorbell.js';
import { bellsDir } from '../src/shared/session-db.js';
import { createLogger } from '../src/shared/log.js';
import { tempHome, waitFor } from './support/cli.js';

const log = createLogger({ level: 'error' });
const routing = { channelType: 'terminal', platformId: 'main', threadId: null };
let dir: string;
let agentDir: string;
let host: SessionQueue;
let queue: RunnerQueue;
let doorbell: Doorbell;
let loop: RunnerLoop;
let running: Promise<void>;

beforeEach(() => {
  dir = tempHome('polyclaw-taskscript-');
  agentDir = path.join(dir, 'agent');
  fs.mkdirSync(agentDir);
  host = new SessionQueue(path.join(dir, 'session'));
  host.setMeta(sessionMeta({ assistantName: 'Pal', defaultRouting: routing }), []);
  queue = new RunnerQueue(host.dir);
  doorbell = new Doorbell(bellsDir(host.dir), log, (name) => name === 'inbound.bell');
  doorbell.start();
  const provider = new MockProvider({ agentDir, sessionDir: host.dir });
  loop = new RunnerLoop({ queue, provider, doorbell, log, cwd: agentDir, safetyPollMs: 60_000 });
  running = loop.run();
});
afterEach(async () => {
  loop.stop();
  await running;
  doorbell.close();
  queue.close();
  host.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const task = (prompt: string, script: string | null) =>
  host.enqueue({
    kind: 'task',
    trigger: true,
    routing,
    seriesId: 't1',
    content: { text: prompt, attachments: [], task: { id: 't1', runAt: 1, script } },
  });
const ackOf = (id: string) => host.acksFor([id]).find((a) => a.tryNo === 0);
const replies = () => host.outboundSince(0).map((r) => r.content.text);

describe('task pre-script gating', () => {
  it('{"wakeAgent": false} as the last JSON line completes the task without waking the agent', async () => {
    const m = task(
      'check mail',
      `pwd > where.txt; echo '{"wakeAgent": true}'; echo 'noise'; echo '{"wakeAgent": false}'; echo 'trailing text'`,
    );
    await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
    expect(replies()).toEqual([]);
    expect(queue.continuation('mock')).toBeNull(); // the provider was never queried
    expect(fs.readFileSync(path.join(agentDir, 'where.txt'), 'utf8').trim()).toBe(fs.realpathSync(agentDir));
  });

  it('otherwise the agent runs and sees the script output after the prompt', async () => {
    const m = task('summarise', `echo 'new mail: 3'; echo '{"wakeAgent": true}'`);
    await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
    const [reply] = replies();
    expect(reply).toMatch(
      /^echo: summarise\n\nOutput of this task's pre-script \(exit code 0\):\nnew mail: 3\n\{"wakeAgent": true\}/,
    );
  });

  it('a failing script still wakes the agent, with its exit status and stderr', async () => {
    const m = task('go', `echo oops >&2; exit 3`);
    await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
    expect(replies()[0]).toMatch(/pre-script \(exit code 3\):\n\(no output\)\nstderr:\noops/);
  });

  it('a run queued before its series was paused or cancelled is dropped without waking the agent', async () => {
    const series = (status: 'active' | 'paused' | 'cancelled') => ({
      id: 't1',
      prompt: 'x',
      cron: '0 9 * * *',
      at: null,
      script: null,
      status,
      nextRunAt: null,
      timezone: 'UTC',
    });
    host.setTasks([series('paused')]);
    const paused = task('digest', null);
    await waitFor(() => ackOf(paused.id)?.status === 'completed', 10_000, 'the paused run');
    host.setTasks([series('cancelled')]);
    const cancelled = task('digest', `echo ran > ran.txt`);
    await waitFor(() => ackOf(cancelled.id)?.status === 'completed', 10_000, 'the cancelled run');
    expect(replies()).toEqual([]);
    expect(fs.existsSync(path.join(agentDir, 'ran.txt'))).toBe(false);
    host.setTasks([series('active')]);
    const active = task('digest', null);
    await waitFor(() => ackOf(active.id)?.status === 'completed', 10_000, 'the active run');
    expect(replies()).toEqual(['echo: digest']);
  });

  it('a runner stopped while a pre-script runs does not start the agent turn after it', async () => {
    const m = task('late', `touch started; sleep 1; echo '{"wakeAgent": true}'`);
    await waitFor(() => fs.existsSync(path.join(agentDir, 'started')), 10_000, 'the script start');
    loop.stop();
    await running;
    expect(queue.continuation('mock')).toBeNull(); // the provider was never queried
    expect(replies()).toEqual([]);
    // The script's try stays open, for the host to settle as for any runner that stopped mid-try.
    expect(ackOf(m.id)?.status).toBe('processing');
  });

  describe("the group's approval policy holds for scripts", () => {
    const policy = (approval: 'deny' | 'ask') =>
      host.setMeta(sessionMeta({ assistantName: 'Pal', defaultRouting: routing, approval }), []);
    const question = () => askedQuestion(host);
    const answer = (questionId: string, text: string) => answerQuestion(host, routing, questionId, text);
    const messages = () =>
      host
        .outboundSince(0)
        .filter((r) => r.kind === 'message')
        .map((r) => r.content.text);
    const ran = () => fs.existsSync(path.join(agentDir, 'ran.txt'));

    it("'deny' never runs it; the agent still wakes for the task, told why", async () => {
      policy('deny');
      const m = task('digest', `echo ran > ran.txt`);
      await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
      expect(ran()).toBe(false);
      expect(replies()).toEqual([
        "echo: digest\n\nThis task's pre-script was not run. This agent group's approval policy refuses commands.",
      ]);
    });

    it("'ask' puts each run's script to the task's chat (admins only) and runs it on Allow", async () => {
      policy('ask');
      const m = task('digest', `echo ran > ran.txt; echo fresh`);
      const q = await waitFor(question, 10_000, 'the approval question');
      expect(q.inReplyTo).toBe(m.id);
      expect(q.content.question).toMatchObject({ options: ['Allow', 'Deny'], adminOnly: true });
      expect(q.content.text).toContain('echo ran > ran.txt; echo fresh');
      expect(ran()).toBe(false);
      answer(q.content.question!.questionId, 'Allow');
      await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
      expect(ran()).toBe(true);
      expect(messages()).toEqual(["echo: digest\n\nOutput of this task's pre-script (exit code 0):\nfresh"]);
    });

    it("'ask': a Deny leaves the script unrun and the agent is told", async () => {
      policy('ask');
      const m = task('digest', `echo ran > ran.txt`);
      const q = await waitFor(question, 10_000, 'the approval question');
      answer(q.content.question!.questionId, 'Deny');
      await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
      expect(ran()).toBe(false);
      expect(messages()).toEqual([
        "echo: digest\n\nThis task's pre-script was not run. An admin denied this tool call.",
      ]);
    });

    it("'ask': a runner stopped while the approval waits starts neither the script nor the turn", async () => {
      policy('ask');
      const m = task('digest', `echo ran > ran.txt`);
      await waitFor(question, 10_000, 'the approval question');
      loop.stop();
      await running;
      expect(ran()).toBe(false);
      expect(queue.continuation('mock')).toBeNull();
      expect(messages()).toEqual([]);
      expect(ackOf(m.id)?.status).toBe('processing');
    });
  });

  it('a task without a script goes straight to the agent', async () => {
    const m = task('plain', null);
    await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
    expect(replies()).toEqual(['echo: plain']);
  });
});

describe('runShellScript', () => {
  const run = (script: string, timeoutMs: number) =>
    runShellScript(script, { cwd: dir, timeoutMs, maxBytes: 1024, log });

  it('times out, kills the process group and caps output', async () => {
    const t0 = Date.now();
    const r = await run('sleep 30 & echo started; sleep 30', 200);
    expect(r.timedOut).toBe(true);
    expect(r.stdout).toBe('started\n');
    expect(Date.now() - t0).toBeLessThan(5000);
    const big = await run('head -c 100000 /dev/zero | tr "\\0" x', 5000);
    expect(big.stdout).toBe(`${'x'.repeat(512)}\n[… ${100_000 - 1024} bytes left out …]\n${'x'.repeat(512)}`);
    expect(big.truncated).toBe(true);
  });

  it('takes the result when the shell exits, though a child that left its group holds the pipes', async () => {
    const t0 = Date.now();
    const r = await run('echo hi; setsid sleep 5 & sleep 0.2; echo started', 3000);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(r).toMatchObject({ code: 0, timedOut: false, stdout: 'hi\nstarted\n' });
  });

  it('a verdict printed after more output than the cap still keeps the agent asleep', async () => {
    const m = task('poll', `head -c 70000 /dev/zero | tr '\\0' x; echo; echo '{"wakeAgent": false}'`);
    await waitFor(() => ackOf(m.id)?.status === 'completed', 10_000, 'the task ack');
    expect(replies()).toEqual([]);
    expect(queue.continuation('mock')).toBeNull();
  });
  it('reads the last JSON line only', () => {
    expect(wakeAgentFalse('{"wakeAgent": false}\n')).toBe(true);
    expect(wakeAgentFalse('{"wakeAgent": false}\n{"wakeAgent": true}')).toBe(false);
    expect(wakeAgentFalse('{"wakeAgent": false}\nnot json')).toBe(true);
    expect(wakeAgentFalse('{"wakeAgent": false}\n[1,2]')).toBe(false);
    expect(wakeAgentFalse('')).toBe(false);
  });
});

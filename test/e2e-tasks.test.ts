/**
 * Scheduled tasks end to end through a real host process and a real bwrap sandbox running
 * the mock provider. The task actions are written into outbound.db exactly as the task tools
 * write them (a 'system' row through a RunnerQueue), while the sandbox's runner runs too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAdmin, type AdminClient } from '../src/cli/admin-client.js';
import { RunnerQueue } from '../src/runner/session-io.js';
import type { SystemAction } from '../src/shared/messages.js';
import { cli, startHostProc, tempHome, waitFor, type HostProc } from './support/cli.js';

describe('scheduled tasks through a real host', () => {
  let home: string;
  let host: HostProc;
  let client: AdminClient;
  let tool: RunnerQueue;
  const events: Array<Record<string, unknown>> = [];
  const routing = { channelType: 'terminal', platformId: 'main', threadId: null };

  beforeAll(async () => {
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn', POLYCLAW_TZ: 'Europe/Paris' });
    const r = cli(home, ['chat', '-m', 'hello', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [session] = cli(home, ['sessions', 'list', '--json']).json.result as Array<{ id: string }>;
    tool = new RunnerQueue(path.join(home, 'sessions', 'main', session!.id));
    client = (await connectAdmin(path.join(home, 'admin.sock')))!;
    client.onEvent((ev) => events.push(ev));
    await client.request('chat.attach', { platformId: 'main' });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    tool?.close();
    await host?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const act = (action: SystemAction) =>
    tool.commit([{ kind: 'system', inReplyTo: null, routing, content: { text: '', action } }], []);
  const said = () => events.map((e) => String(e.text ?? ''));

  it('a one-shot task fires and its reply reaches the terminal; the sandbox sees it in its mirror', async () => {
    const at = new Date(Date.now() + 1500).toISOString();
    act({
      type: 'schedule_task',
      task: { id: 'e2e-once', prompt: 'time for tea', at, cron: null, script: null },
    });
    await waitFor(
      () =>
        (
          tool.inbound.prepare(`SELECT status FROM tasks WHERE id = 'e2e-once'`).get() as
            { status: string } | undefined
        )?.status === 'active',
      10_000,
      'the task in the mirror',
    );
    await waitFor(() => said().some((t) => t.startsWith('echo: time for tea')), 20_000, 'the task reply');
    await waitFor(
      () =>
        (tool.inbound.prepare(`SELECT status FROM tasks WHERE id = 'e2e-once'`).get() as { status: string })
          .status === 'done',
      10_000,
      'the task to be done',
    );
  }, 40_000);

  it('a pre-script saying wakeAgent false completes the run without a reply', async () => {
    const before = events.length;
    const at = new Date(Date.now() + 1000).toISOString();
    act({
      type: 'schedule_task',
      task: { id: 'e2e-quiet', prompt: 'quiet check', at, cron: null, script: `echo '{"wakeAgent": false}'` },
    });
    const row = await waitFor(
      () =>
        tool.inbound
          .prepare(
            `SELECT id, status FROM messages_in WHERE series_id = 'e2e-quiet' AND status = 'completed'`,
          )
          .get(),
      20_000,
      'the gated run to complete',
    );
    expect(row).toBeTruthy();
    expect(events.slice(before).filter((e) => String(e.text ?? '').includes('quiet check'))).toEqual([]);
  }, 40_000);

  it('a refused action is told to the agent, which sees it with its next message', async () => {
    act({ type: 'cancel_task', taskId: 'no-such-task' });
    await waitFor(
      () =>
        tool.inbound
          .prepare(`SELECT 1 FROM messages_in WHERE kind = 'system' AND content LIKE '%no-such-task%'`)
          .get(),
      10_000,
      'the refusal notice',
    );
    const r = cli(home, ['chat', '-m', 'and now?', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.result.replies[0].text).toMatch(
      /cancel_task request \(seq \d+\) was refused: no task "no-such-task"/,
    );
  }, 40_000);
});

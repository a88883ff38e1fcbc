/**
 * The group's approval policy with the real Claude Code binary, through a real host, bwrap
 * sandbox and gateway, against the fake Anthropic server: under 'ask' a Bash call waits for an
 * admin's answer in the chat (Allow runs it, Deny refuses it with a reason the model reads);
 * under 'deny' it is refused without asking; our own MCP tools never ask.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cliAsync,
  createEndpointGroup,
  startHostProc,
  tempHome,
  waitFor,
  type CliResult,
  type HostProc,
} from './support/cli.js';
import { startFakeAnthropic, type FakeAnthropic } from './support/fake-anthropic.js';

describe('claude under the approval policies', () => {
  let fake: FakeAnthropic;
  let home: string;
  let host: HostProc;
  const env = { POLYCLAW_LOG_LEVEL: 'warn' };
  const chat = (group: string, text: string) =>
    cliAsync(home, ['chat', '--group', group, '-m', text, '--json', '--timeout', '25'], env);
  const replies = (r: CliResult) =>
    (r.json?.result?.replies ?? []).map((x: { text: string }) => x.text) as string[];
  /** The open approval question of a group's terminal chat, read from the central DB. */
  const openQuestion = (group: string) => {
    const db = new Database(path.join(home, 'polyclaw.db'), { fileMustExist: true });
    try {
      return db
        .prepare(
          `SELECT question_id FROM pending_questions WHERE status = 'open' AND admin_only = 1 AND platform_id = ?`,
        )
        .get(group) as { question_id: string } | undefined;
    } finally {
      db.close();
    }
  };
  const file = (group: string, name: string) => path.join(home, 'groups', group, name);

  beforeAll(async () => {
    fake = await startFakeAnthropic();
    home = tempHome('polyclaw-claude-approval-');
    const endpoint = { name: 'fake-claude', baseUrl: fake.url, secret: 'sk-ant-test', kind: 'anthropic' };
    await createEndpointGroup(home, { name: 'guarded', provider: 'claude', approval: 'ask' }, endpoint);
    await createEndpointGroup(
      home,
      { name: 'locked', provider: 'claude', approval: 'deny' },
      { ...endpoint, name: 'fake-claude-2' },
    );
    host = await startHostProc(home, env);
  }, 30_000);
  afterEach(() => {
    expect(fake.maxLoopStallMs(), 'the test process blocked its event loop').toBeLessThan(1000);
  });
  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("'ask': the Bash call waits for the admin; Allow runs it", async () => {
    const turn = chat('guarded', 'BASH[touch /workspace/agent/allowed.txt && echo ran-it]');
    await waitFor(() => openQuestion('guarded'), 30_000, 'the approval question');
    expect(fs.existsSync(file('guarded', 'allowed.txt'))).toBe(false);
    const answer = await chat('guarded', '1');
    expect(answer.json?.result?.status, answer.stdout + answer.stderr).toBe('answered');
    const r = await turn;
    const out = replies(r);
    expect(out[0], r.stdout).toMatch(
      /Approval needed[\s\S]*Bash[\s\S]*touch \/workspace\/agent\/allowed\.txt/,
    );
    expect(out.at(-1)).toBe('TOOL RESULT SEEN: ran-it');
    expect(fs.existsSync(file('guarded', 'allowed.txt'))).toBe(true);
  }, 60_000);

  it("'ask': Deny refuses the call and the model reads why", async () => {
    const turn = chat('guarded', 'BASH[touch /workspace/agent/denied.txt]');
    await waitFor(() => openQuestion('guarded'), 30_000, 'the approval question');
    await chat('guarded', 'Deny');
    const r = await turn;
    expect(replies(r).at(-1), r.stdout).toMatch(/^TOOL RESULT SEEN: .*An admin denied this tool call\./);
    expect(fs.existsSync(file('guarded', 'denied.txt'))).toBe(false);
  }, 60_000);

  it("'ask': our own MCP tools run without a question", async () => {
    const r = await chat('guarded', 'SEND[no approval needed]');
    expect(replies(r), r.stdout).toEqual(['no approval needed']);
  }, 60_000);

  it("'deny': the Bash call is refused without asking, whatever settings the agent planted", async () => {
    // Settings in the agent's own folders that would grant Bash (permissions.allow outranks the
    // policy): the user settings of its config dir and the project settings of its folder.
    const grant = JSON.stringify({ permissions: { allow: ['Bash'] } });
    const configDir = path.join(home, 'provider-state', 'claude', 'locked', 'config');
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(path.join(configDir, 'settings.json'), grant);
    fs.mkdirSync(file('locked', '.claude'), { recursive: true });
    fs.writeFileSync(file('locked', '.claude/settings.json'), grant);
    const r = await chat('locked', 'BASH[touch /workspace/agent/never.txt]');
    const out = replies(r);
    expect(
      out.some((t) => /Approval needed/.test(t)),
      r.stdout,
    ).toBe(false);
    expect(out.at(-1)).toMatch(/^TOOL RESULT SEEN: Permission to use Bash has been denied/);
    expect(fs.existsSync(file('locked', 'never.txt'))).toBe(false);
  }, 60_000);
});

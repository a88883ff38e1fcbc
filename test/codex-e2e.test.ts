/**
 * The codex provider end to end: the real CLI, a real host, a real bwrap sandbox running the real
 * `codex app-server`, and the gateway's /endpoints/NAME route to a vault entry whose base URL is
 * the fake Responses server. The fake must see the vault's key (injected by the gateway).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, createEndpointGroup, startHostProc, tempHome, type HostProc } from './support/cli.js';
import { startFakeResponses, type FakeResponses } from './support/fake-responses.js';

const SECRET = 'sk-codex-e2e-secret-77c1';

describe('codex group through the gateway in a bwrap sandbox', () => {
  let home: string;
  let host: HostProc;
  let fake: FakeResponses;

  beforeAll(async () => {
    fake = await startFakeResponses();
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn', POLYCLAW_RETRY_BASE_MS: '100' });
    await createEndpointGroup(
      home,
      { name: 'cx', provider: 'codex', effort: 'low' },
      { name: 'local', baseUrl: `${fake.url}/v1`, secret: SECRET },
    );
  }, 60_000);
  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('answers through the endpoint route with the vault key injected by the gateway', async () => {
    fake.script({ text: 'hello from codex', deltas: ['hello ', 'from codex'] });
    // The fake model lives in this process: the CLI must not block its event loop (no spawnSync).
    const r = await cliAsync(home, ['chat', '--group', 'cx', '-m', 'hello codex', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['hello from codex']);
    const req = fake.requests.at(-1)!;
    expect(req.url).toBe('/v1/responses');
    expect(req.headers.authorization).toBe(`Bearer ${SECRET}`);
    const state = path.join(home, 'provider-state/codex/cx');
    expect(fs.readFileSync(path.join(state, 'home/config.toml'), 'utf8')).toContain(
      'model_reasoning_effort = "low"',
    );
    expect(fs.readFileSync(path.join(state, 'AGENTS.md'), 'utf8')).toContain('# Polyclaw runtime');
    // The composed instructions reached the model (AGENTS.md mounted read-only in the group folder).
    expect(JSON.stringify(req.body)).toContain('Polyclaw runtime');
  }, 70_000);

  it("delivers the agent's send_message MCP tool call to the terminal", async () => {
    fake.script(
      { mcp: { server: 'polyclaw', tool: 'send_message', args: { text: 'hi from the codex tool' } } },
      { text: '' },
    );
    const r = await cliAsync(home, ['chat', '--group', 'cx', '-m', 'use the tool', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toContain('hi from the codex tool');
    const tools = JSON.stringify(fake.requests.at(-2)!.body.tools);
    expect(tools).toContain('mcp__polyclaw');
  }, 70_000);
});

/**
 * The opencode provider end to end: the real CLI, a real host, a real bwrap sandbox running the
 * real `opencode serve`, and the gateway's /endpoints/NAME route to a vault entry whose base URL
 * is the fake Chat Completions server. The fake must see the vault's key (injected by the
 * gateway); nothing inside the sandbox may hold it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, createEndpointGroup, startHostProc, tempHome, type HostProc } from './support/cli.js';
import { startFakeChat, type FakeChat } from './support/fake-chat-completions.js';
import { GROUP_FILE } from '../src/runner/providers/opencode-settings.js';

const SECRET = 'sk-local-e2e-secret-4f9a';

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
        continue;
      throw err;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const walk = (p: number) => (children.get(p) ?? []).forEach((c) => (out.push(c), walk(c)));
  walk(pid);
  return out;
}

describe('opencode group through the gateway in a bwrap sandbox', () => {
  let home: string;
  let host: HostProc;
  let fake: FakeChat;

  beforeAll(async () => {
    fake = await startFakeChat();
    home = tempHome();
    host = await startHostProc(home, { POLYCLAW_LOG_LEVEL: 'warn', POLYCLAW_RETRY_BASE_MS: '100' });
    await createEndpointGroup(
      home,
      { name: 'oc', provider: 'opencode' },
      { name: 'local', baseUrl: `${fake.url}/v1`, secret: SECRET },
    );
  }, 60_000);
  afterAll(async () => {
    await host?.stop();
    await fake?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  // cliAsync, never the sync cli(): the fake model lives in this process and must keep answering.
  it('answers through the endpoint route with the vault key injected by the gateway', async () => {
    const r = await cliAsync(home, [
      'chat',
      '--group',
      'oc',
      '-m',
      'hello opencode',
      '--json',
      '--timeout',
      '60',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.json.result.replies.map((x: { text: string }) => x.text)).toEqual(['echo: hello opencode']);
    const req = fake.requests.find((x) => x.body.tools?.length)!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${SECRET}`);
  }, 100_000);

  it("delivers the agent's send_message MCP tool call to the terminal", async () => {
    const r = await cliAsync(home, [
      'chat',
      '--group',
      'oc',
      '-m',
      'SEND: hi from the tool',
      '--json',
      '--timeout',
      '60',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const texts = r.json.result.replies.map((x: { text: string }) => x.text);
    // The tool answered the chat, so the final text is not sent again.
    expect(texts).toEqual(['hi from the tool']);
    const toolNames = fake.requests[fake.requests.length - 1]!.body.tools!.map((t) => t.function.name);
    expect(toolNames).toContain('polyclaw_send_message');
  }, 70_000);

  it('a group setting the provider refuses fails the message at once with the reason, no retries', async () => {
    await createEndpointGroup(
      home,
      { name: 'ocbad', provider: 'opencode' },
      { name: 'localbad', baseUrl: `${fake.url}/v1`, secret: SECRET },
    );
    const folder = path.join(home, 'groups', 'ocbad');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, GROUP_FILE), JSON.stringify({ approval: 'ask' }));
    const r = await cliAsync(home, ['chat', '--group', 'ocbad', '-m', 'hello', '--json', '--timeout', '60']);
    expect(r.code, r.stderr + r.stdout).toBe(1);
    expect(r.json.result.status).toBe('failed');
    expect(r.json.result.replies[0].text).toMatch(
      /could not process your message: .*"approval" is no longer read from the group folder/,
    );
    expect(host.stderr()).not.toMatch(/attempt failed; retrying/);
  }, 100_000);

  it('runs opencode inside the sandbox with no key-like variable and no secret in its environment', () => {
    const sessions = cli(home, ['sessions', 'list', '--json']).json.result;
    const pid = sessions.find(
      (s: { agentGroup?: string; group?: string }) => (s.agentGroup ?? s.group) === 'oc',
    )?.sandbox?.pid as number;
    expect(pid).toBeGreaterThan(0);
    const oc = descendants(pid).filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('serve');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    });
    expect(oc.length).toBeGreaterThan(0);
    for (const p of oc) {
      const environ = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').filter(Boolean);
      const names = environ.map((e) => e.slice(0, e.indexOf('=')));
      expect(names.filter((n) => /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i.test(n))).toEqual([]);
      expect(environ.join('\n')).not.toContain(SECRET);
    }
  });
});

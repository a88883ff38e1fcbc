/**
 * The tool server's fast start: the front answers the startup exchange from the recorded
 * manifest exactly as the real server would, and everything else reaches the real server once
 * it is loaded, in order, with the client's initialize replayed to it and answered only once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionQueue } from '../src/host/session-queue.js';
import { toolRegistry } from '../src/runner/tools/index.js';
import { recordStartup } from '../src/runner/tools/record-startup.js';
import { toolsMain } from '../src/runner/tools/server.js';
import { loadManifest, toolsFront, type StartupManifest } from '../src/runner/tools/startup.js';
import { sessionMeta } from './support/meta.js';
import { tempHome } from './support/cli.js';

type Serve = (env: NodeJS.ProcessEnv, stdin: PassThrough, stdout: PassThrough) => Promise<number>;

/** Runs a server on in-memory stdio; send() writes a message, next(id) awaits the answer to id. */
function session(serve: Serve, env: NodeJS.ProcessEnv) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const got: Array<Record<string, unknown>> = [];
  let wake: (() => void) | null = null;
  let buf = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      got.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const done = serve(env, stdin, stdout);
  return {
    got,
    send: (m: object) => stdin.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\n'),
    rawLine: (line: string) => stdin.write(line + '\n'),
    async next(id: string | number) {
      for (let i = 0; i < 400; i++) {
        const m = got.find((x) => x.id === id);
        if (m) return m;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 25);
        });
      }
      throw new Error(`no answer to ${id}`);
    },
    async end() {
      stdin.end();
      await done;
    },
  };
}

/** A loader of the real server that waits until `release()`: requests meanwhile meet the front alone. */
function gatedLoad() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slowLoad = async () => {
    await gate;
    return import('../src/runner/tools/server.js');
  };
  return { slowLoad, release };
}

const INIT = (version: string) => ({
  id: 0,
  method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'test', version: '1' } },
});

describe('tool server fast start', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let manifest: StartupManifest;

  beforeAll(async () => {
    dir = tempHome('polyclaw-tools-start-');
    const host = new SessionQueue(path.join(dir, 'session'));
    host.setMeta(sessionMeta(), [
      { name: 'team', kind: 'chat', routing: { channelType: 'slack', platformId: 'C1', threadId: null } },
    ]);
    host.close();
    fs.mkdirSync(path.join(dir, 'agent'));
    env = { POLYCLAW_SESSION_DIR: path.join(dir, 'session'), POLYCLAW_AGENT_DIR: path.join(dir, 'agent') };
    manifest = await recordStartup();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers the whole startup exchange and a tool call exactly as the real server does', async () => {
    const script = async (s: ReturnType<typeof session>) => {
      s.send({ id: 'probe', method: 'server/discover', params: {} });
      s.send(INIT('2025-06-18'));
      s.send({ method: 'notifications/initialized' });
      s.send({ id: 1, method: 'tools/list', params: {} });
      s.send({ id: 2, method: 'tools/call', params: { name: 'list_destinations', arguments: {} } });
      s.send({ id: 3, method: 'ping' });
      const out = [];
      for (const id of ['probe', 0, 1, 2, 3]) out.push(await s.next(id));
      await s.end();
      return out;
    };
    const plain = await script(session((e, i, o) => toolsMain(e, i, o), env));
    const front = session((e, i, o) => toolsFront(e, i, o, manifest), env);
    expect(await script(front)).toEqual(plain);
    expect(front.got.filter((m) => m.id === 0)).toHaveLength(1); // the replayed initialize is not answered twice
    expect(JSON.stringify(plain[3])).toContain('team');
  });

  it('a request that comes before the real server is loaded waits for it, in order', async () => {
    const { slowLoad, release } = gatedLoad();
    const s = session((e, i, o) => toolsFront(e, i, o, manifest, slowLoad), env);
    s.send(INIT('1999-01-01'));
    s.send({ method: 'notifications/initialized' });
    s.send({ id: 1, method: 'tools/call', params: { name: 'list_destinations', arguments: {} } });
    s.send({ id: 2, method: 'tools/list', params: {} });
    expect(await s.next(0)).toMatchObject({ result: { protocolVersion: manifest.latest } });
    expect(await s.next(2)).toMatchObject({ result: { tools: expect.any(Array) } }); // from the manifest
    expect(s.got.some((m) => m.id === 1)).toBe(false); // the tool call waits for the server
    release();
    expect(await s.next(1)).toMatchObject({ result: { content: [{ type: 'text' }] } });
    await s.end();
    expect(s.got.filter((m) => m.id === 0)).toHaveLength(1);
  });

  it('a server that cannot start answers every request with the reason and ends with it', async () => {
    const broken = async () => ({
      ...(await import('../src/runner/tools/server.js')),
      serve: async () => {
        throw new Error('inbound.db is missing');
      },
    });
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const lines: Array<Record<string, unknown>> = [];
    stdout.setEncoding('utf8');
    stdout.on('data', (d: string) => {
      for (const l of d.split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    const done = toolsFront(env, stdin, stdout, manifest, broken);
    stdin.write(JSON.stringify({ jsonrpc: '2.0', ...INIT('2025-06-18') }) + '\n');
    stdin.write(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_destinations' } }) +
        '\n',
    );
    await expect(done).rejects.toThrow('inbound.db is missing');
    expect(lines.find((m) => m.id === 1)).toMatchObject({
      error: { message: expect.stringContaining('could not start: inbound.db is missing') },
    });
  });

  it('a line of JSON that is no message (null, a number) is ignored; the front goes on', async () => {
    const { slowLoad, release } = gatedLoad();
    const s = session((e, i, o) => toolsFront(e, i, o, manifest, slowLoad), env);
    s.rawLine('null');
    s.rawLine('42');
    s.send({ id: 5, method: 'ping' });
    expect(await s.next(5)).toMatchObject({ result: {} });
    release();
    await s.end();
  });

  it('without a manifest it is the plain server', async () => {
    const s = session((e, i, o) => toolsFront(e, i, o, null), env);
    s.send(INIT('2025-06-18'));
    expect(await s.next(0)).toMatchObject({ result: { serverInfo: { name: 'polyclaw' } } });
    await s.end();
  });

  it('the build recorded a manifest with every registered tool', () => {
    const built = loadManifest(
      path.resolve(import.meta.dirname, '../dist/runner/tools/startup-manifest.json'),
    );
    expect(built, 'run npm run build first').not.toBeNull();
    const names = (built!.toolsList.tools as Array<{ name: string }>).map((t) => t.name).sort();
    expect(names).toEqual([...toolRegistry.names()].sort());
  });
});

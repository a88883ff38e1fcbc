/**
 * `polyclaw tools` with a fast start. An agent CLI waits for its MCP servers before its first
 * model call, and loading the MCP SDK and the tools costs ~0.4 s, paid at every agent start
 * (the first message of each session). So this front, which imports nothing heavy, answers the
 * startup exchange itself from a manifest recorded from the real server at build time
 * (record-startup.ts), and loads the real server meanwhile. Invariants:
 *  - the front answers only what it holds the real server's answer to: `server/discover`,
 *    `initialize` (protocol version negotiated as the SDK does), `tools/list` and `ping`;
 *    every other message waits, in order, for the real server;
 *  - the real server is given the client's `initialize` and `initialized` first, so its state
 *    is that of a server that saw the whole session; its answer to that replayed initialize
 *    is dropped (the client had it already);
 *  - stdout carries protocol only; with no manifest (a build that did not record one) this is
 *    exactly the plain server.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { lineSplitter } from '../../shared/lines.js';

export interface StartupManifest {
  latest: string;
  supported: string[];
  /** The initialize result, its protocolVersion aside. */
  initialize: Record<string, unknown>;
  toolsList: Record<string, unknown>;
  /** The server's response to a `server/discover` probe, its id aside. */
  discover: Record<string, unknown>;
}

export const MANIFEST_FILE = path.join(import.meta.dirname, 'startup-manifest.json');

export function loadManifest(file = MANIFEST_FILE): StartupManifest | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as StartupManifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

type Id = string | number;
type Msg = { id?: Id; method?: string; params?: Record<string, unknown> } & Record<string, unknown>;

/** The transport the real server gets once loaded: lines in from the front, answers out to stdout. */
class FrontTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Requests the front answered already, replayed for the server's state: their answers are dropped. */
  readonly replayed = new Set<Id>();

  constructor(private readonly out: (m: unknown) => void) {}

  async start(): Promise<void> {}
  async send(message: JSONRPCMessage): Promise<void> {
    const id = (message as Msg).id;
    const isResponse = 'result' in message || 'error' in message;
    if (isResponse && id !== undefined && this.replayed.delete(id)) return;
    this.out(message);
  }
  async close(): Promise<void> {
    this.onclose?.();
  }
}

export async function toolsFront(
  env: NodeJS.ProcessEnv = process.env,
  stdin: Readable = process.stdin,
  stdout: Writable = process.stdout,
  manifest: StartupManifest | null = loadManifest(),
  load: () => Promise<typeof import('./server.js')> = () => import('./server.js'),
): Promise<number> {
  if (!manifest) return (await load()).toolsMain(env, stdin, stdout);
  const write = (m: unknown) => void stdout.write(JSON.stringify(m) + '\n');
  const transport = new FrontTransport(write);
  const waiting: Msg[] = [];
  let live = false;
  type Served = Awaited<ReturnType<(typeof import('./server.js'))['serve']>>;
  let loading: Promise<Served | null> | null = null;

  // A server that cannot start (no inbound.db, a folder it cannot write) must not look healthy:
  // every request waiting for it, and every later one, gets an error reply, and the front ends
  // with the reason (one line from `polyclaw`), as the plain server's start would.
  let startError: Error | null = null;
  let gaveUp!: (err: Error) => void;
  const startFailed = new Promise<Error>((resolve) => (gaveUp = resolve));
  const refuse = (m: Msg) => {
    if (m.id === undefined || transport.replayed.has(m.id)) return;
    write({
      jsonrpc: '2.0',
      id: m.id,
      error: { code: -32603, message: `the Polyclaw tool server could not start: ${startError!.message}` },
    });
  };
  const startServer = () =>
    (loading ??= load()
      .then(async ({ serve }) => {
        const s = await serve(transport, env);
        live = true;
        for (const m of waiting.splice(0)) transport.onmessage?.(m as JSONRPCMessage);
        return s;
      })
      .catch((err: unknown) => {
        startError = err instanceof Error ? err : new Error(String(err));
        for (const m of waiting.splice(0)) refuse(m);
        gaveUp(startError);
        return null;
      }));

  const answer = (m: Msg): boolean => {
    if (m.id === undefined || typeof m.method !== 'string') return false;
    switch (m.method) {
      case 'initialize': {
        const asked = m.params?.protocolVersion;
        const protocolVersion =
          typeof asked === 'string' && manifest.supported.includes(asked) ? asked : manifest.latest;
        write({ jsonrpc: '2.0', id: m.id, result: { protocolVersion, ...manifest.initialize } });
        transport.replayed.add(m.id);
        waiting.push(m);
        void startServer();
        return true;
      }
      case 'tools/list':
        if (m.params?.cursor !== undefined) return false;
        write({ jsonrpc: '2.0', id: m.id, result: manifest.toolsList });
        return true;
      case 'ping':
        write({ jsonrpc: '2.0', id: m.id, result: {} });
        return true;
      case 'server/discover':
        write({ jsonrpc: '2.0', id: m.id, ...manifest.discover });
        return true;
      default:
        return false;
    }
  };

  const onLine = (line: string) => {
    let m: Msg;
    try {
      m = JSON.parse(line) as Msg;
    } catch (err) {
      transport.onerror?.(err as Error);
      return;
    }
    // `null`, a number, an array: no message at all (the SDK's transport would refuse them too).
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      transport.onerror?.(new Error('a line that is not a JSON-RPC message was ignored'));
      return;
    }
    if (startError) refuse(m);
    else if (live) transport.onmessage?.(m as JSONRPCMessage);
    else if (!answer(m)) {
      waiting.push(m);
      void startServer();
    }
  };

  stdin.setEncoding('utf8');
  stdin.on('data', lineSplitter(onLine));
  const ended = new Promise<null>((resolve) => stdin.once('end', () => resolve(null)));
  const failure = await Promise.race([ended, startFailed]);
  if (failure) {
    stdin.destroy(); // nothing more to read: the process may end
    throw failure;
  }
  const served = (await loading) as Served | null;
  if (served) await served.close();
  return 0;
}

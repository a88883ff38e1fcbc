/**
 * The sandbox's one OpenCode server, shared by every query of the session: the tap, the
 * `opencode serve` process, an SDK client and one event subscription fanned out to listeners.
 * Invariants:
 *  - ensure() restarts the server when what it would be started with changed (config, env,
 *    instruction files), and returns only once the event stream is connected, so no event of
 *    a prompt sent afterwards can be missed;
 *  - reset() / close() kill the server's whole process group; listeners get a synthetic
 *    `polyclaw.server.exit` event when the server dies under them;
 *  - the event stream is the only way a turn learns anything, so a server whose stream ended
 *    or failed after connecting (OpenCode closes it when its instance is disposed; the SDK,
 *    with retries off, ends it quietly on a network error) is unusable: listeners get a
 *    synthetic `polyclaw.stream.closed` event (the running turn fails at once, retryable, and
 *    resets the server), usable() turns false, and the next ensure() restarts the server.
 *    Restarting rather than resubscribing: events sent while no stream was open are lost for
 *    good, and a fresh server is the one state known to be consistent;
 *  - the tap outlives restarts, so the config (which names the tap's URL) stays stable.
 */
import type { OpencodeClient } from '@opencode-ai/sdk/v2/client';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import type { StdioServer } from '../tools/config.js';
import { buildConfig, configKey, prepareStateDirs, serverEnv, stateDirs } from './opencode-config.js';
import type { OcEvent } from './opencode-events.js';
import { OpencodeServer, type Spawner } from './opencode-server.js';
import type { OpencodeSettings } from './opencode-settings.js';
import { startTap, type Tap } from './opencode-tap.js';

export const SERVER_EXIT = 'polyclaw.server.exit';
export const STREAM_CLOSED = 'polyclaw.stream.closed';
type Listener = (ev: OcEvent) => void;

export interface Live {
  client: OpencodeClient;
  server: OpencodeServer;
}

/** `closed`: the event stream ended after connecting; the server can run no further turn. */
type LiveState = Live & { key: string; stream: AbortController; closed: boolean };

export class OpencodeRuntime {
  private tap: Tap | null = null;
  private live: LiveState | null = null;
  private starting: Promise<Live> | null = null;
  private listeners = new Set<Listener>();
  private activityListeners = new Set<() => void>();

  constructor(
    private readonly d: {
      settings: OpencodeSettings;
      cwd: string;
      tools: StdioServer;
      runnerEnv: Readonly<Record<string, string | undefined>>;
      log: Logger;
      spawn?: Spawner;
      /** What the client talks HTTP with (default: the global fetch). */
      fetch?: typeof fetch;
    },
  ) {}

  get server(): OpencodeServer | null {
    return this.live?.server ?? null;
  }

  /** Called for every byte the model endpoint sends through the tap. */
  onModelActivity(fn: () => void): () => void {
    this.activityListeners.add(fn);
    return () => this.activityListeners.delete(fn);
  }

  /** True while `client` belongs to the current server and its event stream is open. */
  usable(client: OpencodeClient): boolean {
    const l = this.live;
    return !!l && l.client === client && l.server.alive && !l.closed;
  }

  listen(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async ensure(instructions: string[]): Promise<Live> {
    while (this.starting)
      await this.starting.then(
        () => undefined,
        () => undefined,
      );
    this.tap ??= await startTap({
      target: this.d.settings.gatewayUrl,
      socketPath: this.d.settings.gatewaySocket,
      token: this.d.settings.gatewayToken,
      onActivity: () => this.activityListeners.forEach((f) => f()),
      log: this.d.log,
    });
    const dirs = this.live ? stateDirs(this.d.settings.stateDir) : prepareStateDirs(this.d.settings.stateDir);
    const config = buildConfig({
      settings: this.d.settings,
      tapUrl: this.tap.url,
      tools: this.d.tools,
      instructions,
    });
    const env = serverEnv({ dirs, config, runnerEnv: this.d.runnerEnv });
    const key = configKey(env, instructions);
    if (this.live && this.live.key === key && this.usable(this.live.client)) return this.live;
    if (this.live) {
      const l = this.live;
      this.d.log.info('restarting opencode server', {
        reason: !l.server.alive ? 'server exited' : l.closed ? 'event stream closed' : 'config changed',
      });
      await this.reset();
    }
    this.starting = this.start(env, key);
    try {
      return await this.starting;
    } finally {
      this.starting = null;
    }
  }

  private async start(env: Record<string, string>, key: string): Promise<Live> {
    const server = await OpencodeServer.start({
      binary: this.d.settings.binary,
      cwd: this.d.cwd,
      env,
      timeoutMs: this.d.settings.startTimeoutMs,
      log: this.d.log,
      spawn: this.d.spawn,
    });
    // Loaded on first use (~50 ms): a runner of another provider never pays for it.
    const { createOpencodeClient } = await import('@opencode-ai/sdk/v2/client');
    const client = createOpencodeClient({
      baseUrl: server.url,
      directory: this.d.cwd,
      ...(this.d.fetch ? { fetch: this.d.fetch } : {}),
    });
    const stream = new AbortController();
    const live: LiveState = { client, server, key, stream, closed: false };
    this.live = live;
    try {
      await this.subscribe(live);
    } catch (err) {
      await this.reset();
      throw err;
    }
    void server.onExit.then((code) => {
      if (this.live === live) {
        this.d.log.warn('opencode server exited', { code });
        this.live = null;
      }
      live.stream.abort();
      this.emit({ type: SERVER_EXIT, properties: { code } });
    });
    return live;
  }

  /**
   * Subscribe and resolve once `server.connected` arrived; events then flow to listeners. An end
   * before that rejects; an end after it (not ours: reset() aborts first) closes the server.
   */
  private subscribe(live: LiveState): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      const timer = setTimeout(
        () => reject(new Error('opencode event stream did not connect')),
        this.d.settings.startTimeoutMs,
      );
      const run = async () => {
        const sub = await live.client.event.subscribe({ directory: this.d.cwd }, {
          signal: live.stream.signal,
          sseMaxRetryAttempts: 0,
        } as never);
        for await (const ev of sub.stream as AsyncIterable<OcEvent>) {
          if (ev.type === 'server.connected') {
            connected = true;
            clearTimeout(timer);
            resolve();
          }
          this.emit(ev);
        }
      };
      const ended = (err: unknown) => {
        clearTimeout(timer);
        const ours = live.stream.signal.aborted;
        if (!ours && err === null) this.d.log.warn('opencode event stream ended', { connected });
        else if (!ours)
          this.d.log.warn('opencode event stream failed', { connected, err: errorMessage(err) });
        if (!connected) reject(err instanceof Error ? err : new Error('opencode event stream ended'));
        else if (!ours) this.streamClosed(live);
      };
      run().then(
        () => ended(null),
        (err: unknown) => ended(err ?? new Error('unknown error')),
      );
    });
  }

  /** The stream of a connected server ended: nothing more of it can be heard. */
  private streamClosed(live: LiveState): void {
    live.closed = true;
    live.stream.abort();
    if (this.live === live) this.emit({ type: STREAM_CLOSED, properties: {} });
  }

  private emit(ev: OcEvent): void {
    for (const fn of [...this.listeners]) fn(ev);
  }

  /** Stop the server (whole process group); the next ensure() starts a fresh one. */
  async reset(): Promise<void> {
    const live = this.live;
    this.live = null;
    if (!live) return;
    live.stream.abort();
    await live.server.stop();
  }

  async close(): Promise<void> {
    await this.reset();
    await this.tap?.close();
    this.tap = null;
  }

  /** For process exit, where nothing can be awaited. */
  killNow(): void {
    this.live?.server.killNow();
  }
}

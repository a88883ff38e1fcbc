/**
 * The sandbox's one OpenCode server, shared by every query of the session: the tap, the
 * `opencode serve` process, an SDK client and one event subscription fanned out to listeners.
 * Invariants:
 *  - ensure() restarts the server when what it would be started with changed (config, env,
 *    instruction files), and returns only once the event stream is connected, so no event of
 *    a prompt sent afterwards can be missed;
 *  - reset() / close() kill the server's whole process group; listeners get a synthetic
 *    `polyclaw.server.exit` event when the server dies under them;
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
type Listener = (ev: OcEvent) => void;

export interface Live {
  client: OpencodeClient;
  server: OpencodeServer;
}

export class OpencodeRuntime {
  private tap: Tap | null = null;
  private live: (Live & { key: string; stream: AbortController }) | null = null;
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
    if (this.live && this.live.key === key && this.live.server.alive) return this.live;
    if (this.live) {
      this.d.log.info('restarting opencode server', {
        reason: this.live.server.alive ? 'config changed' : 'server exited',
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
    const client = createOpencodeClient({ baseUrl: server.url, directory: this.d.cwd });
    const stream = new AbortController();
    const live = { client, server, key, stream };
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

  /** Subscribe and resolve once `server.connected` arrived; events then flow to listeners. */
  private subscribe(live: Live & { stream: AbortController }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
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
            clearTimeout(timer);
            resolve();
          }
          this.emit(ev);
        }
      };
      run().then(
        () => {
          clearTimeout(timer);
          if (!live.stream.signal.aborted) this.d.log.warn('opencode event stream ended');
          reject(new Error('opencode event stream ended'));
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (!live.stream.signal.aborted)
            this.d.log.warn('opencode event stream failed', { err: errorMessage(err) });
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
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

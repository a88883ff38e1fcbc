/**
 * One `opencode serve` process: started on a loopback port we choose (its `--port=0` always
 * binds 4096), ready when it prints its "listening" line, in its own process group so stop()
 * kills it and everything it spawned (MCP servers, shells) as a whole. No process of the group
 * may outlive stop(): after SIGTERM and a grace period the group gets SIGKILL, and stop()
 * returns only once the leader has exited.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import type { Logger } from '../../shared/log.js';

export type Spawner = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

export class OpencodeStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpencodeStartError';
  }
}

/** A free loopback port: bind :0, read it, release it (the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const LISTENING = /opencode server listening on (http:\/\/\S+)/;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    // ESRCH: the whole group is already gone, which is what we want.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export class OpencodeServer {
  readonly url: string;
  readonly pid: number;
  private exitedP: Promise<number | null>;
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    url: string,
    private readonly log: Logger,
  ) {
    this.url = url;
    this.pid = child.pid!;
    this.exitedP = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
      else child.once('exit', (code) => r(code));
    });
    void this.exitedP.then(() => (this.exited = true));
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Resolves when the server process exits (crash or stop). */
  get onExit(): Promise<number | null> {
    return this.exitedP;
  }

  static async start(opts: {
    binary: string;
    cwd: string;
    env: Record<string, string>;
    timeoutMs: number;
    log: Logger;
    spawn?: Spawner;
    port?: number;
  }): Promise<OpencodeServer> {
    const port = opts.port ?? (await freePort());
    const spawn = opts.spawn ?? nodeSpawn;
    const child = spawn(opts.binary, ['serve', `--port=${port}`, '--hostname=127.0.0.1'], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new OpencodeStartError(`opencode serve was not ready after ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        if (child.pid) killGroup(child.pid, 'SIGKILL');
        reject(e);
      };
      child.once('error', (e) => fail(new OpencodeStartError(`cannot start opencode: ${e.message}`)));
      child.once('exit', (code, signal) =>
        fail(
          new OpencodeStartError(
            `opencode serve exited before it was ready (code ${code ?? signal}): ${(err || out).trim().slice(-400)}`,
          ),
        ),
      );
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = LISTENING.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!.replace(/\/$/, ''));
        }
      });
      child.stderr!.on('data', (d: Buffer) => {
        err = (err + d.toString()).slice(-4000);
      });
    });
    child.removeAllListeners('exit');
    // Keep draining its output so it never blocks on a full pipe; log only at debug.
    child.stdout!.removeAllListeners('data');
    child.stderr!.removeAllListeners('data');
    child.stdout!.on('data', (d: Buffer) =>
      opts.log.debug('opencode stdout', { text: d.toString().slice(0, 500) }),
    );
    child.stderr!.on('data', (d: Buffer) =>
      opts.log.debug('opencode stderr', { text: d.toString().slice(0, 500) }),
    );
    opts.log.info('opencode server ready', { url, pid: child.pid });
    return new OpencodeServer(child, url, opts.log);
  }

  /** Kill the whole process group: SIGTERM, then SIGKILL after graceMs; resolves once the leader is gone. */
  async stop(graceMs = 2_000): Promise<void> {
    killGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exitedP;
    clearTimeout(timer);
    // Stragglers that ignored SIGTERM (shells, MCP servers) go with the group.
    killGroup(this.pid, 'SIGKILL');
    this.log.info('opencode server stopped', { pid: this.pid });
  }

  /** Synchronous last resort for process exit: no awaiting possible there. */
  killNow(): void {
    killGroup(this.pid, 'SIGKILL');
  }
}

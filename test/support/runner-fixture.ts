/**
 * One session's two halves in a temp dir for in-process runner-loop tests: the host's queue
 * (with published metadata), the runner's queue and its doorbell, and the loop once started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SessionQueue } from '../../src/host/session-queue.js';
import { RunnerLoop, type LoopDeps } from '../../src/runner/loop.js';
import { RunnerQueue } from '../../src/runner/session-io.js';
import { Doorbell } from '../../src/shared/doorbell.js';
import { createLogger } from '../../src/shared/log.js';
import type { SessionMeta } from '../../src/shared/messages.js';
import { bellsDir } from '../../src/shared/session-db.js';
import { tempHome } from './cli.js';

export class RunnerFixture {
  readonly log = createLogger({ level: 'error' });
  readonly dir: string;
  readonly host: SessionQueue;
  readonly queue: RunnerQueue;
  readonly doorbell: Doorbell;
  private loop: RunnerLoop | null = null;
  private running: Promise<void> | null = null;

  constructor(prefix: string, meta: SessionMeta) {
    this.dir = tempHome(prefix);
    this.host = new SessionQueue(path.join(this.dir, 'session'));
    this.host.setMeta(meta, []);
    this.queue = new RunnerQueue(this.host.dir);
    this.doorbell = new Doorbell(bellsDir(this.host.dir), this.log, (name) => name === 'inbound.bell');
    this.doorbell.start();
  }

  /** Start the loop on this session (queue, doorbell and log are the fixture's). */
  start(deps: Omit<LoopDeps, 'queue' | 'doorbell' | 'log'>): RunnerLoop {
    const loop = new RunnerLoop({ queue: this.queue, doorbell: this.doorbell, log: this.log, ...deps });
    this.loop = loop;
    this.running = loop.run();
    return loop;
  }

  async close(): Promise<void> {
    this.loop?.stop();
    await this.running;
    this.doorbell.close();
    this.queue.close();
    this.host.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

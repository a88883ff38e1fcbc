/** A Router over a real in-memory central DB and real session queues in a temp dir, recording wakes and notices. */
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../src/host/db/open.js';
import { openCentralDb } from '../../src/host/db/open.js';
import { Router } from '../../src/host/router.js';
import { SessionQueue } from '../../src/host/session-queue.js';
import type { Session } from '../../src/host/store/sessions.js';
import type { Routing } from '../../src/shared/messages.js';
import { createLogger } from '../../src/shared/log.js';
import { tempHome } from './cli.js';

export interface RouterKit {
  dir: string;
  db: Db;
  router: Router;
  woken: string[];
  told: Array<{ key: string; routing: Routing; text: string; replyTo?: string; hops?: number }>;
  queues: Map<string, SessionQueue>;
  close(): void;
}

export function routerKit(prefix = 'polyclaw-router-'): RouterKit {
  const dir = tempHome(prefix);
  const db = openCentralDb(':memory:');
  const queues = new Map<string, SessionQueue>();
  const kit: RouterKit = {
    dir,
    db,
    woken: [],
    told: [],
    queues,
    router: null as unknown as Router,
    close() {
      for (const q of queues.values()) q.close();
      queues.clear();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  kit.router = new Router({
    db,
    log: createLogger({ level: 'error' }),
    queueFor: (s: Session) => {
      let q = queues.get(s.id);
      if (!q) queues.set(s.id, (q = new SessionQueue(path.join(dir, s.id))));
      return q;
    },
    wake: (id) => kit.woken.push(id),
    tell: async (_s, key, routing, text, replyTo, hops) => {
      kit.told.push({ key, routing, text, replyTo, ...(hops !== undefined ? { hops } : {}) });
    },
  });
  return kit;
}

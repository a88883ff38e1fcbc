/**
 * First run: a new data dir gets a `main` group on the mock provider, wired to the terminal,
 * so `npm start` followed by `polyclaw chat` works with nothing configured. Once only
 * (install_facts 'first-run', migration 011): a user who deleted every group keeps none, and
 * groups made before the first start (the CLI works on the data dir without a host) mean the
 * user has set it up: no `main` is added beside them.
 */
import type { Config } from './config.js';
import type { Db } from './db/open.js';
import { ops } from './admin-ops.js';
import { listGroups } from './store/groups.js';

export function firstRun(db: Db, config: Config): boolean {
  return db.transaction(() => {
    const done = db.prepare(`SELECT 1 FROM install_facts WHERE key = 'first-run'`).get();
    if (done) return false;
    db.prepare(`INSERT INTO install_facts (key, value) VALUES ('first-run', 'done')`).run();
    if (listGroups(db).length > 0) return false;
    ops['groups.create']!(
      { db, config, host: null },
      { name: 'main', provider: 'mock', assistantName: 'Polyclaw' },
    );
    return true;
  })();
}

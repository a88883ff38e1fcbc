/**
 * First run: an empty data dir gets a `main` group on the mock provider, wired to the
 * terminal, so `npm start` followed by `polyclaw chat` works with nothing configured.
 */
import type { Config } from './config.js';
import type { Db } from './db/open.js';
import { ops } from './admin-ops.js';
import { listGroups } from './store/groups.js';

export function firstRun(db: Db, config: Config): boolean {
  if (listGroups(db).length > 0) return false;
  ops['groups.create']!(
    { db, config, host: null },
    { name: 'main', provider: 'mock', assistantName: 'Polyclaw' },
  );
  return true;
}

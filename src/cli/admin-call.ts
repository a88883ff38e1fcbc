/**
 * Runs an admin op through the running host when there is one, or directly on the data dir
 * when there is not (the same handlers either way).
 */
import { ensureHome, loadConfig, paths } from '../host/config.js';
import { openCentralDb } from '../host/db/open.js';
import { runOp } from '../host/admin-ops.js';
import { connectAdmin } from './admin-client.js';

export async function adminCall(op: string, args: unknown): Promise<unknown> {
  const config = loadConfig();
  ensureHome(config.home);
  const client = await connectAdmin(paths(config.home).socket);
  if (client) {
    try {
      return await client.request(op, args);
    } finally {
      client.close();
    }
  }
  const db = openCentralDb(paths(config.home).db);
  try {
    return await runOp({ db, config, host: null }, op, args);
  } finally {
    db.close();
  }
}

/**
 * Runs an admin op through the running host when there is one, or directly on the data dir
 * when there is not (the same handlers either way).
 */
import fs from 'node:fs';
import { loadConfig, paths } from '../host/config.js';
import { openCentralDb } from '../host/db/open.js';
import { runOp } from '../host/admin-ops.js';
import { connectAdmin } from './admin-client.js';

export async function adminCall(op: string, args: unknown): Promise<unknown> {
  const config = loadConfig();
  const client = await connectAdmin(paths(config.home).socket);
  if (client) {
    try {
      return await client.request(op, args);
    } finally {
      client.close();
    }
  }
  fs.mkdirSync(config.home, { recursive: true, mode: 0o700 });
  const db = openCentralDb(paths(config.home).db);
  try {
    return await runOp({ db, config, host: null }, op, args);
  } finally {
    db.close();
  }
}

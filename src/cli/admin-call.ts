/**
 * Runs an admin op through the running host when there is one, or directly on the data dir
 * when there is not (the same handlers either way). Never directly while a host holds the lock
 * but its admin socket does not answer (starting: the lock comes first and the socket last;
 * stopping: the other way round): the op would run beside the host, e.g. a group deleted with
 * its sandboxes left running. It waits a moment for the socket, then says so in one line.
 */
import { ensureHome, loadConfig, paths } from '../host/config.js';
import { openCentralDb } from '../host/db/open.js';
import { runOp } from '../host/admin-ops.js';
import { lockHeld } from '../host/lock.js';
import { PolyclawError } from '../shared/errors.js';
import { connectAdmin, type AdminClient } from './admin-client.js';

/** How long a command waits for the admin socket of a host that holds the lock. */
export const HOST_WAIT_MS = 3000;

/** The running host's admin client; null when no host holds the data dir (after a short wait while one starts). */
export async function connectWhileHeld(socket: string, lock: string): Promise<AdminClient | null> {
  const until = Date.now() + HOST_WAIT_MS;
  for (;;) {
    const client = await connectAdmin(socket);
    if (client || !lockHeld(lock)) return client;
    if (Date.now() >= until)
      throw new PolyclawError(
        'unavailable',
        'a Polyclaw host holds this POLYCLAW_HOME but its admin socket does not answer (starting or stopping?): try again in a moment',
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function adminCall(op: string, args: unknown): Promise<unknown> {
  const config = loadConfig();
  ensureHome(config.home);
  const client = await connectWhileHeld(paths(config.home).socket, paths(config.home).lock);
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

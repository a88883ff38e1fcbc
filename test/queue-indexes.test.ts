/**
 * The queries the host and the runner ask on every wake, settle, firing or failed delivery go
 * through an index: a session's files keep its whole history, and a scan grows with it.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOST_NOTICE_SQL, SessionQueue, TASK_RUN_SQL } from '../src/host/session-queue.js';
import { ANSWER_SQL, REPLIES_SQL, RunnerQueue } from '../src/runner/session-io.js';
import { INBOUND_FILE, OUTBOUND_FILE } from '../src/shared/session-db.js';
import { tempHome } from './support/cli.js';

let dir: string;
beforeEach(() => {
  dir = tempHome('polyclaw-indexes-');
  const session = path.join(dir, 'session');
  new SessionQueue(session).close();
  new RunnerQueue(session).close();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function plan(file: string, sql: string): string {
  const db = new Database(path.join(dir, 'session', file), { readonly: true });
  try {
    const params = (sql.match(/\?/g) ?? []).map(() => 'x');
    return db
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...params)
      .map((r) => (r as { detail: string }).detail)
      .join('\n');
  } finally {
    db.close();
  }
}

describe('session queue indexes', () => {
  it.each([
    ['a task run already queued', INBOUND_FILE, TASK_RUN_SQL, 'messages_in_series'],
    ['a host notice already queued', INBOUND_FILE, HOST_NOTICE_SQL, 'messages_in_host_key'],
    ['the answer to a question', INBOUND_FILE, ANSWER_SQL, 'messages_in_answer'],
    ['the replies to a message', OUTBOUND_FILE, REPLIES_SQL, 'messages_out_reply'],
  ])('%s: searched by index', (_, file, sql, index) => {
    expect(plan(file, sql)).toMatch(new RegExp(`^SEARCH messages_(in|out) USING (COVERING )?INDEX ${index}`));
  });
});

/**
 * What every admin op shares: the context it runs in, argument parsing with zod at this
 * boundary (errors are PolyclawErrors whose codes travel as {ok:false,error:{code,message}}),
 * and access to a session's queue whether or not a host runs.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { channelRegistry } from '../channels/index.js';
import { badRequest, issueLine } from '../shared/errors.js';
import type { Config } from './config.js';
import type { Db } from './db/open.js';
import { sessionDir } from './sandbox-spec.js';
import { SessionQueue } from './session-queue.js';
import { AGENT_CHANNEL } from '../shared/messages.js';
import { getGroup } from './store/groups.js';
import type { Session } from './store/sessions.js';

/**
 * A chat an admin names must be on a channel Polyclaw has: a misspelt one would wire nothing and
 * say nothing. Agent chats are made by `destinations add --agent` only (their ids and loop
 * guard are the host's), never by hand.
 */
export function chatChannel(name: string): string {
  if (name === AGENT_CHANNEL)
    throw badRequest('agent chats are made with: polyclaw destinations add --group G --name N --agent GROUP');
  if (!channelRegistry.has(name)) {
    const known = channelRegistry.names().filter((n) => n !== AGENT_CHANNEL);
    throw badRequest(`unknown channel "${name}" (known: ${known.join(', ')})`);
  }
  return name;
}

/** What the running host offers to admin ops (absent in direct mode). */
export interface HostServices {
  sessionQueue(session: Session): SessionQueue;
  wake(sessionId: string): void;
  sandboxes(): Array<{ sessionId: string; pid: number; startedAt: number; lastActive: number }>;
  stopSandbox(sessionId: string): Promise<void>;
  /** A session was deleted (with its group): the host drops what it holds for it. */
  sessionDeleted(sessionId: string): void;
  /** Settings, wirings or destinations of a group changed: republish them to its sessions. */
  groupChanged(agentGroupId: string): void;
  runtimeName: string;
}

export interface OpContext {
  db: Db;
  config: Config;
  host: HostServices | null;
}

export type Op = (ctx: OpContext, args: unknown) => unknown;

export function parse<T>(schema: z.ZodType<T>, args: unknown): T {
  const r = schema.safeParse(args ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.path.join('.');
    // Named as the CLI flag the admin types (platformId → --platform-id).
    if (field && i.code === 'invalid_type' && /received undefined$/.test(i.message))
      throw badRequest(`--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
    throw badRequest(issueLine(r.error, 'arguments'));
  }
  return r.data;
}

export function sessionView(ctx: OpContext, s: Session) {
  const sb = ctx.host?.sandboxes().find((x) => x.sessionId === s.id);
  return {
    id: s.id,
    group: getGroup(ctx.db, s.agentGroupId).name,
    mode: s.sessionMode,
    threadId: s.threadId,
    status: s.status,
    lastActiveAt: new Date(s.lastActiveAt).toISOString(),
    sandbox: sb ? { pid: sb.pid, startedAt: new Date(sb.startedAt).toISOString() } : null,
  };
}

/**
 * Run fn on the session's queue: the host's open one when it runs, else one opened (and
 * closed) here — safe because without a host this process is the only writer. null when the
 * session has no directory yet.
 */
export function withQueue<T>(ctx: OpContext, s: Session, fn: (q: SessionQueue, dir: string) => T): T | null {
  const dir = sessionDir(ctx.config.home, getGroup(ctx.db, s.agentGroupId).name, s.id);
  if (!fs.existsSync(dir)) return null;
  const q = ctx.host?.sessionQueue(s) ?? new SessionQueue(dir);
  try {
    return fn(q, dir);
  } finally {
    if (!ctx.host) q.close();
  }
}

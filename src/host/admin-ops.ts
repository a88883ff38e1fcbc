/**
 * Admin operations, one handler per op, shared by the admin socket (host running) and the
 * CLI's direct mode (host stopped). The handlers live by noun (admin-ops-*.ts) on the pieces
 * they share (admin-op-kit.ts); this module is the one table of ops and the one way to run one.
 */
import { chatOps } from './admin-ops-chats.js';
import { groupOps } from './admin-ops-groups.js';
import { sessionOps } from './admin-ops-sessions.js';
import { badRequest } from '../shared/errors.js';
import type { Op, OpContext } from './admin-op-kit.js';
import { listGroups } from './store/groups.js';

export type { HostServices, OpContext } from './admin-op-kit.js';

export const ops: Record<string, Op> = {
  ping: (ctx) => ({ pid: process.pid, home: ctx.config.home, runtime: ctx.host?.runtimeName ?? null }),

  ...groupOps,
  ...chatOps,
  ...sessionOps,
};

/** Ops that only make sense while the host runs. */
export const HOST_ONLY = new Set(['chat.attach', 'chat.send', 'chat.ack']);

/** Ops after which running sessions must see new settings, wirings or destinations. */
const REPUBLISH = /^(groups\.(update|delete)|wirings\.(add|update|remove)|destinations\.(add|remove))$/;

export async function runOp(ctx: OpContext, op: string, args: unknown): Promise<unknown> {
  const fn = Object.hasOwn(ops, op) ? ops[op] : undefined;
  if (!fn) throw badRequest(`unknown operation "${op}"`);
  const result = await fn(ctx, args);
  if (ctx.host && REPUBLISH.test(op)) for (const g of listGroups(ctx.db)) ctx.host.groupChanged(g.id);
  return result;
}

/** Admin ops on sessions: list and inspect them, and start one on a fresh conversation. */
import { z } from 'zod';
import { PolyclawError } from '../shared/errors.js';
import { parse, sessionView, withQueue, type Op } from './admin-op-kit.js';
import { getGroup, requireGroup } from './store/groups.js';
import { getMessagingGroup } from './store/messaging.js';
import { findSession, listSessions } from './store/sessions.js';

export const sessionOps: Record<string, Op> = {
  'sessions.list': (ctx, args) => {
    const a = parse(
      z.object({ group: z.string().min(1, 'empty: give the name of a group').optional() }),
      args,
    );
    const g = a.group !== undefined ? requireGroup(ctx.db, a.group) : null;
    return listSessions(ctx.db, g?.id).map((s) => sessionView(ctx, s));
  },

  'sessions.show': (ctx, args) => {
    const a = parse(z.object({ id: z.string() }), args);
    const s = findSession(ctx.db, a.id);
    const view = sessionView(ctx, s);
    return (
      withQueue(ctx, s, (q, dir) => {
        const pending = q.pending();
        return { ...view, pending: pending.length, pendingSeqs: pending.map((m) => m.seq), dir };
      }) ?? { ...view, pending: 0 }
    );
  },

  'sessions.reset': (ctx, args) => {
    const a = parse(z.object({ id: z.string() }), args);
    const s = findSession(ctx.db, a.id);
    const r = withQueue(ctx, s, (q) => {
      const mg = s.messagingGroupId ? getMessagingGroup(ctx.db, s.messagingGroupId) : null;
      const routing = {
        channelType: mg?.channelType ?? 'terminal',
        platformId: mg?.platformId ?? getGroup(ctx.db, s.agentGroupId).name,
        threadId: s.threadId,
      };
      const queued = q.enqueue({
        kind: 'command',
        trigger: true,
        routing,
        content: { text: '/clear', attachments: [] },
      });
      ctx.host?.wake(s.id);
      return { session: s.id, queued, note: 'the agent starts a fresh conversation on the next message' };
    });
    if (!r) throw new PolyclawError('not_found', `session ${s.id} has no state yet`);
    return r;
  },
};

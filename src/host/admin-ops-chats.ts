/**
 * Admin ops on chats: wirings (which chat reaches which group, and how) and destinations (where
 * a group's agent may send). Every chat an admin names is on a registered channel.
 */
import { z } from 'zod';
import { badRequest } from '../shared/errors.js';
import { lineField } from '../shared/fields.js';
import { chatChannel, parse, type Op } from './admin-op-kit.js';
import {
  addAgentDestination,
  addChatDestination,
  listDestinations,
  removeDestination,
} from './store/destinations.js';
import { requireGroup } from './store/groups.js';
import {
  createWiring,
  deleteWiring,
  EngageMode,
  ensureMessagingGroup,
  IgnoredPolicy,
  listWirings,
  SenderScope,
  SessionMode,
  updateWiring,
} from './store/messaging.js';

/** The pattern of a pattern-mode wiring added without one. */
const ANY_MESSAGE = '.*';

export const chatOps: Record<string, Op> = {
  'wirings.list': (ctx) =>
    listWirings(ctx.db).map((w) => ({
      id: w.id,
      group: w.group,
      channel: w.channelType,
      platformId: w.platformId,
      engage: w.engageMode,
      pattern: w.pattern,
      session: w.sessionMode,
      scope: w.senderScope,
      ignored: w.ignoredPolicy,
    })),

  'wirings.add': (ctx, args) => {
    const a = parse(
      z.object({
        group: z.string(),
        channel: z.string().min(1),
        platformId: lineField(200),
        engage: EngageMode.default('pattern'),
        pattern: z.string().nullable().default(null),
        session: SessionMode.default('shared'),
        scope: SenderScope.default('all'),
        ignored: IgnoredPolicy.default('drop'),
      }),
      args,
    );
    const g = requireGroup(ctx.db, a.group);
    return ctx.db.transaction(() => {
      const mg = ensureMessagingGroup(ctx.db, chatChannel(a.channel), a.platformId);
      const w = createWiring(ctx.db, mg.id, g.id, {
        engageMode: a.engage,
        // Pattern mode without a pattern answers every message (the usage shows both optional).
        pattern: a.pattern ?? (a.engage === 'pattern' ? ANY_MESSAGE : null),
        sessionMode: a.session,
        senderScope: a.scope,
        ignoredPolicy: a.ignored,
      });
      // Kept for a later --engage pattern, but the admin should know it does nothing now.
      return a.pattern && a.engage !== 'pattern'
        ? { ...w, warnings: [`--pattern is kept but not used while --engage is ${a.engage}`] }
        : w;
    })();
  },

  'wirings.update': (ctx, args) => {
    const a = parse(
      z.object({
        id: z.string(),
        engage: EngageMode.optional(),
        pattern: z.string().nullable().optional(),
        session: SessionMode.optional(),
        scope: SenderScope.optional(),
        ignored: IgnoredPolicy.optional(),
      }),
      args,
    );
    const patch = Object.fromEntries(
      Object.entries({
        engageMode: a.engage,
        pattern: a.pattern,
        sessionMode: a.session,
        senderScope: a.scope,
        ignoredPolicy: a.ignored,
      }).filter(([, v]) => v !== undefined),
    );
    if (Object.keys(patch).length === 0)
      throw badRequest('nothing to update: give --engage, --pattern, --session, --scope or --ignored');
    return updateWiring(ctx.db, a.id, patch);
  },

  'wirings.remove': (ctx, args) => {
    const a = parse(z.object({ id: z.string() }), args);
    deleteWiring(ctx.db, a.id);
    return { removed: a.id };
  },

  'destinations.list': (ctx) => listDestinations(ctx.db),

  'destinations.add': (ctx, args) => {
    const a = parse(
      z.object({
        group: z.string(),
        name: z.string(),
        agent: z.string().optional(),
        channel: z.string().min(1).optional(),
        platformId: lineField(200).optional(),
        threadId: lineField(200).optional(),
      }),
      args,
    );
    const g = requireGroup(ctx.db, a.group);
    if (a.agent !== undefined) {
      if (a.channel || a.platformId)
        throw badRequest('give either --agent GROUP or --channel C --platform-id ID, not both');
      if (a.threadId !== undefined)
        throw badRequest('--thread goes with --channel C --platform-id ID, not --agent');
      addAgentDestination(ctx.db, g, a.name, requireGroup(ctx.db, a.agent));
    } else {
      if (!a.channel || !a.platformId)
        throw badRequest('a destination needs --agent GROUP, or --channel C and --platform-id ID');
      addChatDestination(ctx.db, g, a.name, chatChannel(a.channel), a.platformId, a.threadId ?? null);
    }
    return listDestinations(ctx.db).find((d) => d.group === g.name && d.name === a.name);
  },

  'destinations.remove': (ctx, args) => {
    const a = parse(z.object({ group: z.string(), name: z.string() }), args);
    removeDestination(ctx.db, requireGroup(ctx.db, a.group), a.name);
    return { removed: a.name, group: a.group };
  },
};

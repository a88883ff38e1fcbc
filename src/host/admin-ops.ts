/**
 * Admin operations, one handler per op, shared by the admin socket (host running) and the
 * CLI's direct mode (host stopped). Arguments are validated with zod at this boundary; errors
 * are PolyclawErrors with codes that travel as {ok:false,error:{code,message}}.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { channelRegistry } from '../channels/index.js';
import { secretExists } from '../gateway/vault.js';
import { hostProviderRegistry } from '../providers/index.js';
import { badRequest, conflict, issueLine, PolyclawError } from '../shared/errors.js';
import { lineField } from '../shared/fields.js';
import { validateTimezone } from '../shared/schedule.js';
import { APPROVAL_POLICIES, type ApprovalPolicy } from '../shared/messages.js';
import type { Config } from './config.js';
import type { Db } from './db/open.js';
import { groupDir, sessionDir } from './sandbox-spec.js';
import { SessionQueue } from './session-queue.js';
import {
  createGroup,
  deleteGroup,
  EFFORTS,
  getGroup,
  listGroups,
  requireGroup,
  updateGroup,
  type AgentGroup,
} from './store/groups.js';
import {
  createWiring,
  deleteWiring,
  ensureMessagingGroup,
  getMessagingGroup,
  EngageMode,
  IgnoredPolicy,
  listWirings,
  SenderScope,
  SessionMode,
  updateWiring,
} from './store/messaging.js';
import {
  addAgentDestination,
  addChatDestination,
  AGENT_CHANNEL,
  listDestinations,
  removeDestination,
} from './store/destinations.js';
import { findSession, listSessions, type Session } from './store/sessions.js';

/**
 * A chat an admin names must be on a channel Polyclaw has: a misspelt one would wire nothing and
 * say nothing. Agent chats are made by `destinations add --agent` only (their ids and loop
 * guard are the host's), never by hand.
 */
function chatChannel(name: string): string {
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

type Op = (ctx: OpContext, args: unknown) => unknown;

function parse<T>(schema: z.ZodType<T>, args: unknown): T {
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

/** The provider exists and accepts these settings (e.g. codex rejects an unknown effort). */
function checkProvider(
  provider: string,
  settings: { model?: string | null; effort?: string | null; approval?: ApprovalPolicy } = {},
): void {
  if (!hostProviderRegistry.has(provider)) {
    throw badRequest(
      `unknown provider "${provider}" (available: ${hostProviderRegistry.names().join(', ')})`,
    );
  }
  const hp = hostProviderRegistry.get(provider);
  hp.validate?.({ model: settings.model ?? null, effort: settings.effort ?? null });
  const approval = settings.approval ?? 'bypass';
  const supported = hp.approvals ?? ['bypass'];
  if (!supported.includes(approval))
    throw badRequest(
      `the ${provider} provider does not support --approval ${approval} (supported: ${supported.join(', ')})`,
    );
}

const GroupFields = z.object({
  provider: z.string().min(1).optional(),
  model: z.string().min(1).nullable().optional(),
  effort: z.enum(EFFORTS).nullable().optional(),
  endpoint: z.string().min(1).nullable().optional(),
  approval: z
    .enum(APPROVAL_POLICIES, { error: `--approval must be one of ${APPROVAL_POLICIES.join(', ')}` })
    .optional(),
  assistantName: z.string().min(1).optional(),
  timezone: z.string().min(1).nullable().optional(),
});

function checkTimezone(tz: string | null | undefined): void {
  const problem = tz ? validateTimezone(tz) : null;
  if (problem) throw badRequest(problem);
}

function groupView(ctx: OpContext, g: AgentGroup, extraWarnings: string[] = []) {
  const { createdAt: _c, updatedAt: _u, ...rest } = g;
  const wirings = listWirings(ctx.db).filter((w) => w.agentGroupId === g.id);
  // Saving a group before its secret is allowed; its first message would fail until then.
  const warnings = [
    ...(g.endpoint && !secretExists(ctx.db, g.endpoint)
      ? [
          `the vault has no secret "${g.endpoint}" yet: set it before the group's first message (polyclaw secrets set ${g.endpoint} --kind … --value-stdin)`,
        ]
      : []),
    ...extraWarnings,
  ];
  return {
    ...rest,
    ...(warnings.length ? { warnings } : {}),
    wirings: wirings.map((w) => ({
      id: w.id,
      channel: w.channelType,
      platformId: w.platformId,
      engage: w.engageMode,
      pattern: w.pattern,
      session: w.sessionMode,
    })),
  };
}

function sessionView(ctx: OpContext, s: Session) {
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

export const ops: Record<string, Op> = {
  ping: (ctx) => ({ pid: process.pid, home: ctx.config.home, runtime: ctx.host?.runtimeName ?? null }),

  'groups.create': (ctx, args) => {
    const a = parse(GroupFields.extend({ name: z.string(), provider: z.string().min(1) }), args);
    checkProvider(a.provider, a);
    checkTimezone(a.timezone);
    // A deleted group's folder is kept (memory, files): a new group of that name takes it over.
    const earlier = fs.existsSync(groupDir(ctx.config.home, a.name))
      ? [
          `the folder groups/${a.name} of an earlier group is reused: its files and memory are this group's now`,
        ]
      : [];
    return ctx.db.transaction(() => {
      const g = createGroup(ctx.db, a.name, a);
      // Every group can be reached from the terminal: `polyclaw chat --group NAME`.
      const mg = ensureMessagingGroup(ctx.db, 'terminal', g.name, { isDirect: true });
      createWiring(ctx.db, mg.id, g.id, { engageMode: 'pattern', pattern: '.*', sessionMode: 'shared' });
      return groupView(ctx, g, earlier);
    })();
  },

  'groups.list': (ctx) =>
    listGroups(ctx.db).map((g) => ({
      name: g.name,
      provider: g.provider,
      model: g.model,
      effort: g.effort,
      endpoint: g.endpoint,
      approval: g.approval,
    })),

  'groups.show': (ctx, args) => {
    const a = parse(z.object({ name: z.string() }), args);
    const g = requireGroup(ctx.db, a.name);
    return { ...groupView(ctx, g), sessions: listSessions(ctx.db, g.id).map((s) => sessionView(ctx, s)) };
  },

  'groups.update': (ctx, args) => {
    const a = parse(GroupFields.extend({ name: z.string() }), args);
    checkTimezone(a.timezone);
    const { name, ...patch } = a;
    const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const current = requireGroup(ctx.db, name);
    checkProvider(a.provider ?? current.provider, { ...current, ...clean });
    if (Object.keys(clean).length === 0)
      throw badRequest(
        'nothing to update: pass at least one of --provider, --model, --effort, --endpoint, --approval, --assistant-name, --timezone',
      );
    return groupView(ctx, updateGroup(ctx.db, name, clean));
  },

  'groups.delete': async (ctx, args) => {
    const a = parse(z.object({ name: z.string(), force: z.boolean().default(false) }), args);
    const g = requireGroup(ctx.db, a.name);
    // Deleting takes the queues with it: a message still in progress would vanish unanswered,
    // unless the admin says so (--force; e.g. messages queued while no host runs). Checked
    // again after the sandboxes stopped, on the sessions as they are then (one may have come),
    // and the delete follows that check in the same synchronous step.
    const open = () => inProgress(ctx, listSessions(ctx.db, g.id));
    if (!a.force) refuseWhileInProgress(g.name, open());
    for (const s of listSessions(ctx.db, g.id)) await ctx.host?.stopSandbox(s.id);
    const sessions = listSessions(ctx.db, g.id);
    const dropped = open();
    if (!a.force) refuseWhileInProgress(g.name, dropped);
    deleteGroup(ctx.db, a.name);
    for (const s of sessions) {
      ctx.host?.sessionDeleted(s.id);
      fs.rmSync(sessionDir(ctx.config.home, g.name, s.id), { recursive: true, force: true });
    }
    const kept = fs.existsSync(groupDir(ctx.config.home, g.name));
    return {
      deleted: g.name,
      sessions: sessions.length,
      ...(kept ? { note: `the group folder groups/${g.name} was kept` } : {}),
      ...(dropped > 0
        ? {
            warnings: [
              `${dropped} message${dropped === 1 ? '' : 's'} in progress dropped unanswered (--force)`,
            ],
          }
        : {}),
    };
  },

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
        pattern: a.pattern,
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

/**
 * Run fn on the session's queue: the host's open one when it runs, else one opened (and
 * closed) here — safe because without a host this process is the only writer. null when the
 * session has no directory yet.
 */
function withQueue<T>(ctx: OpContext, s: Session, fn: (q: SessionQueue, dir: string) => T): T | null {
  const dir = sessionDir(ctx.config.home, getGroup(ctx.db, s.agentGroupId).name, s.id);
  if (!fs.existsSync(dir)) return null;
  const q = ctx.host?.sessionQueue(s) ?? new SessionQueue(dir);
  try {
    return fn(q, dir);
  } finally {
    if (!ctx.host) q.close();
  }
}

/** Messages of these sessions that still wait for an answer (accumulated context does not). */
function inProgress(ctx: OpContext, sessions: Session[]): number {
  return sessions.reduce(
    (sum, s) => sum + (withQueue(ctx, s, (q) => q.pending().filter((m) => m.trigger).length) ?? 0),
    0,
  );
}

function refuseWhileInProgress(group: string, n: number): void {
  if (n > 0)
    throw conflict(
      `group "${group}" has ${n} message${n === 1 ? '' : 's'} in progress; delete it once ${n === 1 ? 'it has' : 'they have'} an answer or failed, or with --force to drop ${n === 1 ? 'it' : 'them'}`,
    );
}

/** Ops that only make sense while the host runs. */
export const HOST_ONLY = new Set(['chat.attach', 'chat.send']);

/** Ops after which running sessions must see new settings, wirings or destinations. */
const REPUBLISH = /^(groups\.update|wirings\.(add|update|remove)|destinations\.(add|remove))$/;

export async function runOp(ctx: OpContext, op: string, args: unknown): Promise<unknown> {
  const fn = Object.hasOwn(ops, op) ? ops[op] : undefined;
  if (!fn) throw badRequest(`unknown operation "${op}"`);
  const result = await fn(ctx, args);
  if (ctx.host && REPUBLISH.test(op)) for (const g of listGroups(ctx.db)) ctx.host.groupChanged(g.id);
  return result;
}

/**
 * Admin ops on agent groups. A group is created with a terminal wiring, so every group can be
 * reached with `polyclaw chat --group NAME`; a delete never takes a message in progress with it
 * unless the admin says so (--force).
 */
import { SECRET_NAME } from '../gateway/vault.js';
import fs from 'node:fs';
import { z } from 'zod';
import { secretExists } from '../gateway/vault.js';
import { hostProviderRegistry } from '../providers/index.js';
import { badRequest, conflict } from '../shared/errors.js';
import { APPROVAL_POLICIES, type ApprovalPolicy } from '../shared/messages.js';
import { validateTimezone } from '../shared/schedule.js';
import { parse, sessionView, withQueue, type Op, type OpContext } from './admin-op-kit.js';
import { groupDir, sessionDir } from './sandbox-spec.js';
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
import { createWiring, ensureMessagingGroup, listWirings } from './store/messaging.js';
import { deleteSession, listSessions, sessionsOnChats, type Session } from './store/sessions.js';
import { openNotices } from './store/deliveries.js';
import { agentChatsOf, unwireAgentChatsOf } from './store/destinations.js';
import { dropSessionMail } from './store/mailbox.js';

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
  endpoint: z
    .string()
    .regex(SECRET_NAME, {
      error: '--endpoint names a vault secret: lowercase letters, digits, . _ - (max 63), e.g. anthropic',
    })
    .nullable()
    .optional(),
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

export const groupOps: Record<string, Op> = {
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
    // Deleting takes the queues and the delivery ledger with it: a message still in progress
    // would vanish unanswered and a failure notice not yet sent would never be, unless the
    // admin says so (--force; e.g. messages queued while no host runs). Checked again after the
    // sandboxes stopped, on the sessions as they are then (one may have come), and the delete
    // follows that check in the same synchronous step.
    const open = () => unsettled(ctx, listSessions(ctx.db, g.id));
    if (!a.force) refuseWhileUnsettled(g.name, open());
    // The other groups' conversations with it (their sessions on the agent chats with it) go
    // too: a new group of the same name must not find them and carry on.
    const peers = () =>
      sessionsOnChats(ctx.db, agentChatsOf(ctx.db, g)).filter((s) => s.agentGroupId !== g.id);
    for (const s of [...listSessions(ctx.db, g.id), ...peers()]) await ctx.host?.stopSandbox(s.id);
    const sessions = listSessions(ctx.db, g.id);
    const others = peers().map((s) => ({ s, group: getGroup(ctx.db, s.agentGroupId).name }));
    const dropped = open();
    if (!a.force) refuseWhileUnsettled(g.name, dropped);
    ctx.db.transaction(() => {
      unwireAgentChatsOf(ctx.db, g);
      for (const s of [...sessions, ...others.map((o) => o.s)]) dropSessionMail(ctx.db, s.id);
      for (const o of others) deleteSession(ctx.db, o.s.id);
      deleteGroup(ctx.db, a.name);
    })();
    for (const { s, group } of [...sessions.map((s) => ({ s, group: g.name })), ...others]) {
      ctx.host?.sessionDeleted(s.id);
      fs.rmSync(sessionDir(ctx.config.home, group, s.id), { recursive: true, force: true });
    }
    const kept = fs.existsSync(groupDir(ctx.config.home, g.name));
    return {
      deleted: g.name,
      sessions: sessions.length,
      ...(kept ? { note: `the group folder groups/${g.name} was kept` } : {}),
      ...(dropped.messages + dropped.notices > 0 ? { warnings: droppedWarnings(dropped) } : {}),
    };
  },
};

/**
 * What of these sessions is not settled yet: messages that still wait for an answer
 * (accumulated context does not) and failure notices not yet sent.
 */
function unsettled(ctx: OpContext, sessions: Session[]): { messages: number; notices: number } {
  let messages = 0;
  let notices = 0;
  for (const s of sessions) {
    messages += withQueue(ctx, s, (q) => q.pending().filter((m) => m.trigger).length) ?? 0;
    notices += openNotices(ctx.db, s.id).length;
  }
  return { messages, notices };
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function refuseWhileUnsettled(group: string, u: { messages: number; notices: number }): void {
  if (u.messages + u.notices === 0) return;
  const { messages: n, notices: k } = u;
  if (k === 0)
    throw conflict(
      `group "${group}" has ${count(n, 'message')} in progress; delete it once ${n === 1 ? 'it has' : 'they have'} an answer or failed, or with --force to drop ${n === 1 ? 'it' : 'them'}`,
    );
  const what = [
    n > 0 ? `${count(n, 'message')} in progress` : '',
    `${count(k, 'failure notice')} not yet sent`,
  ];
  throw conflict(
    `group "${group}" has ${what.filter(Boolean).join(' and ')}; delete it once all are answered and sent, or with --force to drop them`,
  );
}

function droppedWarnings(u: { messages: number; notices: number }): string[] {
  return [
    ...(u.messages > 0 ? [`${count(u.messages, 'message')} in progress dropped unanswered (--force)`] : []),
    ...(u.notices > 0 ? [`${count(u.notices, 'failure notice')} dropped unsent (--force)`] : []),
  ];
}

/**
 * What the runner and the tools of a session read about it from its inbound.db: the group's
 * settings, its default chat and destinations. Written when the queue opens and again on every
 * change of the group, so a sandbox never works from settings the host no longer holds.
 */
import type { Db } from './db/open.js';
import type { SessionQueue } from './session-queue.js';
import { getGroup } from './store/groups.js';
import { destinationsFor, getMessagingGroup } from './store/messaging.js';
import type { Session } from './store/sessions.js';

export function publishMeta(db: Db, defaultTimezone: string, session: Session, q: SessionQueue): void {
  const group = getGroup(db, session.agentGroupId);
  const mg = session.messagingGroupId ? getMessagingGroup(db, session.messagingGroupId) : null;
  q.setMeta(
    {
      sessionId: session.id,
      agentGroup: group.name,
      provider: group.provider,
      model: group.model,
      effort: group.effort,
      endpoint: group.endpoint,
      approval: group.approval,
      assistantName: group.assistantName,
      timezone: group.timezone ?? defaultTimezone,
      defaultRouting: mg
        ? { channelType: mg.channelType, platformId: mg.platformId, threadId: session.threadId }
        : null,
    },
    destinationsFor(db, group.id),
  );
}
